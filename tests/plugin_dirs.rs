//! Plugin directories: discovery (its order, broken files, keys held twice, packages opened only
//! when needed), refusal of files others could change, and `plugins list|inspect|check`.
//!
//! Every reactor here runs with HOME, XDG_DATA_HOME and XDG_CACHE_HOME in a temporary directory,
//! REACTOR_PLUGIN_PATH empty and the system directory moved there (REACTOR_SYSTEM_PLUGIN_DIR),
//! so nothing depends on the machine's own plugin directories.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::util::*;

/// A test's world: a home whose user and system plugin directories are its own.
struct Home {
    dir: tempfile::TempDir,
    plugin_path: String,
}

impl Home {
    fn new() -> Home {
        Home { dir: workdir(), plugin_path: String::new() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn user_dir(&self) -> PathBuf {
        self.path().join("data/reactor/plugins")
    }

    fn system_dir(&self) -> PathBuf {
        self.path().join("system-plugins")
    }

    /// Runs reactor in this world.
    fn run(&self, args: &[&str]) -> Run {
        let home = self.path().display().to_string();
        let data = self.path().join("data").display().to_string();
        let cache = self.path().join("cache").display().to_string();
        let system = self.system_dir().display().to_string();
        let env = [
            ("HOME", home.as_str()),
            ("XDG_DATA_HOME", data.as_str()),
            ("XDG_CACHE_HOME", cache.as_str()),
            ("REACTOR_SYSTEM_PLUGIN_DIR", system.as_str()),
            ("REACTOR_PLUGIN_PATH", self.plugin_path.as_str()),
        ];
        reactor(self.path(), args, &env)
    }

    /// A `--dry-run` build of a build.json listing `postbuild` plugins, with `flags` before it.
    fn dry_run(&self, flags: &[&str], postbuild: Value) -> Run {
        let file = build_json(
            self.path(),
            &json!({"image": "plugin-dirs:test", "source": {"provider": "path", "uri": "."}, "postbuild_plugins": postbuild}),
        );
        let mut args = flags.to_vec();
        args.extend(["build", "json", file.as_str(), "--dry-run"]);
        self.run(&args)
    }

    /// Makes a plugin directory under the home.
    fn dir(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        chmod(&dir, 0o755);
        dir
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Copies the fixture `fixture` into `dir` as `name`; returns the copy's path.
fn drop_in(fixture: &str, dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let to = dir.join(name);
    std::fs::copy(plugin(fixture), &to).expect("copy plugin");
    chmod(&to, 0o755);
    to
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("a sum").to_owned()
}

/// Installs `files` (name in the package, bytes' source, the manifests it claims) as package
/// `name` under `dir`, as `plugins install` lays it out.
fn package(dir: &Path, name: &str, files: &[(&str, &Path, Value)]) -> PathBuf {
    let package_dir = dir.join(name);
    std::fs::create_dir_all(&package_dir).expect("mkdir");
    chmod(&package_dir, 0o755);
    let mut entries = Vec::new();
    for (file_name, source, plugins) in files {
        let to = package_dir.join(file_name);
        std::fs::copy(source, &to).expect("copy");
        chmod(&to, 0o755);
        entries.push(json!({"name": file_name, "sha256": sha256(&to), "plugins": plugins}));
    }
    let manifest = json!({"name": name, "version": "1.0.0", "api_version": "1.1.0", "files": entries});
    std::fs::write(package_dir.join("reactor-plugin.json"), manifest.to_string()).expect("write manifest");
    package_dir
}

/// The manifests a real file exports, as `plugins inspect --json` reads them.
fn manifests_of(home: &Home, file: &Path) -> Value {
    let run = home.run(&["plugins", "inspect", "--json", &path_str(file)]);
    run.expect_code(0);
    let shown: Value = serde_json::from_str(&run.stdout).expect("inspect --json is JSON");
    let fields = ["key", "version", "description", "phases", "allowed_to_fail", "requires", "args_schema"];
    Value::Array(
        shown
            .as_array()
            .expect("a list")
            .iter()
            .map(|p| fields.iter().map(|f| ((*f).to_owned(), p[f].clone())).collect())
            .collect(),
    )
}

/// The plan line of the plugin `key`, e.g. `1. recorder 0.2.0 (/…/libtest_plugins.so), …`.
fn planned<'a>(run: &'a Run, key: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.trim_start().split(' ').nth(1) == Some(key))
        .unwrap_or_else(|| panic!("{key} is not in the plan:\n{}\n{}", run.stdout, run.stderr))
}

/// The value of `inspect`'s line `  NAME: VALUE`.
fn field<'a>(run: &'a Run, name: &str) -> &'a str {
    let opening = format!("  {name}:");
    let line =
        run.stdout.lines().find(|l| l.starts_with(&opening)).unwrap_or_else(|| panic!("no {name}:\n{}", run.stdout));
    line[opening.len()..].trim()
}

fn warnings(run: &Run) -> Vec<&str> {
    run.stderr.lines().filter(|l| l.contains(" WARN ")).collect()
}

const RECORDER: &str = r#"{"name": "recorder", "args": {"path": "/dev/null", "label": "x"}}"#;

fn recorder() -> Value {
    serde_json::from_str(RECORDER).expect("json")
}

#[test]
fn a_directorys_good_plugins_load_and_a_broken_file_is_a_warning_naming_it() {
    let home = Home::new();
    let dir = home.dir("plugins");
    drop_in("test_plugins", &dir, "libtest_plugins.so");
    drop_in("logs_submitter", &dir, "liblogs_submitter.so");
    let invalid = drop_in("test_invalid", &dir, "libtest_invalid.so");
    std::fs::write(dir.join("libnotes.so"), "not a shared object").expect("write");
    std::fs::write(dir.join("README"), "ignored: not lib*.so").expect("write");
    let d = path_str(&dir);

    let run = home.dry_run(
        &["--plugin-dir", &d],
        json!([recorder(), {"name": "logs_submitter", "args": {"url": "http://127.0.0.1:9/"}}]),
    );
    run.expect_code(0);
    assert!(planned(&run, "recorder").contains(&format!("({}/libtest_plugins.so)", d)), "{}", run.stdout);
    assert!(planned(&run, "logs_submitter").contains(&format!("({}/liblogs_submitter.so)", d)), "{}", run.stdout);
    let warned = warnings(&run);
    assert!(
        warned.iter().any(|w| w.contains(&format!("skipping plugin file {} (--plugin-dir): ", invalid.display()))
            && w.contains("plugin 'no_phase' runs in no phase")
            && w.ends_with("the plugin's author must fix the module")),
        "{}",
        run.stderr
    );
    assert!(
        warned.iter().any(|w| w.contains(&format!("{d}/libnotes.so (--plugin-dir): not a loadable shared object"))),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("README"), "{}", run.stderr);

    // The second build knows every file from the cache: the broken ones are still named.
    let again = home.dry_run(&["--plugin-dir", &d], json!([recorder()]));
    again.expect_code(0);
    assert_eq!(warnings(&again).len(), 2, "{}", again.stderr);
}

#[test]
fn a_build_asking_for_a_broken_files_plugin_names_the_file_and_the_reason() {
    let home = Home::new();
    let dir = home.dir("plugins");
    let invalid = drop_in("test_invalid", &dir, "libtest_invalid.so");
    std::fs::write(dir.join("libghost.so"), "not a shared object").expect("write");
    let d = path_str(&dir);

    // Its handshake told the key: the file is named with why it did not load.
    let run = home.dry_run(&["--plugin-dir", &d], json!([{"name": "no_phase"}]));
    run.expect_code(3);
    let line = run.errors().into_iter().find(|l| l.contains("no_phase")).unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(
        line.contains(&format!(
            "/postbuild_plugins/0: plugin 'no_phase' is not available: its file {} did not load: ",
            invalid.display()
        )) && line.contains("plugin 'no_phase' runs in no phase"),
        "{line}"
    );
    assert!(!line.contains("no such plugin"), "{line}");

    // A file that never loaded, named after the key.
    let run = home.dry_run(&["--plugin-dir", &d], json!([{"name": "ghost"}]));
    run.expect_code(3);
    assert!(
        run.stderr.contains(&format!(
            "plugin 'ghost' is not available: its file {d}/libghost.so did not load: not a loadable shared object"
        )),
        "{}",
        run.stderr
    );

    // A broken --load-plugin file stays an error of its own.
    let run = home.dry_run(&["--load-plugin", &path_str(&invalid)], json!([]));
    run.expect_code(3);
    assert!(run.stderr.contains(&format!("--load-plugin {}: ", invalid.display())), "{}", run.stderr);
}

#[test]
fn two_files_of_one_directory_with_one_key_are_an_error_naming_both() {
    let home = Home::new();
    let dir = home.dir("plugins");
    let first = drop_in("test_plugins", &dir, "liba.so");
    let second = drop_in("test_plugins", &dir, "libb.so");
    let d = path_str(&dir);
    let run = home.dry_run(&["--plugin-dir", &d], json!([recorder()]));
    run.expect_code(3);
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "one line for the pair:\n{}", run.stderr);
    assert!(
        errors[0].contains(&format!(
            "plugin directory {d} (--plugin-dir): {} and {} both hold the plugins 'feature_probe', ",
            first.display(),
            second.display()
        )) && errors[0].contains("'recorder'")
            && errors[0].ends_with("remove one of them"),
        "{}",
        errors[0]
    );
    // list says so too, and fails.
    let list = home.run(&["--plugin-dir", &d, "plugins", "list"]);
    list.expect_code(3);
    assert!(list.stderr.contains("both hold the plugins"), "{}", list.stderr);
}

#[test]
fn across_sources_the_earlier_wins_with_a_warning_naming_both_files() {
    let mut home = Home::new();
    let cli = home.dir("cli");
    let env = home.dir("env");
    let from_cli = drop_in("test_plugins", &cli, "libtest_plugins.so");
    let from_env = drop_in("test_plugins", &env, "libtest_plugins.so");
    home.plugin_path = path_str(&env);
    let run = home.dry_run(&["--plugin-dir", &path_str(&cli)], json!([recorder()]));
    run.expect_code(0);
    assert!(planned(&run, "recorder").contains(&path_str(&from_cli)), "{}", run.stdout);
    assert!(
        warnings(&run).iter().any(|w| w
            .contains("plugins 'feature_probe', 'container_probe', 'workspace_probe', 'panicker', 'recorder', ")
            && w.contains(&format!(
                "of {} (REACTOR_PLUGIN_PATH) are not used: {} (--plugin-dir), an earlier source, has the same keys",
                from_env.display(),
                from_cli.display()
            ))),
        "{}",
        run.stderr
    );
}

#[test]
fn sources_are_searched_in_order_load_plugin_plugin_dir_path_user_system() {
    let mut home = Home::new();
    let named = drop_in("logs_submitter", &home.dir("named"), "liblogs_submitter.so");
    let cli = home.dir("cli");
    let env = home.dir("env");
    let places = [cli.clone(), env.clone(), home.user_dir(), home.system_dir()];
    for dir in &places {
        drop_in("logs_submitter", dir, "liblogs_submitter.so");
    }
    // Made by create_dir_all under the home: make them as an ops team would.
    for dir in [home.path().join("data"), home.path().join("data/reactor"), home.user_dir()] {
        chmod(&dir, 0o755);
    }
    home.plugin_path = format!("{}:{}", path_str(&home.dir("env-empty")), path_str(&env));
    let entry = json!([{"name": "logs_submitter", "args": {"url": "http://127.0.0.1:9/"}}]);
    let from = |run: &Run| planned(run, "logs_submitter").to_owned();

    let named_str = path_str(&named);
    let cli_str = path_str(&cli);
    let run = home.dry_run(&["--plugin-dir", &cli_str, "--load-plugin", &named_str], entry.clone());
    run.expect_code(0);
    assert!(from(&run).contains(&format!("({named_str})")), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!("plugin 'logs_submitter' of {cli_str}/liblogs_submitter.so (--plugin-dir) is not used: {named_str} (--load-plugin)")),
        "{}",
        run.stderr
    );

    let expected = [(&places[0], true), (&places[1], false), (&places[2], false), (&places[3], false)];
    for (i, (winner, with_flag)) in expected.iter().enumerate() {
        if i > 0 {
            // Take the previous winner away: the next source wins.
            std::fs::remove_file(places[i - 1].join("liblogs_submitter.so")).expect("remove");
        }
        let flags: Vec<&str> = if *with_flag { vec!["--plugin-dir", &cli_str] } else { Vec::new() };
        let run = home.dry_run(&flags, entry.clone());
        run.expect_code(0);
        let wanted = format!("({}/liblogs_submitter.so)", winner.display());
        assert!(from(&run).contains(&wanted), "source {i}: {}\n{}", run.stdout, run.stderr);
    }
}

#[test]
fn a_build_opens_only_the_package_files_it_needs_and_checks_their_sha256() {
    let home = Home::new();
    let dir = home.user_dir();
    std::fs::create_dir_all(&dir).expect("mkdir");
    for d in [home.path().join("data"), home.path().join("data/reactor"), dir.clone()] {
        chmod(&d, 0o755);
    }
    let real = PathBuf::from(plugin("logs_submitter"));
    let logs_manifests = manifests_of(&home, &real);
    package(&dir, "logs", &[("liblogs_submitter.so", &real, logs_manifests)]);
    // A package whose file is not even a shared object: fine as long as no build needs it.
    let garbage = home.path().join("garbage.so");
    std::fs::write(&garbage, "never opened").expect("write");
    let lazy = json!([{"key": "never_opened", "phases": ["exit"], "version": "9.9.9", "description": "claims a key"}]);
    package(&dir, "lazy", &[("liblazy.so", &garbage, lazy)]);

    let entry = json!([{"name": "logs_submitter", "args": {"url": "http://127.0.0.1:9/"}}]);
    let run = home.dry_run(&[], entry.clone());
    run.expect_code(0);
    assert!(
        planned(&run, "logs_submitter").contains(&format!("({}/logs/liblogs_submitter.so)", dir.display())),
        "{}",
        run.stdout
    );
    assert!(warnings(&run).is_empty(), "the lazy package's file was not opened:\n{}", run.stderr);

    // list reads its manifest: no code runs.
    let list = home.run(&["plugins", "list", "--json"]);
    list.expect_code(0);
    let listed: Value = serde_json::from_str(&list.stdout).expect("JSON");
    let never =
        listed["plugins"].as_array().expect("plugins").iter().find(|p| p["key"] == "never_opened").expect("listed");
    assert_eq!(never["source"], "user");
    assert_eq!(never["package"], "lazy 1.0.0");
    assert_eq!(never["version"], "9.9.9");

    // A build that needs it opens it, and says why it fails.
    let file = build_json(
        home.path(),
        &json!({"image": "x", "source": {"provider": "path", "uri": "."}, "exit_plugins": [{"name": "never_opened"}]}),
    );
    let run = home.run(&["build", "json", &file, "--dry-run"]);
    run.expect_code(3);
    assert!(
        run.stderr.contains(&format!(
            "plugin 'never_opened' is not available: its file {}/lazy/liblazy.so did not load: not a loadable shared object",
            dir.display()
        )),
        "{}",
        run.stderr
    );

    // A package file changed since install is not opened.
    let installed = dir.join("logs/liblogs_submitter.so");
    std::fs::copy(plugin("test_puller"), &installed).expect("replace");
    let run = home.dry_run(&[], entry);
    run.expect_code(3);
    assert!(
        run.stderr.contains(&format!("its file {} did not load: its sha256 is ", installed.display()))
            && run
                .stderr
                .contains("package 'logs' 1.0.0 recorded at install: the file changed since; reinstall the package"),
        "{}",
        run.stderr
    );
}

#[test]
fn plugins_others_can_change_are_refused_unless_allowed() {
    let home = Home::new();
    let open_dir = home.dir("open");
    drop_in("test_plugins", &open_dir, "libtest_plugins.so");
    chmod(&open_dir, 0o777);
    let o = path_str(&open_dir);
    let run = home.dry_run(&["--plugin-dir", &o], json!([recorder()]));
    run.expect_code(2);
    assert!(
        run.stderr.contains(&format!("{o}: refused: the directory is writable by every user (mode 0777), so another user could make reactor run their code; fix: chmod go-w {o}, or pass --allow-insecure-plugin-dirs to accept the risk")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("these plugin files did not load and may hold it: {o} (refused: ")),
        "{}",
        run.stderr
    );
    let allowed = home.dry_run(&["--allow-insecure-plugin-dirs", "--plugin-dir", &o], json!([recorder()]));
    allowed.expect_code(0);
    assert!(planned(&allowed, "recorder").contains(&o), "{}", allowed.stdout);

    // A group-writable file among good ones: only it is refused, naming the key it would give.
    let dir = home.dir("mixed");
    let group_writable = drop_in("test_plugins", &dir, "libtest_plugins.so");
    chmod(&group_writable, 0o775);
    drop_in("logs_submitter", &dir, "liblogs_submitter.so");
    let d = path_str(&dir);
    let run = home
        .dry_run(&["--plugin-dir", &d], json!([{"name": "logs_submitter", "args": {"url": "http://127.0.0.1:9/"}}]));
    run.expect_code(0);
    assert!(
        run.stderr
            .contains(&format!("{}: refused: the file is writable by its group (mode 0775)", group_writable.display())),
        "{}",
        run.stderr
    );

    // A file owned by another user (not root). Once loaded (allowed), its keys are known, and
    // a build refusing it names it.
    chmod(&group_writable, 0o755);
    std::os::unix::fs::chown(&group_writable, Some(65534), None).expect("chown (the tests run as root)");
    home.dry_run(&["--allow-insecure-plugin-dirs", "--plugin-dir", &d], json!([recorder()])).expect_code(0);
    let run = home.dry_run(&["--plugin-dir", &d], json!([recorder()]));
    run.expect_code(3);
    assert!(
        run.stderr.contains(&format!(
            "plugin 'recorder' is not available: its file {} did not load: refused: the file belongs to another user (uid 65534; you are uid 0)",
            group_writable.display()
        )),
        "{}",
        run.stderr
    );

    // A --load-plugin file others can write is an error.
    let run = home.dry_run(&["--load-plugin", &path_str(&group_writable)], json!([]));
    run.expect_code(3);
    assert!(
        run.stderr.contains(&format!(
            "--load-plugin {}: refused: the file belongs to another user",
            group_writable.display()
        )),
        "{}",
        run.stderr
    );
    let run = home
        .dry_run(&["--allow-insecure-plugin-dirs", "--load-plugin", &path_str(&group_writable)], json!([recorder()]));
    run.expect_code(0);
}

#[test]
fn list_shows_built_in_and_found_plugins_in_text_and_json() {
    let home = Home::new();
    let dir = home.dir("plugins");
    let checked = drop_in("logs_submitter", &dir, "liblogs_submitter.so");
    let fresh = drop_in("test_puller", &dir, "libtest_puller.so");
    let pkg_dir = home.dir("pkgs");
    let real = PathBuf::from(plugin("test_plugins"));
    package(&pkg_dir, "probes", &[("libtest_plugins.so", &real, manifests_of(&home, &real))]);
    // check loads the file, so that list knows its plugins afterwards.
    home.run(&["plugins", "check", &path_str(&checked)]).expect_code(0);
    let d = path_str(&dir);
    let p = path_str(&pkg_dir);

    let run = home.run(&["--plugin-dir", &d, "--plugin-dir", &p, "plugins", "list", "--json"]);
    run.expect_code(0);
    let listed: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let plugins = listed["plugins"].as_array().expect("plugins");
    let find = |key: &str, source: &str| {
        plugins
            .iter()
            .find(|p| p["key"] == key && p["source"] == source)
            .unwrap_or_else(|| panic!("{key} {source}: {listed:#}"))
    };
    let logs = find("logs_submitter", "--plugin-dir");
    assert_eq!(logs["phases"], json!(["postbuild", "exit"]));
    assert_eq!(logs["api_version"], "1.2.0");
    assert_eq!(logs["description"], r#"POSTs the build's log lines as JSON {"logs": [...]} to a URL"#);
    assert_eq!(logs["file"], json!(checked));
    assert_eq!(logs["used"], true);
    let recorder = find("recorder", "--plugin-dir");
    assert_eq!(recorder["package"], "probes 1.0.0");
    assert_eq!(recorder["file"], json!(pkg_dir.join("probes/libtest_plugins.so")));
    // test_plugins has a tag_and_push: it replaces the built-in.
    let builtin = find("tag_and_push", "built-in");
    assert_eq!(builtin["used"], false);
    assert!(builtin["not_used_because"].as_str().expect("why").starts_with("replaced by "), "{builtin}");
    assert_eq!(find("docker_api", "built-in")["used"], true);
    // Never loaded: listed as such, not run.
    assert_eq!(listed["not_inspected"], json!([{"file": fresh, "source": "--plugin-dir"}]));
    assert!(!plugins.iter().any(|p| p["key"] == "puller"), "{listed:#}");

    let text = home.run(&["--plugin-dir", &d, "--plugin-dir", &p, "plugins", "list"]);
    text.expect_code(0);
    let header = text.stdout.lines().next().expect("a header");
    assert!(
        header.starts_with("KEY")
            && header.contains("PHASES")
            && header.contains("SOURCE")
            && header.ends_with("DESCRIPTION"),
        "{header}"
    );
    let logs_line = text.stdout.lines().find(|l| l.starts_with("logs_submitter ")).expect("logs_submitter listed");
    for part in ["postbuild,exit", "0.3.0", "1.2.0", "--plugin-dir", &path_str(&checked), "POSTs the build's log lines"]
    {
        assert!(logs_line.contains(part), "{part}: {logs_line}");
    }
    assert!(
        text.stdout.contains("not inspected yet")
            && text.stdout.contains(&format!("  {} (--plugin-dir)", fresh.display())),
        "{}",
        text.stdout
    );

    // The same alias, `plugin`.
    home.run(&["plugin", "list"]).expect_code(0);

    // A package file changed since install is not listed as available.
    std::fs::write(pkg_dir.join("probes/libtest_plugins.so"), "changed").expect("write");
    let run = home.run(&["--plugin-dir", &p, "plugins", "list", "--json"]);
    run.expect_code(0);
    let listed: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert!(!listed["plugins"].as_array().expect("plugins").iter().any(|p| p["key"] == "recorder"), "{listed:#}");
    assert!(
        listed["warnings"][0].as_str().expect("a warning").contains("the file changed since; reinstall the package"),
        "{listed:#}"
    );
}

#[test]
fn inspect_shows_a_manifest_its_args_file_and_sha256_in_text_and_json() {
    let home = Home::new();
    let dir = home.dir("plugins");
    let logs = drop_in("logs_submitter", &dir, "liblogs_submitter.so");
    let sum = sha256(&logs);

    // A path: loaded.
    let run = home.run(&["plugins", "inspect", &path_str(&logs)]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("plugin logs_submitter 0.3.0\n"), "{}", run.stdout);
    assert_eq!(field(&run, "description"), r#"POSTs the build's log lines as JSON {"logs": [...]} to a URL"#);
    assert_eq!(field(&run, "phases"), "postbuild, exit");
    assert_eq!(field(&run, "interface"), "reactor-plugin-api 1.2.0");
    assert_eq!(field(&run, "file"), path_str(&logs));
    assert_eq!(field(&run, "sha256"), sum);
    assert!(run.stdout.contains("| arg | type | required | default | description |\n"), "{}", run.stdout);
    assert!(run.stdout.contains("| `url` | string | yes |  | where the logs are posted |"), "{}", run.stdout);

    // A key, found in a directory (known from the cache now): no code runs.
    let run = home.run(&["--plugin-dir", &path_str(&dir), "plugins", "inspect", "logs_submitter", "--json"]);
    run.expect_code(0);
    let shown: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(shown[0]["key"], "logs_submitter");
    assert_eq!(shown[0]["sha256"], json!(sum));
    assert_eq!(shown[0]["file"], json!(logs));
    assert_eq!(shown[0]["source"], "--plugin-dir");
    assert_eq!(shown[0]["args_schema"]["required"], json!(["url"]));

    // A built-in.
    let run = home.run(&["plugins", "inspect", "tag_and_push"]);
    run.expect_code(0);
    assert_eq!(field(&run, "file"), "(built into reactor)");
    assert!(run.stdout.contains("| `registries` | object | yes |"), "{}", run.stdout);

    // Several plugins in one file, as JSON.
    let run = home.run(&["plugins", "inspect", "--json", &plugin("test_plugins")]);
    run.expect_code(0);
    let shown: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert!(shown
        .as_array()
        .expect("list")
        .iter()
        .any(|p| p["key"] == "recorder" && p["args_schema"]["required"] == json!(["path", "label"])));

    // Unknown key, with a file never inspected that may hold it.
    let fresh = drop_in("test_puller", &dir, "libtest_puller.so");
    let run = home.run(&["--plugin-dir", &path_str(&dir), "plugins", "inspect", "puller"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("no plugin 'puller' is available")
            && run.stderr.contains(&format!("may hold it: {}", fresh.display())),
        "{}",
        run.stderr
    );
    // A file that does not load.
    let run = home.run(&["plugins", "inspect", &plugin("test_invalid")]);
    run.expect_code(3);
    assert!(run.stderr.contains("runs in no phase"), "{}", run.stderr);
}

#[test]
fn check_says_for_each_file_whether_it_would_load_and_how_to_fix_it() {
    let home = Home::new();
    let dir = home.dir("plugins");
    let good = drop_in("logs_submitter", &dir, "liblogs_submitter.so");
    let run = home.run(&["plugins", "check", &path_str(&good), &plugin("test_plugins")]);
    run.expect_code(0);
    assert!(
        run.stdout.contains(&format!("{}: ok: 'logs_submitter' 0.3.0 (reactor-plugin-api 1.2.0)", good.display())),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);

    let text = dir.join("libtext.so");
    std::fs::write(&text, "not a shared object").expect("write");
    let missing = dir.join("libmissing.so");
    let invalid = plugin("test_invalid");
    let open = drop_in("test_puller", &home.dir("other"), "libtest_puller.so");
    chmod(&open, 0o666);
    let run = home.run(&[
        "plugins",
        "check",
        &path_str(&good),
        &invalid,
        &path_str(&text),
        &path_str(&missing),
        &path_str(&open),
    ]);
    run.expect_code(3);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "one line per file:\n{}", run.stdout);
    assert!(lines[0].ends_with("ok: 'logs_submitter' 0.3.0 (reactor-plugin-api 1.2.0)"), "{}", lines[0]);
    assert!(
        lines[1].starts_with(&format!("{invalid}: ")) && lines[1].ends_with("the plugin's author must fix the module"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(&format!("{}: not a loadable shared object", text.display()))
            && lines[2].contains("rebuild it"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], format!("{}: no such file: check the path", missing.display()));
    assert!(
        lines[4].contains("refused: the file is writable by every user (mode 0666)")
            && lines[4].contains("fix: chmod go-w"),
        "{}",
        lines[4]
    );

    // A directory: each of its files, and its own problems.
    let run = home.run(&["plugins", "check", &path_str(&dir)]);
    run.expect_code(3);
    assert!(run.stdout.contains(&format!("{}: ok: 'logs_submitter'", good.display())), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("{}: not a loadable shared object", text.display())), "{}", run.stdout);
}

#[test]
fn a_real_build_runs_a_plugin_from_a_package_in_the_system_directory() {
    let home = Home::new();
    let system = home.system_dir();
    std::fs::create_dir_all(&system).expect("mkdir");
    chmod(&system, 0o755);
    let real = PathBuf::from(plugin("test_plugins"));
    package(&system, "probes", &[("libtest_plugins.so", &real, manifests_of(&home, &real))]);
    let image = unique("plugin-dirs");
    let _cleanup = Images(vec![image.clone()]);
    git_repo(&home.path().join("repo"), &[("Dockerfile", "FROM busybox:latest\n")]);
    let record = home.path().join("record.txt");
    let file = build_json(
        home.path(),
        &json!({"image": image, "git_url": "repo",
                "postbuild_plugins": [{"name": "recorder", "args": {"path": record, "label": "from-package"}}],
                "exit_plugins": [{"name": "remove_built_image"}]}),
    );
    let run = home.run(&["build", "json", &file, "--metadata-file", "m.json"]);
    run.expect_code(0);
    assert_eq!(std::fs::read_to_string(&record).expect("the recorder ran"), "postbuild from-package\n");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(home.path().join("m.json")).expect("metadata")).expect("JSON");
    let loaded =
        doc["loaded_plugins"].as_array().expect("loaded").iter().find(|p| p["key"] == "recorder").expect("recorder");
    assert_eq!(loaded["origin"], json!(system.join("probes/libtest_plugins.so")));
}

#[test]
fn once_known_a_build_opens_only_the_hand_dropped_files_it_uses_and_list_opens_none() {
    let home = Home::new();
    let dir = home.dir("plugins");
    // test_named's key is its file's name: three copies, three plugins.
    for name in ["libnamed_a.so", "libnamed_b.so", "libnamed_c.so"] {
        drop_in("test_named", &dir, name);
    }
    let d = path_str(&dir);
    let opened = |run: &Run| -> Vec<String> {
        run.stderr
            .lines()
            .filter_map(|l| l.split("opening plugin file ").nth(1))
            .map(|rest| rest.split(' ').next().unwrap_or("").rsplit('/').next().unwrap_or("").to_owned())
            .collect()
    };

    // Never seen: all are opened to learn their keys.
    let first = home.dry_run(&["-v", "--plugin-dir", &d], json!([{"name": "named_b"}]));
    first.expect_code(0);
    assert_eq!(opened(&first), ["libnamed_a.so", "libnamed_b.so", "libnamed_c.so"], "{}", first.stderr);
    assert!(planned(&first, "named_b").contains(&format!("({d}/libnamed_b.so)")), "{}", first.stdout);

    // Known from the cache: only the one the plan uses.
    let second = home.dry_run(&["-v", "--plugin-dir", &d], json!([{"name": "named_c"}]));
    second.expect_code(0);
    assert_eq!(opened(&second), ["libnamed_c.so"], "{}", second.stderr);

    // A file changed since is opened again; list opens nothing.
    drop_in("test_named", &dir, "libnamed_a.so");
    let list = home.run(&["-v", "--plugin-dir", &d, "plugins", "list", "--json"]);
    list.expect_code(0);
    assert!(opened(&list).is_empty(), "{}", list.stderr);
    let listed: Value = serde_json::from_str(&list.stdout).expect("JSON");
    assert_eq!(listed["not_inspected"], json!([{"file": dir.join("libnamed_a.so"), "source": "--plugin-dir"}]));
    let keys: Vec<&str> = listed["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter(|p| p["source"] == "--plugin-dir")
        .filter_map(|p| p["key"].as_str())
        .collect();
    assert_eq!(keys, ["named_b", "named_c"]);
    let third = home.dry_run(&["-v", "--plugin-dir", &d], json!([{"name": "named_c"}]));
    third.expect_code(0);
    assert_eq!(opened(&third), ["libnamed_a.so", "libnamed_c.so"], "{}", third.stderr);
}
