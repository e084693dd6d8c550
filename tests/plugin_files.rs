//! Plugin files that dlopen could crash on, or would refuse less clearly, are refused from
//! their ELF headers first: a truncated real plugin (the first 1 MB of liblogs_submitter.so,
//! which used to end reactor with SIGBUS and nothing printed), garbage, and another
//! architecture's build. Each is exit 3 and one line, whether given with `--load-plugin`, run
//! isolated, checked with `plugins check`, or found in a plugin directory (a warning there).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::util::*;

/// The first `len` bytes of the real logs_submitter plugin, in `dir`.
fn truncated_plugin(dir: &Path, len: usize) -> PathBuf {
    let whole = std::fs::read(plugin("logs_submitter")).expect("read the plugin");
    assert!(whole.len() > len, "the plugin is smaller than {len} bytes");
    let cut = dir.join("liblogs_submitter.so");
    std::fs::write(&cut, &whole[..len]).expect("write");
    cut
}

/// The real plugin, marked as built for another architecture (e_machine, at offset 18).
fn other_architecture_plugin(dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(plugin("logs_submitter")).expect("read the plugin");
    let other: u16 = if std::env::consts::ARCH == "aarch64" { 62 } else { 183 };
    bytes[18..20].copy_from_slice(&other.to_le_bytes());
    let path = dir.join("liblogs_submitter.so");
    std::fs::write(&path, bytes).expect("write");
    path
}

fn request(dir: &Path) -> String {
    build_json(dir, &json!({"image": unique("elf"), "source": {"provider": "path", "uri": "file:///nonexistent"}}))
}

/// One ERROR line naming the file and `words`; no crash; the result document names it too.
fn refused_with(dir: &Path, so: &Path, words: &[&str], extra: &[&str]) {
    let metadata = dir.join("metadata.json");
    let _ = std::fs::remove_file(&metadata);
    let so_arg = so.display().to_string();
    let metadata_arg = metadata.display().to_string();
    let file = request(dir);
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--load-plugin", &so_arg, "build", "json", &file, "--metadata-file", &metadata_arg]);
    let run = reactor(dir, &args, &[]);
    run.expect_code(3);
    assert_eq!(run.errors().len(), 1, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let line = run.errors()[0];
    assert!(line.contains(&format!("--load-plugin {so_arg}: not a loadable shared object: ")), "{line}");
    for word in words {
        assert!(line.contains(word), "'{word}' missing from: {line}");
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&metadata).expect("the result document"))
        .expect("the result document is JSON");
    assert_eq!(doc["exit_code"], 3, "{doc}");
    assert_eq!(doc["failure"]["phase"], "validation", "{doc}");
    let error = doc["failure"]["error"].as_str().expect("failure.error");
    assert!(error.contains(&so_arg) && words.iter().all(|w| error.contains(w)), "{doc}");
}

#[test]
fn a_truncated_real_plugin_is_refused_with_exit_3_and_one_line_not_a_crash() {
    let dir = workdir();
    let cut = truncated_plugin(dir.path(), 1_000_000);
    let words = ["the file is truncated: its segment ", "but the file has 1000000 bytes; reinstall it"];
    refused_with(dir.path(), &cut, &words, &[]);
    // The isolated worker checks the same before it is even started.
    refused_with(dir.path(), &cut, &words, &["--isolate-plugins"]);
}

#[test]
fn a_plugin_cut_after_its_segments_names_the_section_header_table() {
    let dir = workdir();
    let len = std::fs::metadata(plugin("logs_submitter")).expect("stat").len() as usize;
    let cut = truncated_plugin(dir.path(), len - 100);
    refused_with(dir.path(), &cut, &["the file is truncated: its section header table at offset "], &[]);
}

#[test]
fn garbage_named_so_is_not_an_elf_file() {
    let dir = workdir();
    let garbage = dir.path().join("libgarbage.so");
    std::fs::write(&garbage, vec![0xa5u8; 70_000]).expect("write");
    refused_with(dir.path(), &garbage, &["not an ELF file"], &[]);
}

#[test]
fn another_architectures_plugin_names_both_architectures() {
    let dir = workdir();
    let other = other_architecture_plugin(dir.path());
    let theirs = if std::env::consts::ARCH == "aarch64" { "x86_64" } else { "aarch64" };
    let words = [format!("an ELF file for {theirs}, but this machine is {}", std::env::consts::ARCH)];
    refused_with(dir.path(), &other, &[words[0].as_str(), "use a build of the plugin for"], &[]);
}

#[test]
fn plugins_check_refuses_a_truncated_plugin_in_one_line() {
    let dir = workdir();
    let cut = truncated_plugin(dir.path(), 1_000_000);
    let run = reactor(dir.path(), &["plugins", "check", &cut.display().to_string()], &[]);
    run.expect_code(3);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("the file is truncated: its segment "), "{said}");
    assert!(!said.contains("cdylib crate built for this machine"), "one remedy, not two: {said}");
}

#[test]
fn a_truncated_plugin_in_a_plugin_directory_is_a_warning_and_the_build_goes_on() {
    let dir = workdir();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("mkdir");
    truncated_plugin(&plugins, 1_000_000);
    // An optional plugin no file is known to hold: the build opens the directory's files.
    let file = build_json(
        dir.path(),
        &json!({
            "image": unique("elf"),
            "source": {"provider": "path", "uri": "file:///nonexistent"},
            "exit_plugins": [{"name": "not_in_any_file", "required": false}],
        }),
    );
    let plugin_dir = plugins.display().to_string();
    let run = reactor(dir.path(), &["--plugin-dir", &plugin_dir, "build", "json", &file, "--dry-run"], &[]);
    run.expect_code(0);
    let warned: Vec<&str> = run.stderr.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(
        warned
            .iter()
            .any(|w| w
                .contains("liblogs_submitter.so (--plugin-dir): not a loadable shared object: the file is truncated")),
        "{}",
        run.stderr
    );
    assert!(run.errors().is_empty(), "{}", run.stderr);
}
