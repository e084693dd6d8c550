//! Plugin packages through the real binary: `reactor plugin package` of a fixture crate,
//! `reactor plugins install` of packages good, corrupt, incompatible, colliding, killed mid-way,
//! signed and unsigned, and `reactor plugins remove`. Every run has its own XDG_DATA_HOME,
//! XDG_CONFIG_HOME and HOME, so the machine's own plugin directories are never touched.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::compat::{compat, so};
use crate::util::*;

const API: &str = reactor_plugin_api::API_VERSION;
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The environment of every reactor run: data, config and home inside the test's directory.
fn home_env(dir: &Path) -> Vec<(String, String)> {
    vec![
        ("XDG_DATA_HOME".into(), dir.join("data").display().to_string()),
        ("XDG_CONFIG_HOME".into(), dir.join("config").display().to_string()),
        ("HOME".into(), dir.join("home").display().to_string()),
    ]
}

/// Runs reactor in `dir` with the test's own home, and `extra` env.
fn run_in(dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let env = home_env(dir);
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(extra);
    reactor(dir, args, &all)
}

/// The single error line of a refused run, without the log prefix; fails unless there is
/// exactly one.
#[track_caller]
fn one_error(run: &Run) -> String {
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "expected one error line:\n{}", run.stderr);
    errors[0].split("] ").nth(1).unwrap_or(errors[0]).to_owned()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Every file under `dir` (relative path → sha256; directories as "dir"); entries whose name
/// starts with a dot at the top level (an install's staging and trash) are left out unless
/// `with_dot_entries`.
fn snapshot(dir: &Path, with_dot_entries: bool) -> BTreeMap<String, String> {
    let mut seen = BTreeMap::new();
    if !dir.exists() {
        return seen;
    }
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.expect("walk");
        let relative = entry.path().strip_prefix(dir).expect("under dir").display().to_string();
        if !with_dot_entries && relative.starts_with('.') {
            continue;
        }
        let what = if entry.file_type().is_dir() {
            "dir".to_owned()
        } else {
            sha256(&std::fs::read(entry.path()).expect("read"))
        };
        seen.insert(relative, what);
    }
    seen
}

/// The top-level entries of `dir` whose names start with a dot.
fn dot_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// The files of a `.tar.gz`, by name.
fn unpack(package: &Path) -> BTreeMap<String, Vec<u8>> {
    let file = std::fs::File::open(package).expect("open package");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut files = BTreeMap::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read entry");
        files.insert(name, bytes);
    }
    files
}

/// Writes a `.tar.gz` holding `files`, as a vendor (or an attacker) might make one by hand.
fn write_package(path: &Path, files: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).expect("create package");
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        archive.append_data(&mut header, name, *bytes).expect("append");
    }
    archive.into_inner().expect("tar").finish().expect("gzip");
}

/// Packages the `logs_submitter` fixture crate with `reactor plugin package` (signed with
/// `sign`, a secret key file), from a target directory holding only its debug build, so the
/// outcome does not depend on a release build lying around.
fn package_logs_submitter(out: &Path, sign: Option<&Path>) -> (Run, PathBuf) {
    let built = PathBuf::from(plugin("logs_submitter"));
    let target = out.join("target");
    std::fs::create_dir_all(target.join("debug")).expect("mkdir");
    let linked = target.join("debug/liblogs_submitter.so");
    if !linked.exists() {
        std::fs::hard_link(&built, &linked).or_else(|_| std::fs::copy(&built, &linked).map(drop)).expect("link");
    }
    let crate_dir = repo_root().join("plugins/logs_submitter");
    let out_arg = out.display().to_string();
    let crate_arg = crate_dir.display().to_string();
    let mut args = vec!["plugin", "package", crate_arg.as_str(), "--out", out_arg.as_str()];
    let key;
    if let Some(sign) = sign {
        key = sign.display().to_string();
        args.extend(["--sign", key.as_str()]);
    }
    let run = run_in(out, &args, &[("CARGO_TARGET_DIR", target.to_str().expect("utf-8"))]);
    (run, out.join(format!("logs_submitter-{VERSION}.tar.gz")))
}

/// One unsigned package of logs_submitter for every test (packaging compresses 60 MiB).
fn logs_submitter_package() -> PathBuf {
    static PACKAGE: OnceLock<PathBuf> = OnceLock::new();
    PACKAGE
        .get_or_init(|| {
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin_install");
            let _ = std::fs::remove_dir_all(&out);
            let (run, package) = package_logs_submitter(&out, None);
            run.expect_code(0);
            package
        })
        .clone()
}

/// The plain `libtest_plugins.so` fixture, installed as the package `test_plugins` in `dir`.
fn install_test_plugins(home: &Path, dir: &Path) -> Value {
    let so = plugin("test_plugins");
    let dir_arg = dir.display().to_string();
    run_in(home, &["plugins", "install", &so, "--dir", &dir_arg], &[]).expect_code(0);
    serde_json::from_slice(&std::fs::read(dir.join("test_plugins/reactor-plugin.json")).expect("record")).expect("JSON")
}

#[test]
fn a_packaged_crate_installs_into_the_user_directory_and_is_removed_again() {
    let home = workdir();
    let package = logs_submitter_package();

    // The package: reactor-plugin.json and the .so, nothing else (the crate has no README).
    let files = unpack(&package);
    assert_eq!(files.keys().collect::<Vec<_>>(), ["liblogs_submitter.so", "reactor-plugin.json"]);
    let manifest: Value = serde_json::from_slice(&files["reactor-plugin.json"]).expect("JSON");
    let built = std::fs::read(plugin("logs_submitter")).expect("read .so");
    assert_eq!(manifest["name"], "logs_submitter");
    assert_eq!(manifest["version"], VERSION);
    assert_eq!(manifest["api_version"], API);
    assert_eq!(manifest["files"][0]["name"], "liblogs_submitter.so");
    assert_eq!(manifest["files"][0]["sha256"], sha256(&built));
    assert_eq!(manifest["files"][0]["plugins"][0]["key"], "logs_submitter");
    assert_eq!(manifest["files"][0]["plugins"][0]["phases"], json!(["postbuild", "exit"]));
    assert_eq!(manifest["files"][0]["plugins"][0]["args_schema"]["required"], json!(["url"]));

    // Installed into $XDG_DATA_HOME/reactor/plugins, with no --dir.
    let run = run_in(home.path(), &["plugins", "install", package.to_str().expect("utf-8")], &[]);
    run.expect_code(0);
    let plugins = home.path().join("data/reactor/plugins");
    let installed = plugins.join("logs_submitter");
    assert_eq!(
        run.stdout.trim(),
        format!("installed logs_submitter {VERSION} in {}: logs_submitter", installed.display())
    );
    let record = std::fs::read(installed.join("reactor-plugin.json")).expect("record");
    assert_eq!(record, files["reactor-plugin.json"], "the record is the package's own reactor-plugin.json");
    let installed_so = installed.join("liblogs_submitter.so");
    assert_eq!(sha256(&std::fs::read(&installed_so).expect("read")), sha256(&built));
    assert_eq!(
        snapshot(&plugins, true).keys().collect::<Vec<_>>(),
        ["logs_submitter", "logs_submitter/liblogs_submitter.so", "logs_submitter/reactor-plugin.json"],
        "no staging directory is left"
    );
    let mode = |p: &Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).expect("stat").permissions());
    assert_eq!(mode(&installed) & 0o777, 0o755);
    assert_eq!(mode(&installed_so) & 0o022, 0, "not writable by group or others");

    // What was installed loads in a build.
    git_repo(&home.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let build = build_json(
        home.path(),
        &json!({"image": unique("installed"), "git_url": "repo",
                "postbuild_plugins": [{"name": "logs_submitter", "args": {"url": "http://127.0.0.1:9/x"}}]}),
    );
    let so_arg = installed_so.display().to_string();
    run_in(home.path(), &["--load-plugin", &so_arg, "build", "json", &build, "--dry-run"], &[]).expect_code(0);

    // Removed: the directory is gone, and nothing is left behind.
    let run = run_in(home.path(), &["plugins", "remove", "logs_submitter"], &[]);
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), format!("removed logs_submitter {VERSION} from {}", plugins.display()));
    assert!(snapshot(&plugins, true).is_empty(), "{:?}", snapshot(&plugins, true));

    let run = run_in(home.path(), &["plugins", "remove", "logs_submitter"], &[]);
    run.expect_code(2);
    assert_eq!(
        one_error(&run),
        format!(
            "plugins remove logs_submitter: no package 'logs_submitter' is installed in {} (nothing is installed there); check the name, and --dir",
            plugins.display()
        )
    );
}

#[test]
fn a_plain_shared_object_installs_as_the_package_of_its_name() {
    let home = workdir();
    let dir = home.path().join("plugins");
    let record = install_test_plugins(home.path(), &dir);
    assert_eq!(record["name"], "test_plugins");
    assert_eq!(record["version"], VERSION);
    assert_eq!(record["api_version"], API);
    let so = std::fs::read(plugin("test_plugins")).expect("read");
    assert_eq!(record["files"][0]["sha256"], sha256(&so));
    let keys: Vec<&str> =
        record["files"][0]["plugins"].as_array().expect("plugins").iter().filter_map(|p| p["key"].as_str()).collect();
    assert!(keys.contains(&"recorder") && keys.contains(&"panicker"), "{keys:?}");
    assert_eq!(
        snapshot(&dir, true).keys().collect::<Vec<_>>(),
        ["test_plugins", "test_plugins/libtest_plugins.so", "test_plugins/reactor-plugin.json"]
    );

    // The same name again is refused without --force, and replaced with it.
    let so_path = plugin("test_plugins");
    let dir_arg = dir.display().to_string();
    let run = run_in(home.path(), &["plugins", "install", &so_path, "--dir", &dir_arg], &[]);
    run.expect_code(2);
    assert_eq!(
        one_error(&run),
        format!(
            "plugins install {so_path}: package 'test_plugins' {VERSION} is already installed in {dir_arg}: add --force to replace it with {VERSION}, or remove it first (reactor plugins remove test_plugins)"
        )
    );
    let run = run_in(home.path(), &["plugins", "install", &so_path, "--dir", &dir_arg, "--force"], &[]);
    run.expect_code(0);
    assert!(run.stdout.starts_with(&format!("replaced test_plugins {VERSION} with {VERSION} in ")), "{}", run.stdout);
    assert!(dot_entries(&dir).is_empty(), "the replaced package was deleted: {:?}", dot_entries(&dir));
}

#[test]
fn a_corrupt_package_is_refused_in_one_line_and_nothing_changes() {
    let home = workdir();
    let dir = home.path().join("plugins");
    install_test_plugins(home.path(), &dir);
    let before = snapshot(&dir, true);
    let dir_arg = dir.display().to_string();

    // One byte of the .so changed: its sha256 no longer matches.
    let files = unpack(&logs_submitter_package());
    let mut so = files["liblogs_submitter.so"].clone();
    let middle = so.len() / 2;
    so[middle] ^= 0xff;
    let bad_checksum = home.path().join("bad-checksum.tar.gz");
    write_package(
        &bad_checksum,
        &[("reactor-plugin.json", &files["reactor-plugin.json"]), ("liblogs_submitter.so", &so)],
    );
    // Cut short: not a whole gzip stream.
    let good = std::fs::read(logs_submitter_package()).expect("read");
    let truncated = home.path().join("truncated.tar.gz");
    std::fs::write(&truncated, &good[..good.len() / 2]).expect("write");
    // No reactor-plugin.json; a file outside the top level.
    let no_manifest = home.path().join("no-manifest.tar.gz");
    write_package(&no_manifest, &[("liblogs_submitter.so", &files["liblogs_submitter.so"])]);
    let escaping = home.path().join("escaping.tar.gz");
    write_package(&escaping, &[("reactor-plugin.json", &files["reactor-plugin.json"]), ("sub/x.so", b"x")]);
    // Not a package at all.
    let text = home.path().join("notes.txt");
    std::fs::write(&text, "not a package").expect("write");

    let cases: [(&Path, String); 5] = [
        (&bad_checksum, "the package is corrupt: liblogs_submitter.so does not match its sha256 in reactor-plugin.json (get the package again)".to_owned()),
        (&truncated, "the package is corrupt: cannot unpack liblogs_submitter.so".to_owned()),
        (&no_manifest, "the package is corrupt: it holds no reactor-plugin.json (packages are made by reactor plugin package)".to_owned()),
        (&escaping, "the package is corrupt: it holds sub/x.so, which is not a file name at its top level".to_owned()),
        (&text, "neither a plugin package (.tar.gz, made by reactor plugin package) nor a plugin shared object (.so)".to_owned()),
    ];
    for (package, reason) in cases {
        let shown = package.display().to_string();
        let run = run_in(home.path(), &["plugins", "install", &shown, "--dir", &dir_arg], &[]);
        run.expect_code(2);
        let line = one_error(&run);
        assert!(line.starts_with(&format!("plugins install {shown}: {reason}")), "{line}");
        assert_eq!(snapshot(&dir, true), before, "{shown} changed the directory");
    }

    // A refused package does not even create the directory it was to go into.
    let fresh = home.path().join("fresh/plugins");
    let fresh_arg = fresh.display().to_string();
    let shown = bad_checksum.display().to_string();
    run_in(home.path(), &["plugins", "install", &shown, "--dir", &fresh_arg], &[]).expect_code(2);
    assert!(!home.path().join("fresh").exists());
}

#[test]
fn an_incompatible_package_is_refused_in_one_line_and_nothing_changes() {
    let home = workdir();
    let dir = home.path().join("plugins");
    install_test_plugins(home.path(), &dir);
    let before = snapshot(&dir, true);
    let dir_arg = dir.display().to_string();
    let reactor_line = format!("this reactor's ({VERSION}, reactor-plugin-api {API})");

    // A plugin built against reactor-plugin-api 2.0, given as a plain .so.
    let next = so(&compat("v2.0"), "compat_next");
    let run = run_in(home.path(), &["plugins", "install", &next, "--dir", &dir_arg], &[]);
    run.expect_code(3);
    assert_eq!(
        one_error(&run),
        format!(
            "plugins install {next}: built against reactor-plugin-api 2.0.0, a newer major than {reactor_line}: upgrade reactor to a release for reactor-plugin-api 2.x, or use a build of the plugin for reactor-plugin-api 1.x"
        )
    );
    assert_eq!(snapshot(&dir, true), before);

    // The same in a package, whose reactor-plugin.json says so: refused before its code runs.
    let bytes = std::fs::read(&next).expect("read");
    let manifest = json!({"name": "compat_next", "version": "2.0.0", "api_version": "2.0.0", "files": [
        {"name": "libcompat_next.so", "sha256": sha256(&bytes), "plugins": [{"key": "compat_next", "phases": ["postbuild"], "version": "2.0.0"}]}
    ]});
    let package = home.path().join("compat_next-2.0.0.tar.gz");
    write_package(&package, &[("reactor-plugin.json", manifest.to_string().as_bytes()), ("libcompat_next.so", &bytes)]);
    let shown = package.display().to_string();
    let run = run_in(home.path(), &["plugins", "install", &shown, "--dir", &dir_arg], &[]);
    run.expect_code(3);
    assert_eq!(
        one_error(&run),
        format!(
            "plugins install {shown}: package 'compat_next' 2.0.0 is built against reactor-plugin-api 2.0.0, a newer major than {reactor_line}: upgrade reactor to a release for reactor-plugin-api 2.x, or use a build of the package for reactor-plugin-api 1.x"
        )
    );
    assert_eq!(snapshot(&dir, true), before);

    // A module that fails every load check: all its problems, in one line.
    let invalid = plugin("test_invalid");
    let run = run_in(home.path(), &["plugins", "install", &invalid, "--dir", &dir_arg], &[]);
    run.expect_code(3);
    let line = one_error(&run);
    assert!(
        line.starts_with(&format!("plugins install {invalid}: plugins number 1 and 2 both have the key 'dup'")),
        "{line}"
    );
    assert!(line.contains("plugin 'no_phase' runs in no phase") && line.contains("'bad_schema'"), "{line}");
    assert!(line.ends_with("; the plugin's author must fix the module"), "{line}");
    assert_eq!(snapshot(&dir, true), before);
}

#[test]
fn a_package_whose_keys_collide_is_refused_naming_both() {
    let home = workdir();
    let dir = home.path().join("plugins");
    install_test_plugins(home.path(), &dir);
    let before = snapshot(&dir, true);
    let dir_arg = dir.display().to_string();

    // The same plugins under another package name.
    let other = home.path().join("libother_plugins.so");
    std::fs::copy(plugin("test_plugins"), &other).expect("copy");
    let shown = other.display().to_string();
    let run = run_in(home.path(), &["plugins", "install", &shown, "--dir", &dir_arg], &[]);
    run.expect_code(2);
    let line = one_error(&run);
    let installed = dir.join("test_plugins/libtest_plugins.so");
    assert!(
        line.starts_with(&format!(
            "plugins install {shown}: package 'other_plugins' has plugin keys that {dir_arg} already provides: 'container_probe', "
        )),
        "{line}"
    );
    assert!(
        line.ends_with(&format!(
            " in {} (package 'test_plugins'); remove those first (reactor plugins remove test_plugins), or install into another --dir",
            installed.display()
        )),
        "{line}"
    );
    assert_eq!(snapshot(&dir, true), before);

    // A plugin file dropped into the directory by hand counts too.
    let by_hand = home.path().join("by-hand");
    std::fs::create_dir_all(&by_hand).expect("mkdir");
    let dropped = by_hand.join("libtest_plugins.so");
    std::fs::copy(plugin("test_plugins"), &dropped).expect("copy");
    let by_hand_arg = by_hand.display().to_string();
    let run = run_in(home.path(), &["plugins", "install", &shown, "--dir", &by_hand_arg], &[]);
    run.expect_code(2);
    let line = one_error(&run);
    assert!(line.contains(&format!("'recorder', 'retag_builder', 'slow', 'tag_and_push', 'workspace_probe' in {}; remove those first (delete {})", dropped.display(), dropped.display())), "{line}");
    assert_eq!(snapshot(&by_hand, true).len(), 1);
}

/// Starts an install that pauses at `point` (the test-only hook), waits until it is there, and
/// kills it with SIGKILL.
fn install_killed_at(home: &Path, package: &Path, dir: &Path, point: &str) {
    let marker = home.join(format!("paused-{point}"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_reactor"));
    command
        .args(["plugins", "install", "--force", "--dir"])
        .arg(dir)
        .arg(package)
        .env("REACTOR_TEST_INSTALL_PAUSE", format!("{point}:{}", marker.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in home_env(home) {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start reactor");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("reactor ended ({status}) before it paused at {point}");
        }
        assert!(Instant::now() < deadline, "reactor never paused at {point}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
}

#[test]
fn an_install_killed_mid_way_leaves_the_old_package_or_the_new_one_never_half() {
    let home = workdir();
    let dir = home.path().join("plugins");
    let old_record = install_test_plugins(home.path(), &dir);
    let before = snapshot(&dir, false);

    // A new version of the package: the same file, a new version and a README.
    let so = std::fs::read(plugin("test_plugins")).expect("read");
    let mut new_record = old_record.clone();
    new_record["version"] = json!("9.9.9");
    let new_package = home.path().join("test_plugins-9.9.9.tar.gz");
    write_package(
        &new_package,
        &[
            ("reactor-plugin.json", serde_json::to_string_pretty(&new_record).expect("json").as_bytes()),
            ("libtest_plugins.so", &so),
            ("README.md", b"version 9.9.9\n"),
        ],
    );

    // Killed after staging and verifying, before the rename: the old package is there, whole.
    install_killed_at(home.path(), &new_package, &dir, "staged");
    assert_eq!(snapshot(&dir, false), before, "the directory is as it was");
    let leftovers = dot_entries(&dir);
    assert!(
        leftovers.len() == 1 && leftovers[0].starts_with(".reactor-staging-"),
        "killed while staging: {leftovers:?}"
    );

    // Killed right after the swap: the new package is there, whole; the old one waits in a
    // dot-directory (the next install deletes it, and the staging leftover above).
    install_killed_at(home.path(), &new_package, &dir, "swapped");
    let installed = snapshot(&dir, false);
    assert_eq!(
        installed.keys().collect::<Vec<_>>(),
        [
            "test_plugins",
            "test_plugins/README.md",
            "test_plugins/libtest_plugins.so",
            "test_plugins/reactor-plugin.json"
        ]
    );
    let record: Value =
        serde_json::from_slice(&std::fs::read(dir.join("test_plugins/reactor-plugin.json")).expect("read"))
            .expect("JSON");
    assert_eq!(record["version"], "9.9.9");
    assert_eq!(dot_entries(&dir).len(), 1, "{:?}", dot_entries(&dir));

    // The next install cleans up what the killed ones left.
    let shown = new_package.display().to_string();
    let dir_arg = dir.display().to_string();
    let run = run_in(home.path(), &["plugins", "install", &shown, "--dir", &dir_arg, "--force"], &[]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("replaced test_plugins 9.9.9 with 9.9.9 in "), "{}", run.stdout);
    assert!(dot_entries(&dir).is_empty(), "{:?}", dot_entries(&dir));
    assert_eq!(snapshot(&dir, true), installed);
}

/// A minisign key pair: the secret key file, and the public key file written into `trusted`.
fn key_pair(dir: &Path, name: &str, trusted: &Path) -> PathBuf {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().expect("key pair");
    let secret = dir.join(format!("{name}.key"));
    std::fs::write(&secret, pair.sk.to_box(None).expect("box").into_string()).expect("write");
    std::fs::create_dir_all(trusted).expect("mkdir");
    std::fs::write(trusted.join(format!("{name}.pub")), pair.pk.to_box().expect("box").into_string()).expect("write");
    // Keys others may change are not trusted: whatever the umask, these are the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(trusted, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(trusted.join(format!("{name}.pub")), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    secret
}

#[test]
fn signed_and_unsigned_packages_under_require_signed() {
    let home = workdir();
    let dir = home.path().join("plugins");
    let dir_arg = dir.display().to_string();
    install_test_plugins(home.path(), &dir);
    // The vendor's key is trusted where install looks by default: $XDG_CONFIG_HOME/reactor/trusted-keys.
    let trusted = home.path().join("config/reactor/trusted-keys");
    let vendor = key_pair(home.path(), "vendor", &trusted);
    let stranger = key_pair(home.path(), "stranger", &home.path().join("not-trusted"));

    let signed_dir = home.path().join("signed");
    let (run, signed) = package_logs_submitter(&signed_dir, Some(&vendor));
    run.expect_code(0);
    assert!(run.stdout.contains(", signed)"), "{}", run.stdout);
    let files = unpack(&signed);
    assert!(files.contains_key("reactor-plugin.json.minisig"), "{:?}", files.keys());

    // Unsigned, a plain .so, or signed with an unknown key: refused under --require-signed.
    let before = snapshot(&dir, true);
    let unsigned = logs_submitter_package().display().to_string();
    let run = run_in(home.path(), &["plugins", "install", &unsigned, "--dir", &dir_arg, "--require-signed"], &[]);
    run.expect_code(2);
    assert_eq!(
        one_error(&run),
        format!("plugins install {unsigned}: package 'logs_submitter' is not signed, and --require-signed is given: ask its vendor for a signed package")
    );
    let plain = plugin("logs_submitter");
    let run = run_in(home.path(), &["plugins", "install", &plain, "--dir", &dir_arg, "--require-signed"], &[]);
    run.expect_code(2);
    assert!(one_error(&run).contains("a plain shared object carries no signature"), "{}", run.stderr);

    let by_stranger_dir = home.path().join("by-stranger");
    let (run, by_stranger) = package_logs_submitter(&by_stranger_dir, Some(&stranger));
    run.expect_code(0);
    let shown = by_stranger.display().to_string();
    let run = run_in(home.path(), &["plugins", "install", &shown, "--dir", &dir_arg, "--require-signed"], &[]);
    run.expect_code(2);
    let line = one_error(&run);
    assert!(
        line.starts_with(&format!("plugins install {shown}: package 'logs_submitter' is signed with the key ")),
        "{line}"
    );
    assert!(
        line.ends_with(&format!("which is not among the trusted keys in {}, and --require-signed is given: add the vendor's minisign public key there (a .pub file) if you trust it", trusted.display())),
        "{line}"
    );
    assert_eq!(snapshot(&dir, true), before);

    // A changed reactor-plugin.json under a trusted key's signature: refused, even without
    // --require-signed.
    let mut manifest: Value = serde_json::from_slice(&files["reactor-plugin.json"]).expect("JSON");
    manifest["version"] = json!("6.6.6");
    let tampered = home.path().join("tampered.tar.gz");
    write_package(
        &tampered,
        &[
            ("reactor-plugin.json", serde_json::to_string_pretty(&manifest).expect("json").as_bytes()),
            ("reactor-plugin.json.minisig", &files["reactor-plugin.json.minisig"]),
            ("liblogs_submitter.so", &files["liblogs_submitter.so"]),
        ],
    );
    let shown = tampered.display().to_string();
    let run = run_in(home.path(), &["plugins", "install", &shown, "--dir", &dir_arg], &[]);
    run.expect_code(2);
    let line = one_error(&run);
    assert!(
        line.starts_with(&format!(
            "plugins install {shown}: package 'logs_submitter': its signature does not verify with the trusted key {}",
            trusted.join("vendor.pub").display()
        )),
        "{line}"
    );
    assert_eq!(snapshot(&dir, true), before);

    // Signed with the trusted key: installed, signature and all.
    let shown = signed.display().to_string();
    let run = run_in(home.path(), &["plugins", "install", &shown, "--dir", &dir_arg, "--require-signed"], &[]);
    run.expect_code(0);
    assert!(run.stdout.contains("(signed by a trusted key): logs_submitter"), "{}", run.stdout);
    assert_eq!(
        std::fs::read(dir.join("logs_submitter/reactor-plugin.json.minisig")).expect("signature kept"),
        files["reactor-plugin.json.minisig"]
    );

    // Without --require-signed, an unknown signer is a warning, and the package installs.
    let elsewhere = home.path().join("elsewhere").display().to_string();
    let shown = by_stranger.display().to_string();
    let run = run_in(home.path(), &["plugins", "install", &shown, "--dir", &elsewhere], &[]);
    run.expect_code(0);
    assert!(run.stderr.contains(" WARN ") && run.stderr.contains("its signature is not checked"), "{}", run.stderr);
}

#[test]
fn plugin_package_refuses_what_is_not_a_built_plugin_crate() {
    let home = workdir();
    let nothing = home.path().join("nothing");
    std::fs::create_dir_all(&nothing).expect("mkdir");
    let shown = nothing.display().to_string();
    let run = run_in(home.path(), &["plugin", "package", &shown], &[]);
    run.expect_code(2);
    assert_eq!(
        one_error(&run),
        format!("plugin package: {shown} has no Cargo.toml: give the directory of the plugin crate")
    );

    let api = repo_root().join("reactor-plugin-api").display().to_string();
    let run = run_in(home.path(), &["plugin", "package", &api], &[]);
    run.expect_code(2);
    assert!(one_error(&run).contains("crate 'reactor-plugin-api' builds no cdylib"), "{}", run.stderr);

    let crate_dir = repo_root().join("plugins/logs_submitter").display().to_string();
    let empty_target = home.path().join("target");
    let run = run_in(
        home.path(),
        &["plugin", "package", &crate_dir],
        &[("CARGO_TARGET_DIR", empty_target.to_str().expect("utf-8"))],
    );
    run.expect_code(2);
    let line = one_error(&run);
    assert!(line.starts_with("plugin package: crate 'logs_submitter' is not built (no "), "{line}");
    assert!(line.ends_with("): run cargo build --release first"), "{line}");
    assert!(std::fs::read_dir(home.path()).expect("ls").all(|e| !e
        .expect("e")
        .path()
        .to_string_lossy()
        .ends_with(".tar.gz")));
}
