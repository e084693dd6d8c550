//! The command line, as clap parses it. Nothing here acts; `app` does.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Builds container images on a Docker engine from a build.json, running plugins before, around
/// and after the build.
#[derive(Debug, Parser)]
#[command(
    name = "reactor",
    version,
    about,
    max_term_width = 100,
    after_help = "\
Example: build the Dockerfile in ./app, tag the image app:1 and push it to a registry:
  reactor build path --uri ./app --image app:1 --target-registries registry.example.com:5000

Each command's --help shows an example. Shell completions: `reactor completions bash`;
the manual page: `reactor man | man -l -`."
)]
pub struct Cli {
    /// Show debug output: plugin args, results and timings (RUST_LOG gives finer control).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Show only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Load plugins from this shared object (repeat for more); a later plugin with the same key
    /// replaces an earlier one.
    #[arg(long = "load-plugin", value_name = "PATH", global = true)]
    pub load_plugin: Vec<PathBuf>,

    /// Also take plugins from this directory (repeat for more): its `lib*.so` files and
    /// installed packages. Searched after --load-plugin and before REACTOR_PLUGIN_PATH, the user
    /// directory ($XDG_DATA_HOME/reactor/plugins) and the system one (/usr/lib/reactor/plugins).
    #[arg(long = "plugin-dir", value_name = "DIR", global = true)]
    pub plugin_dir: Vec<PathBuf>,

    /// Load plugin files and directories that another user could change (writable by group or
    /// others, or owned by another user than you or root). Refused by default, as ssh and sudo do:
    /// whoever can write there could make reactor run their code with your rights.
    #[arg(long = "allow-insecure-plugin-dirs", global = true)]
    pub allow_insecure_plugin_dirs: bool,

    /// Run every loaded plugin in a child reactor process, so that a crash in its code (a
    /// segfault, an abort) fails that plugin instead of killing reactor; built-ins run in-process.
    /// Each request a plugin makes then crosses a pipe (see the README for the cost).
    #[arg(long = "isolate-plugins", global = true)]
    pub isolate_plugins: bool,

    /// How the build is shown on stderr: `plain` (log lines), `json` (one JSON object per line,
    /// see docs/output.md), `tty` (a live view of phases and plugins), or `auto` (tty
    /// on a terminal, plain otherwise).
    #[arg(long, value_enum, value_name = "MODE", global = true, env = "REACTOR_PROGRESS", default_value = "auto")]
    pub progress: crate::progress::Mode,

    /// The Docker engine to build on: unix:///PATH, tcp://HOST:PORT (TLS when DOCKER_TLS_VERIFY
    /// is set), https://HOST:PORT. Chosen as the docker CLI chooses: this, or --context, then
    /// DOCKER_HOST, DOCKER_CONTEXT, the current context of config.json, the default socket.
    #[arg(short = 'H', long = "host", value_name = "URL", global = true)]
    pub host: Option<String>,

    /// Build on the engine of this docker CLI context (`docker context ls`), as `docker --context`.
    #[arg(long, value_name = "NAME", global = true, conflicts_with = "host")]
    pub context: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image.
    #[command(
        subcommand,
        after_help = "\
Example: build as atomic-reactor's build.json says, and keep the result document:
  reactor build json build.json --metadata-file result.json"
    )]
    Build(Build),
    /// Work with plugins: list, inspect and check them; write a new plugin crate; package, install, remove.
    #[command(
        subcommand,
        visible_alias = "plugin",
        after_help = "\
Example: see every plugin a build could use, and where each comes from:
  reactor plugins list"
    )]
    Plugins(Plugins),
    /// Print a shell completion script to stdout.
    #[command(after_help = "\
Example: complete reactor's commands and flags in bash, for your user:
  reactor completions bash > ~/.local/share/bash-completion/completions/reactor")]
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print reactor's manual page (roff) to stdout, or write one page per command into a directory.
    #[command(
        visible_alias = "manpage",
        after_help = "\
Example: read the manual; write the pages a package installs in /usr/share/man/man1:
  reactor man | man -l -
  reactor man --dir target/man"
    )]
    Man {
        /// Write reactor.1, reactor-build.1, reactor-build-json.1, … here (created if missing)
        /// instead of printing reactor.1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Build reactor's own image on the engine: this reactor binary, the plugins shipped with it,
    /// the libraries they need, CA certificates and an ssh client, FROM scratch (no registry).
    #[command(after_help = "\
Example: build the image as reactor:ci on the engine DOCKER_HOST names, then run it:
  reactor create-build-image --tag reactor:ci
  docker run --rm reactor:ci --version")]
    CreateBuildImage {
        /// The image's name[:tag] (default: reactor:<version>).
        #[arg(long, value_name = "NAME")]
        tag: Option<String>,

        /// A plugin file (lib<name>.so) to put in the image's plugin directory
        /// (/usr/lib/reactor/plugins), instead of the plugins shipped beside reactor; repeatable.
        #[arg(long = "plugin", value_name = "FILE")]
        plugin: Vec<PathBuf>,
    },
    /// Run the build a container was started for: read the build.json from /run/share/build.json
    /// or BUILD_JSON and build it as `build json` does; the result document goes to
    /// /run/share/results.json when /run/share is a writable directory.
    #[command(after_help = "\
Example: what a container of the reactor image runs, with the build.json in an environment variable:
  reactor inside-build --input env --results-dir /tekton/results")]
    InsideBuild(InsideBuild),
    /// Serves one plugin module to a parent reactor (--isolate-plugins); not for people.
    #[command(name = "__plugin-worker", hide = true)]
    PluginWorker {
        /// The module's shared object.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum Plugins {
    /// List every plugin available, built-in and found, with where it comes from. Runs no
    /// plugin code: a hand-dropped file never loaded before is listed as not inspected.
    #[command(after_help = "\
Example: list the plugins of ./plugins too, as JSON:
  reactor plugins list --plugin-dir ./plugins --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a plugin's manifest, its args (types, required, defaults, descriptions), its file and
    /// sha256. A PATH is loaded (its code runs); a KEY is looked up as `list` finds it.
    #[command(after_help = "\
Example: show the args the built-in tag_and_push takes:
  reactor plugins inspect tag_and_push")]
    Inspect {
        /// A plugin key, or the path of a plugin file.
        #[arg(value_name = "KEY|PATH")]
        target: String,

        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check that plugin files (or every plugin of a directory) would load in this reactor: exit 0
    /// when all would, else one line per file saying why and how to fix it, and exit 3.
    #[command(after_help = "\
Example: check a freshly built plugin before shipping it:
  reactor plugins check target/release/libmy_plugin.so")]
    Check {
        /// Plugin files, or plugin directories.
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<PathBuf>,
    },
    /// Install a plugin package (.tar.gz) or a plugin file (lib<name>.so) into a plugin directory.
    ///
    /// The package goes into DIR/<name>/ once its checksums and signature are checked, every
    /// file loads in this reactor, and no plugin key collides with what DIR already holds. It is
    /// atomic: a refused or interrupted install leaves DIR as it was.
    #[command(after_help = "\
Example: install a signed package for your user, replacing an older version:
  reactor plugins install my_plugin-0.2.0.tar.gz --require-signed --force")]
    Install {
        /// The package, or a plugin shared object (packaged on the fly).
        #[arg(value_name = "PACKAGE|PATH")]
        source: PathBuf,

        /// The plugin directory (default: $XDG_DATA_HOME/reactor/plugins, or
        /// ~/.local/share/reactor/plugins).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,

        /// Replace an installed package of the same name.
        #[arg(long)]
        force: bool,

        /// Refuse a package that is not signed with a trusted key.
        #[arg(long = "require-signed")]
        require_signed: bool,

        /// The trusted signers' minisign public keys, one *.pub file each (default:
        /// $XDG_CONFIG_HOME/reactor/trusted-keys, or ~/.config/reactor/trusted-keys).
        #[arg(long = "trusted-keys", value_name = "DIR")]
        trusted_keys: Option<PathBuf>,
    },
    /// Remove an installed package.
    #[command(after_help = "\
Example: remove the package my_plugin from the system plugin directory:
  reactor plugins remove my_plugin --dir /usr/lib/reactor/plugins")]
    Remove {
        /// The package's name (its directory in DIR).
        #[arg(value_name = "NAME")]
        name: String,

        /// The plugin directory (default: the user's, as for install).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Make a plugin package (<name>-<version>.tar.gz) from a built plugin crate.
    ///
    /// The package holds the crate's cdylib (the release build if there is one),
    /// reactor-plugin.json with the plugins' manifests and the file's sha256, the crate's README
    /// and licence, and with --sign a minisign signature of reactor-plugin.json.
    #[command(after_help = "\
Example: package and sign the plugin crate in ./my_plugin, into ./dist:
  reactor plugins package ./my_plugin --out dist --sign ~/.minisign/minisign.key")]
    Package {
        /// The plugin crate's directory.
        #[arg(value_name = "CRATE_DIR", default_value = ".")]
        crate_dir: PathBuf,

        /// Where to write the package (default: the current directory).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,

        /// Sign the package with this minisign secret key (an encrypted key's password is read
        /// from REACTOR_SIGN_PASSWORD, else asked for).
        #[arg(long, value_name = "SECRET_KEY_FILE")]
        sign: Option<PathBuf>,
    },
    /// Write a new plugin crate, ready to build (`cargo build --release`) and load.
    #[command(after_help = "\
Example: start a prebuild plugin, build it, and see it loaded:
  reactor plugins new my_plugin --phase prebuild
  cd my_plugin && cargo build --release
  reactor plugins inspect target/release/libmy_plugin.so")]
    New(NewPlugin),
}

/// `reactor plugin new`.
#[derive(Debug, Args)]
pub struct NewPlugin {
    /// The plugin's name: its crate's name and, with `-` as `_`, its key in a build.json
    /// (lowercase letters, digits, `_` and `-`, starting with a letter).
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The phase the plugin runs in: prebuild, buildstep, prepublish, postbuild or exit.
    #[arg(long, default_value = "postbuild", value_parser = parse_phase)]
    pub phase: reactor_plugin_api::Phase,

    /// Where to write the crate (default: ./NAME); it must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The reactor-plugin-api source directory to depend on (default: the one this reactor was
    /// built from, if it is still there, else version major.minor from crates.io).
    #[arg(long = "api-path", value_name = "DIR", env = "REACTOR_PLUGIN_API_PATH")]
    pub api_path: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Build {
    /// Build as a build.json describes (atomic-reactor's format, either generation).
    #[command(after_help = "\
Example: build another tag of the same build.json, refusing anything doubtful (as in CI):
  reactor build json build.json --substitute image=app:2 --strict --metadata-file result.json")]
    Json {
        /// The build.json.
        #[arg(value_name = "FILE")]
        file: PathBuf,

        /// Change the build.json before it is used: `image=name:tag`, a dotted path
        /// (`source.provider_params.git_commit=v2`), or `PHASE_plugins.PLUGIN.ARG=value`;
        /// `true`, `false` and `none` become booleans and null. Repeatable.
        #[arg(long, value_name = "KEY=VALUE")]
        substitute: Vec<String>,

        /// Refuse the build.json (exit 2) for what is otherwise only a warning: unknown top-level
        /// keys, a key given twice in one object, a byte-order mark. For CI.
        #[arg(long)]
        strict: bool,

        #[command(flatten)]
        run: RunArgs,
    },
    /// Build from a git repository, as a build.json with `source.provider: git` would.
    #[command(after_help = "\
Example: build tag v1.2 of a repository, from the Dockerfile in its docker/ directory, and push it:
  reactor build git --uri https://github.com/example/app.git --commit v1.2 --df-path docker \\
    --image app:1.2 --target-registries registry.example.com:5000")]
    Git {
        /// The repository: a URL or a local path.
        #[arg(long)]
        uri: String,

        /// The branch, tag or commit to build (default: the remote's default branch).
        #[arg(long)]
        commit: Option<String>,

        #[command(flatten)]
        source: SourceArgs,

        #[command(flatten)]
        run: RunArgs,
    },
    /// Build from a local directory, as a build.json with `source.provider: path` would.
    #[command(after_help = "\
Example: print the plan for ./app, with the base image pulled from a mirror, building nothing:
  reactor build path --uri ./app --image app:dev --parent-registry mirror.example.com --dry-run")]
    Path {
        /// The directory.
        #[arg(long)]
        uri: String,

        #[command(flatten)]
        source: SourceArgs,

        #[command(flatten)]
        run: RunArgs,
    },
}

/// What `build git` and `build path` put in the build.json they make.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// The name[:tag] to tag the image with.
    #[arg(long)]
    pub image: String,

    /// The Dockerfile (a path ending in `Dockerfile`) or its directory, inside the source.
    #[arg(long = "df-path", value_name = "PATH")]
    pub df_path: Option<String>,

    /// Push the image to these registries, with the built-in postbuild plugin `tag_and_push`.
    #[arg(long = "target-registries", value_name = "REGISTRY", num_args = 1..)]
    pub target_registries: Vec<String>,

    /// The target registries speak plain HTTP or have a certificate that cannot be verified (the
    /// engine must list them in its insecure-registries; loopback ones are by default).
    #[arg(long = "target-registries-insecure")]
    pub target_registries_insecure: bool,

    /// Pull the base images from this registry, with the built-in prebuild plugin
    /// `pull_base_image`, and tag them as the Dockerfile names them.
    #[arg(long = "parent-registry", visible_alias = "source-registry", value_name = "REGISTRY")]
    pub parent_registry: Option<String>,

    /// The parent registry speaks plain HTTP or has a certificate that cannot be verified.
    #[arg(long = "parent-registry-insecure", visible_alias = "source-registry-insecure")]
    pub parent_registry_insecure: bool,

    /// Do not run `pull_base_image` for --parent-registry: the build uses the base images the
    /// engine has (the engine pulls a missing one as the Dockerfile names it).
    #[arg(long = "dont-pull-base-image")]
    pub dont_pull_base_image: bool,
}

/// How every build runs.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Write the result document (JSON) here, whatever the outcome.
    #[arg(long = "metadata-file", value_name = "PATH")]
    pub metadata_file: Option<PathBuf>,

    /// Check everything and print the plan (phases, plugins, where they come from, their args),
    /// then stop without building.
    #[arg(long = "dry-run")]
    pub dry_run: bool,

    /// Once cancelled (SIGINT, SIGTERM), how long a running plugin may take to return before it
    /// is abandoned and the exit plugins run.
    #[arg(long = "cancel-grace", value_name = "SECONDS", env = "REACTOR_CANCEL_GRACE", default_value = "10",
          value_parser = parse_seconds)]
    pub cancel_grace: std::time::Duration,

    /// How long a git fetch may wait on the server: with nothing arriving (or less than 1 KiB of
    /// the pack in that time), and to connect (at most 30 s of it). A fetch that waits longer
    /// fails the build.
    #[arg(long = "git-timeout", value_name = "SECONDS", env = "REACTOR_GIT_TIMEOUT", default_value = "120",
          value_parser = parse_timeout)]
    pub git_timeout: std::time::Duration,

    /// Once cancelled, how long the exit plugins may take, all together, before the one still
    /// running is abandoned and reactor ends (status `cancelled`).
    #[arg(long = "exit-timeout", value_name = "SECONDS", env = "REACTOR_EXIT_TIMEOUT", default_value = "300",
          value_parser = parse_seconds)]
    pub exit_timeout: std::time::Duration,

    /// Write one file per result into this directory, as Tekton reads them: IMAGE_URL (the
    /// primary pushed name:tag), IMAGE_DIGEST (its sha256:… digest) and IMAGES (every pushed
    /// name@sha256:…, comma-separated). Written whatever the outcome; empty when nothing was pushed.
    #[arg(long = "results-dir", value_name = "DIR")]
    pub results_dir: Option<PathBuf>,

    /// Where the build runs: `here` (in this process, on the selected engine), `hostdocker` (in a
    /// container of --build-image on that engine, as atomic-reactor 1.6 did), or `privileged`
    /// (not available: refused).
    #[arg(long, value_enum, default_value_t = Method::Here)]
    pub method: Method,

    /// With --method hostdocker: the image to run the build in (default reactor:<version>, made
    /// by `reactor create-build-image`).
    #[arg(long = "build-image", value_name = "IMAGE")]
    pub build_image: Option<String>,
}

/// atomic-reactor's build methods.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum Method {
    /// In this process.
    Here,
    /// In a container of the build image, with the engine's socket mounted.
    Hostdocker,
    /// In a privileged container running its own engine: not available (refused).
    Privileged,
}

/// Where `inside-build` reads the build.json.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum Input {
    /// The one of `path` and `env` that applies; refused when neither or both do.
    Auto,
    /// A file: /run/share/build.json, or `--input-arg path=FILE`.
    Path,
    /// An environment variable: BUILD_JSON, or the one `--input-arg env_name=VAR` names.
    Env,
}

/// `reactor inside-build`.
#[derive(Debug, Args)]
pub struct InsideBuild {
    /// Where the build.json comes from.
    #[arg(long, value_enum, default_value_t = Input::Auto)]
    pub input: Input,

    /// An argument of the input: `path=FILE` (path) or `env_name=VAR` (env). Repeatable.
    #[arg(long = "input-arg", value_name = "KEY=VALUE")]
    pub input_arg: Vec<String>,

    /// Change the build.json before it is used, as for `build json`. Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub substitute: Vec<String>,

    /// Refuse the build.json (exit 2) for what is otherwise only a warning, as for `build json`.
    #[arg(long)]
    pub strict: bool,

    #[command(flatten)]
    pub run: RunArgs,
}

/// A phase by its name in a build.json (`prebuild`, `buildstep`, `prepublish`, `postbuild`, `exit`).
fn parse_phase(text: &str) -> Result<reactor_plugin_api::Phase, String> {
    reactor_plugin_api::Phase::ALL.into_iter().find(|p| p.name() == text).ok_or_else(|| {
        let names: Vec<&str> = reactor_plugin_api::Phase::ALL.iter().map(|p| p.name()).collect();
        format!("'{text}' is not a phase: use one of {}", names.join(", "))
    })
}

/// A non-negative number of seconds (`10`, `2.5`).
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("'{text}' is not a number of seconds"))
}

/// A positive number of seconds, to the millisecond (`120`, `0.5`).
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    parse_seconds(text)
        .ok()
        .filter(|d| d.as_millis() >= 1)
        .ok_or_else(|| format!("'{text}' is not a positive number of seconds"))
}
