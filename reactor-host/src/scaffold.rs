//! `reactor plugin new`: writes a plugin crate that builds on its own, wherever it is put, and
//! loads in this reactor: Cargo.toml (a `cdylib` on `reactor-plugin-api`), src/lib.rs (a plugin
//! with a manifest, an args schema, a `run` that reads the build and logs, `export_plugins!`, and
//! unit tests on `FakeHost`), README.md and .gitignore. The files are the templates beside this
//! module, filled in for the plugin's name and phase.

use std::io;
use std::path::{Path, PathBuf};

use reactor_plugin_api::{Phase, API_VERSION};

const CARGO_TOML: &str = include_str!("scaffold/Cargo.toml.in");
const LIB_RS: &str = include_str!("scaffold/lib.rs.in");
const README_MD: &str = include_str!("scaffold/README.md.in");
const GITIGNORE: &str = include_str!("scaffold/gitignore.in");

/// Where the source of `reactor-plugin-api` was when this reactor was built: a scaffold made by a
/// reactor built from source depends on that same source, since the crate is not published here.
const BUILD_TIME_API_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../reactor-plugin-api");

/// What `reactor plugin new` was asked for.
#[derive(Debug)]
pub struct Request {
    pub name: String,
    pub phase: Phase,
    /// Where to write the crate; `./NAME` when not given.
    pub dir: Option<PathBuf>,
    /// A `reactor-plugin-api` source directory to depend on (`--api-path`).
    pub api_path: Option<PathBuf>,
}

/// What was written.
#[derive(Debug)]
pub struct Created {
    pub dir: PathBuf,
    pub names: Names,
    pub api: ApiDependency,
    pub files: Vec<&'static str>,
}

/// How the crate depends on `reactor-plugin-api`.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiDependency {
    /// A source directory, given with `--api-path` (or its variable) when `chosen` is true, else
    /// the one this reactor was built from.
    Path { path: PathBuf, chosen: bool },
    /// A crates.io version requirement (`1.1`): no source directory was given or known.
    Registry(String),
}

impl ApiDependency {
    /// The value of the dependency in Cargo.toml, with `features` when there are any.
    fn toml(&self, features: &[&str]) -> String {
        let source = match self {
            ApiDependency::Path { path, .. } => format!("path = {}", toml_string(&path.to_string_lossy())),
            ApiDependency::Registry(version) => format!("version = {}", toml_string(version)),
        };
        if features.is_empty() {
            return match self {
                ApiDependency::Registry(version) => toml_string(version),
                ApiDependency::Path { .. } => format!("{{ {source} }}"),
            };
        }
        let features: Vec<String> = features.iter().map(|f| toml_string(f)).collect();
        format!("{{ {source}, features = [{}] }}", features.join(", "))
    }

    /// One line saying which dependency was written and why.
    pub fn describe(&self) -> String {
        match self {
            ApiDependency::Path { path, chosen: true } => {
                format!("reactor-plugin-api: the source at {} (--api-path / REACTOR_PLUGIN_API_PATH)", path.display())
            }
            ApiDependency::Path { path, chosen: false } => format!(
                "reactor-plugin-api: the source this reactor was built from, {} (--api-path or REACTOR_PLUGIN_API_PATH names another)",
                path.display()
            ),
            ApiDependency::Registry(version) => format!(
                "reactor-plugin-api: version \"{version}\" from crates.io (this reactor's source is not on this machine; --api-path names a source directory)"
            ),
        }
    }
}

/// The names one plugin name gives the crate's parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    /// The package name, as given (`my-plugin`).
    pub crate_name: String,
    /// The library's name (`my_plugin`): the shared object is `lib<lib>.so`, and the log target.
    pub lib: String,
    /// The plugin's key in a build.json: the library's name.
    pub key: String,
    /// The plugin type (`MyPluginPlugin`): the suffix keeps it clear of every name the template
    /// imports or the prelude has (`Plugin`, `Args`, `Result`, …).
    pub plugin_type: String,
    /// The args type (`MyPluginArgs`).
    pub args_type: String,
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("'{name}' is not a usable plugin name: {why}")]
    BadName { name: String, why: String },
    #[error("{0} already exists and is not an empty directory: choose another --dir, or remove it")]
    NotEmpty(PathBuf),
    #[error("--api-path (REACTOR_PLUGIN_API_PATH) {0}: {1}")]
    BadApiPath(PathBuf, String),
    #[error("cannot write the crate in {0}: {1}; choose another --dir, or make room there")]
    Write(PathBuf, io::Error),
}

impl Error {
    /// Whether the request was at fault (rather than the file system).
    pub fn is_invalid_input(&self) -> bool {
        !matches!(self, Error::Write(..))
    }
}

/// Words Rust or Cargo will not take as a crate name.
const RESERVED: &[&str] = &[
    // Rust keywords, strict and reserved (any edition).
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    // The standard library's crates, and the names Cargo keeps for its target directory.
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
];

/// Checks a plugin name and derives the crate's names from it: lowercase ASCII letters, digits,
/// `_` and `-`, starting with a letter, at most 64 characters, and not a Rust keyword.
pub fn names(name: &str) -> Result<Names, Error> {
    let bad = |why: &str| Err(Error::BadName { name: name.to_owned(), why: why.to_owned() });
    const RULE: &str = "use lowercase letters, digits, '_' and '-', starting with a letter (e.g. logs_submitter)";
    if name.is_empty() {
        return bad(RULE);
    }
    if name.len() > 64 {
        return bad("use at most 64 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return bad(RULE);
    }
    let lib = name.replace('-', "_");
    if RESERVED.contains(&lib.as_str()) {
        return bad("Rust or Cargo reserves that word; choose another");
    }
    let camel: String = lib
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    Ok(Names {
        crate_name: name.to_owned(),
        key: lib.clone(),
        lib,
        plugin_type: format!("{camel}Plugin"),
        args_type: format!("{camel}Args"),
    })
}

/// Which `reactor-plugin-api` the crate depends on: `--api-path`, else the source this reactor
/// was built from when it is still there, else the crates.io release of this API's major.minor.
pub fn api_dependency(api_path: Option<&Path>) -> Result<ApiDependency, Error> {
    if let Some(dir) = api_path {
        let bad = |why: String| Error::BadApiPath(dir.to_owned(), why);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
            .map_err(|e| bad(format!("no Cargo.toml there ({e}): name the reactor-plugin-api source directory")))?;
        if !is_api_manifest(&manifest) {
            return Err(bad(
                "its Cargo.toml is not reactor-plugin-api's: name the reactor-plugin-api source directory".to_owned(),
            ));
        }
        let path = dir.canonicalize().map_err(|e| bad(format!("{e}: name the reactor-plugin-api source directory")))?;
        return Ok(ApiDependency::Path { path, chosen: true });
    }
    let built_from = Path::new(BUILD_TIME_API_PATH);
    let known = std::fs::read_to_string(built_from.join("Cargo.toml")).is_ok_and(|m| is_api_manifest(&m));
    match built_from.canonicalize() {
        Ok(path) if known => Ok(ApiDependency::Path { path, chosen: false }),
        _ => Ok(ApiDependency::Registry(major_minor(API_VERSION))),
    }
}

fn is_api_manifest(manifest: &str) -> bool {
    manifest.lines().any(|line| line.replace(' ', "") == "name=\"reactor-plugin-api\"")
}

/// `1.1` of `1.1.0`: the requirement that takes any later 1.x, as the compatibility rule allows.
fn major_minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Writes the crate. Nothing is written when the name, the directory or the API path is refused;
/// a crate left half-written by a write error is removed again.
pub fn create(request: &Request) -> Result<Created, Error> {
    let names = names(&request.name)?;
    let dir = request.dir.clone().unwrap_or_else(|| PathBuf::from(&request.name));
    let existed = match std::fs::read_dir(&dir).map(|mut entries| entries.next().is_none()) {
        Ok(true) => true,
        Ok(false) => return Err(Error::NotEmpty(dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(_) if dir.exists() => return Err(Error::NotEmpty(dir)),
        Err(e) => return Err(Error::Write(dir, e)),
    };
    let api = api_dependency(request.api_path.as_deref())?;
    let files = render_all(&names, request.phase, &api);
    let written = write_files(&dir, &files);
    if let Err(e) = written {
        // Leave the directory as it was: absent, or empty.
        if existed {
            for (path, _) in &files {
                let _ = std::fs::remove_file(dir.join(path));
            }
            let _ = std::fs::remove_dir(dir.join("src"));
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return Err(Error::Write(dir, e));
    }
    Ok(Created { dir, names, api, files: files.iter().map(|(path, _)| *path).collect() })
}

fn write_files(dir: &Path, files: &[(&'static str, String)]) -> io::Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    for (path, text) in files {
        std::fs::write(dir.join(path), text)?;
    }
    Ok(())
}

/// Every file of the crate, by its path in the crate.
fn render_all(names: &Names, phase: Phase, api: &ApiDependency) -> Vec<(&'static str, String)> {
    let other_phase = if phase == Phase::Exit { Phase::Prebuild } else { Phase::Exit };
    let api_version = API_VERSION.to_owned();
    let vars = [
        ("crate", names.crate_name.clone()),
        ("lib", names.lib.clone()),
        ("key", names.key.clone()),
        ("type", names.plugin_type.clone()),
        ("args_type", names.args_type.clone()),
        ("phase", phase.name().to_owned()),
        ("phase_variant", variant(phase)),
        ("other_phase_variant", variant(other_phase)),
        ("api", api.toml(&[])),
        ("api_testing", api.toml(&["testing"])),
        ("api_major", api_version.split('.').next().unwrap_or_default().to_owned()),
        ("api_version", api_version.clone()),
    ];
    let buildstep = phase == Phase::Buildstep;
    vec![
        ("Cargo.toml", render(CARGO_TOML, &vars, buildstep)),
        ("src/lib.rs", render(LIB_RS, &vars, buildstep)),
        ("README.md", render(README_MD, &vars, buildstep)),
        (".gitignore", render(GITIGNORE, &vars, buildstep)),
    ]
}

/// `Postbuild` of `postbuild`: the `Phase` variant's name.
fn variant(phase: Phase) -> String {
    let name = phase.name();
    name[..1].to_ascii_uppercase() + &name[1..]
}

/// Fills a template: the lines between `{{#buildstep}}` and `{{/buildstep}}` are kept only for a
/// buildstep plugin, those between `{{^buildstep}}` and `{{/buildstep}}` only for the others;
/// then each `{{var}}` is replaced.
fn render(template: &str, vars: &[(&str, String)], buildstep: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut keep = true;
    for line in template.split_inclusive('\n') {
        match line.trim() {
            "{{#buildstep}}" => keep = buildstep,
            "{{^buildstep}}" => keep = !buildstep,
            "{{/buildstep}}" => keep = true,
            _ if keep => out.push_str(line),
            _ => {}
        }
    }
    for (name, value) in vars {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

/// A TOML basic string holding `text`.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_for(phase: Phase) -> Vec<(&'static str, String)> {
        let names = names("my-plugin2").expect("a good name");
        render_all(&names, phase, &ApiDependency::Registry("1.1".into()))
    }

    #[test]
    fn a_name_gives_the_crate_library_key_and_types() {
        let n = names("my-plugin2").expect("a good name");
        assert_eq!(
            (n.crate_name.as_str(), n.lib.as_str(), n.key.as_str(), n.plugin_type.as_str(), n.args_type.as_str()),
            ("my-plugin2", "my_plugin2", "my_plugin2", "MyPlugin2Plugin", "MyPlugin2Args")
        );
        assert_eq!(names("a__b").expect("good").plugin_type, "ABPlugin");
    }

    #[test]
    fn bad_names_are_refused_saying_what_to_use() {
        for bad in ["", "My", "9lives", "-x", "_x", "has space", "dots.too", "é", "fn", "self", "test", "std", "deps"]
        {
            let err = names(bad).expect_err(bad).to_string();
            assert!(err.starts_with(&format!("'{bad}' is not a usable plugin name: ")), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
        assert!(names(&"a".repeat(65)).is_err());
        assert!(names(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn every_placeholder_is_filled_for_every_phase() {
        for phase in Phase::ALL {
            for (path, text) in all_for(phase) {
                assert!(!text.contains("{{"), "{path} for {phase} keeps a placeholder:\n{text}");
            }
        }
    }

    #[test]
    fn the_run_and_tests_fit_the_phase() {
        let lib = |phase| all_for(phase).into_iter().find(|(p, _)| *p == "src/lib.rs").expect("lib.rs").1;
        let buildstep = lib(Phase::Buildstep);
        assert!(buildstep.contains("ctx.build_image()") && buildstep.contains(".on_build("));
        assert!(buildstep.contains("[Phase::Buildstep]") && buildstep.contains("FakeHost::new(Phase::Exit,"));
        let exit = lib(Phase::Exit);
        assert!(!exit.contains("build_image") && exit.contains("[Phase::Exit]"));
        assert!(exit.contains("FakeHost::new(Phase::Prebuild,"), "the phase test uses another phase");
        assert!(exit.contains("export_plugins!(MyPlugin2Plugin);"));
    }

    #[test]
    fn the_api_dependency_is_a_path_or_a_version_never_abi_stable() {
        let path = ApiDependency::Path { path: PathBuf::from("/src/a \"b\"/reactor-plugin-api"), chosen: true };
        assert_eq!(path.toml(&[]), r#"{ path = "/src/a \"b\"/reactor-plugin-api" }"#);
        assert_eq!(path.toml(&["testing"]), r#"{ path = "/src/a \"b\"/reactor-plugin-api", features = ["testing"] }"#);
        let version = ApiDependency::Registry("1.1".into());
        assert_eq!(
            (version.toml(&[]), version.toml(&["testing"])),
            (r#""1.1""#.to_owned(), r#"{ version = "1.1", features = ["testing"] }"#.to_owned())
        );
        let cargo = &all_for(Phase::Postbuild)[0].1;
        assert!(cargo.contains("crate-type = [\"cdylib\"]") && cargo.contains("reactor-plugin-api = \"1.1\""));
        assert!(!cargo.contains("abi_stable ="), "abi_stable comes through the API crate only");
        let settings: Vec<&str> = cargo.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
        assert!(settings.contains(&"panic = \"unwind\"") && !settings.iter().any(|l| l.contains("abort")), "{cargo}");
    }

    #[test]
    fn the_version_requirement_is_this_apis_major_and_minor() {
        assert_eq!(major_minor("1.1.0"), "1.1");
        let req = major_minor(API_VERSION);
        assert!(API_VERSION.starts_with(&format!("{req}.")));
    }

    #[test]
    fn the_build_time_source_is_used_when_there_and_api_path_is_checked() {
        match api_dependency(None).expect("resolves") {
            ApiDependency::Path { path, chosen: false } => assert!(path.join("src/ffi.rs").is_file()),
            other => panic!("this test runs in the source tree: {other:?}"),
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let err = api_dependency(Some(dir.path())).expect_err("no Cargo.toml").to_string();
        assert!(err.contains("no Cargo.toml there"), "{err}");
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"other\"\n").expect("write");
        let err = api_dependency(Some(dir.path())).expect_err("another crate").to_string();
        assert!(err.contains("is not reactor-plugin-api's"), "{err}");
    }

    #[test]
    fn a_non_empty_directory_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("keep.txt"), "mine").expect("write");
        let request =
            Request { name: "x".into(), phase: Phase::Postbuild, dir: Some(dir.path().to_owned()), api_path: None };
        assert!(matches!(create(&request), Err(Error::NotEmpty(_))));
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        let request = Request { dir: Some(empty.clone()), ..request };
        let created = create(&request).expect("an empty directory is fine");
        assert_eq!(created.files, ["Cargo.toml", "src/lib.rs", "README.md", ".gitignore"]);
        assert!(empty.join("src/lib.rs").is_file());
    }
}
