//! Checks a plugin file's ELF headers before it is handed to `dlopen`.
//!
//! The dynamic loader maps a file's segments as its program headers say, without checking
//! them against the file's size: a truncated file (an interrupted copy or download) then
//! crashes the whole process with SIGBUS when a segment past the end is touched, with nothing
//! printed. So before `dlopen`, the file must be an ELF shared object of this machine's class,
//! byte order and architecture, and every segment and the section header table must lie
//! within the file. Only the headers are read (through `object`'s ELF reader), not the file.

use std::fs::File;
use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::read::ReadCache;
use object::Endianness;

/// Where the class is in `e_ident`, the same in every ELF file.
const EI_CLASS: usize = 4;

/// What is wrong with a plugin file's ELF headers; each says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfProblem {
    #[error("cannot be read: {0}; check that it exists and that you may read it")]
    Unreadable(String),
    #[error("not an ELF file: a plugin is a shared object built from a cdylib crate for this machine; rebuild it, or reinstall it")]
    NotElf,
    #[error("the file is truncated: {size} bytes, shorter than its ELF header; reinstall it")]
    ShorterThanHeader { size: u64 },
    #[error("a {found} ELF file, but this machine runs {ours} ones: use a build of the plugin for this machine")]
    WrongClass { found: &'static str, ours: &'static str },
    #[error("a {found} ELF file, but this machine is {ours}: use a build of the plugin for this machine")]
    WrongByteOrder { found: &'static str, ours: &'static str },
    #[error("an ELF file for {found}, but this machine is {ours}: use a build of the plugin for {ours}")]
    WrongArchitecture { found: String, ours: &'static str },
    #[error("an ELF {found}, not a shared object: build the plugin as a cdylib crate")]
    NotSharedObject { found: &'static str },
    #[error("the file is truncated: its {what} at offset {start}..{end} but the file has {size} bytes; reinstall it")]
    Truncated { what: String, start: u64, end: u64, size: u64 },
    #[error("its ELF headers are unreadable ({0}); reinstall it")]
    Malformed(String),
}

/// Checks the ELF headers of the file at `path` (see the module's doc).
pub fn check(path: &Path) -> Result<(), ElfProblem> {
    let file = File::open(path).map_err(|e| ElfProblem::Unreadable(e.to_string()))?;
    let size = file.metadata().map_err(|e| ElfProblem::Unreadable(e.to_string()))?.len();
    let data = ReadCache::new(file);
    let ident: &[u8] = object::ReadRef::read_bytes_at(&data, 0, 16.min(size)).map_err(|()| ElfProblem::NotElf)?;
    if ident.len() < 4 || ident[..4] != elf::ELFMAG {
        return Err(ElfProblem::NotElf);
    }
    if ident.len() < 16 {
        return Err(ElfProblem::ShorterThanHeader { size });
    }
    let ours_64 = cfg!(target_pointer_width = "64");
    match (ident[EI_CLASS], ours_64) {
        (elf::ELFCLASS64, true) => check_headers::<elf::FileHeader64<Endianness>>(&data, size),
        (elf::ELFCLASS32, false) => check_headers::<elf::FileHeader32<Endianness>>(&data, size),
        (elf::ELFCLASS64, false) => Err(ElfProblem::WrongClass { found: "64-bit", ours: "32-bit" }),
        (elf::ELFCLASS32, true) => Err(ElfProblem::WrongClass { found: "32-bit", ours: "64-bit" }),
        (other, _) => Err(ElfProblem::Malformed(format!("unknown ELF class {other}"))),
    }
}

fn check_headers<Elf: FileHeader<Endian = Endianness>>(data: &ReadCache<File>, size: u64) -> Result<(), ElfProblem> {
    let header_size = std::mem::size_of::<Elf>() as u64;
    if size < header_size {
        return Err(ElfProblem::ShorterThanHeader { size });
    }
    let header = Elf::parse(data).map_err(|e| ElfProblem::Malformed(e.to_string()))?;
    let endian = header.endian().map_err(|e| ElfProblem::Malformed(e.to_string()))?;
    let ours = if cfg!(target_endian = "little") { Endianness::Little } else { Endianness::Big };
    if endian != ours {
        return Err(ElfProblem::WrongByteOrder { found: byte_order(endian), ours: byte_order(ours) });
    }
    let machine = header.e_machine(endian);
    if let Some(ours) = our_machine() {
        if machine != ours.0 {
            return Err(ElfProblem::WrongArchitecture { found: machine_name(machine), ours: ours.1 });
        }
    }
    match header.e_type(endian) {
        elf::ET_DYN => {}
        elf::ET_EXEC => return Err(ElfProblem::NotSharedObject { found: "executable" }),
        elf::ET_REL => return Err(ElfProblem::NotSharedObject { found: "object file (.o)" }),
        elf::ET_CORE => return Err(ElfProblem::NotSharedObject { found: "core dump" }),
        _ => return Err(ElfProblem::NotSharedObject { found: "file of an unknown type" }),
    }

    // The program header table first: the loader reads it before anything else.
    let phoff: u64 = header.e_phoff(endian).into();
    let phnum = header.phnum(endian, data).map_err(|e| ElfProblem::Malformed(e.to_string()))? as u64;
    let phentsize = u64::from(header.e_phentsize(endian));
    within("program header table", phoff, phnum.saturating_mul(phentsize), size)?;
    let segments = header.program_headers(endian, data).map_err(|e| ElfProblem::Malformed(e.to_string()))?;
    for (index, segment) in segments.iter().enumerate() {
        // PT_NULL entries are ignored by the loader, and a segment of no file bytes (a stack
        // marker, or memory that is all zeros) reads nothing; every other one maps or reads
        // its range.
        let offset: u64 = segment.p_offset(endian).into();
        let filesz: u64 = segment.p_filesz(endian).into();
        if segment.p_type(endian) == elf::PT_NULL || filesz == 0 {
            continue;
        }
        within(&format!("segment {index}"), offset, filesz, size)?;
    }

    let shoff: u64 = header.e_shoff(endian).into();
    if shoff != 0 {
        // The section count is in section 0 when it is too large for the header: read that
        // entry only once it is known to be within the file.
        let shentsize = u64::from(header.e_shentsize(endian));
        within("section header table", shoff, shentsize, size)?;
        let shnum = header.shnum(endian, data).map_err(|e| ElfProblem::Malformed(e.to_string()))? as u64;
        within("section header table", shoff, shnum.saturating_mul(shentsize), size)?;
    }
    Ok(())
}

/// `start..start+len` must end within a file of `size` bytes.
fn within(what: &str, start: u64, len: u64, size: u64) -> Result<(), ElfProblem> {
    match start.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        end => Err(ElfProblem::Truncated { what: what.to_owned(), start, end: end.unwrap_or(u64::MAX), size }),
    }
}

fn byte_order(endian: Endianness) -> &'static str {
    match endian {
        Endianness::Little => "little-endian",
        Endianness::Big => "big-endian",
    }
}

/// This build's ELF machine number and name; `None` on an architecture not listed here, whose
/// files are then not checked for it (dlopen still refuses another architecture's).
fn our_machine() -> Option<(u16, &'static str)> {
    let ours = std::env::consts::ARCH;
    KNOWN_MACHINES.iter().find(|(_, name)| *name == ours).map(|(number, name)| (*number, *name))
}

/// ELF machine numbers by Rust's names for the architectures.
const KNOWN_MACHINES: &[(u16, &str)] = &[
    (elf::EM_X86_64, "x86_64"),
    (elf::EM_386, "x86"),
    (elf::EM_AARCH64, "aarch64"),
    (elf::EM_ARM, "arm"),
    (elf::EM_RISCV, "riscv64"),
    (elf::EM_PPC64, "powerpc64"),
    (elf::EM_PPC, "powerpc"),
    (elf::EM_S390, "s390x"),
    (elf::EM_LOONGARCH, "loongarch64"),
    (elf::EM_MIPS, "mips64"),
    (elf::EM_SPARCV9, "sparc64"),
];

fn machine_name(machine: u16) -> String {
    KNOWN_MACHINES
        .iter()
        .find(|(number, _)| *number == machine)
        .map_or_else(|| format!("machine number {machine}"), |(_, name)| (*name).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Where the byte order is in `e_ident`.
    const EI_DATA: usize = 5;

    /// This test binary: an ELF of this machine, but an executable (or a PIE, which is ET_DYN).
    fn this_executable() -> Vec<u8> {
        std::fs::read(std::env::current_exe().expect("current_exe")).expect("read self")
    }

    /// A real shared object of this machine: libc, as the loader resolved it for this process.
    fn a_shared_object() -> Vec<u8> {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let path = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.contains("/libc.so") || p.contains("/libc-"))
            .expect("libc in /proc/self/maps");
        std::fs::read(path).expect("read libc")
    }

    fn written(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp");
        file.write_all(bytes).expect("write");
        file
    }

    #[test]
    fn a_whole_shared_object_passes() {
        let so = a_shared_object();
        assert_eq!(check(written(&so).path()), Ok(()));
    }

    #[test]
    fn a_truncated_shared_object_names_the_segment_and_the_size() {
        let so = a_shared_object();
        let cut = &so[..so.len() / 2];
        let problem = check(written(cut).path()).expect_err("truncated");
        assert!(matches!(problem, ElfProblem::Truncated { size, .. } if size == cut.len() as u64), "{problem:?}");
        let text = problem.to_string();
        assert!(text.starts_with("the file is truncated: its segment "), "{text}");
        assert!(text.ends_with(&format!("but the file has {} bytes; reinstall it", cut.len())), "{text}");
    }

    #[test]
    fn a_file_cut_after_its_segments_names_the_section_headers() {
        let so = a_shared_object();
        // The section header table is at the end of a linked file, after every segment.
        let cut = &so[..so.len() - 1];
        let problem = check(written(cut).path()).expect_err("truncated");
        assert!(problem.to_string().contains("section header table"), "{problem}");
    }

    #[test]
    fn a_file_cut_inside_its_header() {
        let so = a_shared_object();
        assert_eq!(check(written(&so[..40]).path()), Err(ElfProblem::ShorterThanHeader { size: 40 }));
        assert_eq!(check(written(&so[..10]).path()), Err(ElfProblem::ShorterThanHeader { size: 10 }));
    }

    #[test]
    fn garbage_and_empty_files_are_not_elf() {
        assert_eq!(check(written(b"#!/bin/sh\necho hi\n").path()), Err(ElfProblem::NotElf));
        assert_eq!(check(written(b"").path()), Err(ElfProblem::NotElf));
        assert_eq!(check(written(&[0xffu8; 4096]).path()), Err(ElfProblem::NotElf));
    }

    #[test]
    fn garbage_after_the_magic_is_refused_without_a_panic() {
        for fill in [0x00u8, 0x41, 0xff] {
            let mut bytes = vec![fill; 4096];
            bytes[..4].copy_from_slice(&elf::ELFMAG);
            bytes[EI_CLASS] = elf::ELFCLASS64;
            bytes[EI_DATA] = elf::ELFDATA2LSB;
            assert!(check(written(&bytes).path()).is_err(), "fill {fill:#x}");
        }
    }

    #[test]
    fn another_architecture_is_named() {
        let mut so = a_shared_object();
        // e_machine is at offset 18 in both classes.
        let other = if std::env::consts::ARCH == "aarch64" { elf::EM_X86_64 } else { elf::EM_AARCH64 };
        let bytes = if cfg!(target_endian = "little") { other.to_le_bytes() } else { other.to_be_bytes() };
        so[18..20].copy_from_slice(&bytes);
        let problem = check(written(&so).path()).expect_err("other architecture");
        assert!(matches!(problem, ElfProblem::WrongArchitecture { .. }), "{problem:?}");
        let text = problem.to_string();
        assert!(text.contains(std::env::consts::ARCH) && text.contains("use a build of the plugin for"), "{text}");
    }

    #[test]
    fn another_class_and_byte_order_are_named() {
        let mut so = a_shared_object();
        so[EI_CLASS] = if cfg!(target_pointer_width = "64") { elf::ELFCLASS32 } else { elf::ELFCLASS64 };
        let problem = check(written(&so).path()).expect_err("other class");
        assert!(matches!(problem, ElfProblem::WrongClass { .. }), "{problem:?}");

        let mut so = a_shared_object();
        so[EI_DATA] = if cfg!(target_endian = "little") { elf::ELFDATA2MSB } else { elf::ELFDATA2LSB };
        let problem = check(written(&so).path()).expect_err("other byte order");
        assert!(matches!(problem, ElfProblem::WrongByteOrder { .. }), "{problem:?}");
    }

    #[test]
    fn an_object_file_is_not_a_shared_object() {
        let mut so = a_shared_object();
        let rel = if cfg!(target_endian = "little") { elf::ET_REL.to_le_bytes() } else { elf::ET_REL.to_be_bytes() };
        so[16..18].copy_from_slice(&rel);
        let problem = check(written(&so).path()).expect_err("ET_REL");
        assert_eq!(problem, ElfProblem::NotSharedObject { found: "object file (.o)" });
        // The test binary itself is an executable or a PIE: either way, no panic.
        let _ = check(written(&this_executable()).path());
    }

    #[test]
    fn a_missing_file_is_unreadable() {
        assert!(matches!(check(Path::new("/nonexistent/lib.so")), Err(ElfProblem::Unreadable(_))));
    }
}
