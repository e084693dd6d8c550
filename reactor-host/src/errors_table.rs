//! One table of every error kind reactor prints, next to the catalogue of bad inputs
//! (`tests/catalogue.rs`): a row per variant of every error enum, with the error built and the
//! words its one line must hold: what failed, where (the file, URL, registry, plugin key or
//! flag), and what to do about it.
//!
//! Completeness is the compiler's job: each enum has a `*_row` function with an exhaustive
//! `match` (no `_` arm) giving a variant its row number and words, so a new variant does not
//! compile until it has a row; and the test fails unless the samples cover every row number up to
//! the enum's count of kinds, so a row cannot be written without its sample.

use std::fmt::Display;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reactor_plugin_api::Phase;

use crate::cancel::Signal;
use crate::plugins::elf::ElfProblem;
use crate::plugins::isolate::StartError;
use crate::plugins::load::{self, LoadError};
use crate::plugins::runner::PluginFailure;
use crate::source::git::{self, submodules, FetchError, Stall};
use crate::workflow::Failure;
use crate::{build_json, build_log, credentials, engine, results, scaffold, source};

/// What one error kind's line must say. Each word is looked for as it is, in that line.
struct Words {
    /// What failed.
    what: &'static [&'static str],
    /// Where: the file, URL, registry, image, plugin key or flag it is about.
    place: &'static [&'static str],
    fix: Fix,
}

/// What the person is told to do.
enum Fix {
    /// The words of the remedy, said after what failed and where.
    Says(&'static [&'static str]),
    /// Nothing is wrong: the person asked for it (a cancellation). Says why there is no fix.
    NoneNeeded(&'static str),
    /// The remedy is a message reactor passes on whole, whose own words say it (a plugin's
    /// error, a load error made in the isolated process): names whose it is.
    PassedOn(&'static str),
}

/// A variant's row number (from 0, one per variant) and its words.
type Row = (usize, Words);

fn words(what: &'static [&'static str], place: &'static [&'static str], fix: &'static [&'static str]) -> Words {
    Words { what, place, fix: Fix::Says(fix) }
}

/// Checks every sample of one enum against its row, and that the samples cover all `kinds`
/// rows. `show` is how reactor prints the error (some are printed as what they turn into).
fn check<E>(name: &str, kinds: usize, samples: Vec<E>, row: fn(&E) -> Row, show: fn(E) -> String) -> usize {
    let mut covered = vec![false; kinds];
    for sample in samples {
        let (index, words) = row(&sample);
        assert!(index < kinds, "{name}: row {index} is past its {kinds} kinds: raise the count");
        covered[index] = true;
        let line = show(sample);
        let fail = |why: &str| -> ! { panic!("{name} row {index}: {why}:\n{line}") };
        if line.contains('\n') {
            fail("more than one line");
        }
        for noise in ["Some(", "None)", "\\\"", "Os {", "kind: ", "\"\""] {
            if line.contains(noise) {
                fail(&format!("Debug noise {noise:?}"));
            }
        }
        if line.trim() != line || line.ends_with(':') || line.ends_with(';') {
            fail("it ends half-said");
        }
        for word in words.what.iter().chain(words.place) {
            if !line.contains(word) {
                fail(&format!("no {word:?}"));
            }
        }
        // What failed and where come first; the fix after them, so the line ends in what to do.
        let said = words.what.iter().chain(words.place).filter_map(|w| line.find(w)).max().unwrap_or(0);
        match words.fix {
            Fix::Says(fix) => {
                assert!(!fix.is_empty(), "{name} row {index}: a fix has words");
                for word in fix {
                    match line.rfind(word) {
                        Some(at) if at >= said => {}
                        Some(_) => fail(&format!("the fix {word:?} comes before what failed and where")),
                        None => fail(&format!("no fix {word:?}")),
                    }
                }
            }
            Fix::NoneNeeded(why) | Fix::PassedOn(why) => assert!(!why.is_empty(), "{name} row {index}: say why"),
        }
    }
    let missing: Vec<usize> = (0..kinds).filter(|i| !covered[*i]).collect();
    assert!(missing.is_empty(), "{name}: no sample for rows {missing:?}");
    kinds
}

fn shown<E: Display>(e: E) -> String {
    e.to_string()
}

fn io_error(kind: io::ErrorKind, text: &str) -> io::Error {
    io::Error::new(kind, text)
}

// ---------------------------------------------------------------------------------------------
// The engine.

fn engine_row(e: &engine::Error) -> Row {
    use engine::Error as E;
    match e {
        E::Unreachable { .. } => {
            (0, words(&["cannot reach the Docker engine"], &["unix:///run/d.sock"], &["dockerd", "DOCKER_HOST"]))
        }
        E::ConnectionLost { .. } => (
            1,
            words(
                &["connection to the Docker engine", "was lost during build"],
                &["unix:///run/d.sock"],
                &["docker info", "run the build again", "docker rm -f 0a1b2c"],
            ),
        ),
        E::Daemon { .. } => (
            2,
            words(&["the Docker engine refused", "conflict"], &["HTTP 409"], &["fix what it names", "engine's log"]),
        ),
        E::Context { .. } => (
            3,
            words(&["cannot send the build context"], &["/src/ctx"], &["check that every file under it is readable"]),
        ),
        E::BadDockerignore { .. } => (
            4,
            words(
                &["bad pattern `[a-`", "unterminated character class"],
                &["/src/ctx/.dockerignore: line 2"],
                &["correct that line, or remove it"],
            ),
        ),
        E::Stream { .. } => {
            (5, words(&["push failed", "unexpected EOF"], &["push"], &["run the build again", "engine's log"]))
        }
        E::CredentialsRefused { .. } => (
            6,
            words(
                &["refused the credentials"],
                &["push reg.example:5000/app:1", "registry reg.example:5000"],
                &["check the user and password", "docker login reg.example:5000"],
            ),
        ),
        E::NoCredentials { .. } => (
            7,
            words(
                &["wants a login and no credentials were found"],
                &["reg.example:5000/app:1"],
                &["docker login reg.example:5000", "give the plugin a secret"],
            ),
        ),
        E::RegistryUnavailable { .. } => (
            8,
            words(
                &["unreachable or failing; gave up after 3 attempts"],
                &["pull reg.example:5000/base:1"],
                &["check that reg.example:5000 is up"],
            ),
        ),
        E::ImageNotFound { .. } => {
            (9, words(&["no such image"], &["pull reg.example:5000/base:9"], &["check the image's name and tag"]))
        }
        E::Tls { .. } => (
            11,
            words(
                &["TLS with the Docker engine", "failed", "refused reactor's client certificate"],
                &["tcp://127.0.0.1:2376"],
                &["give cert.pem and key.pem"],
            ),
        ),
        E::TooOld { .. } => (
            12,
            words(&["speaks Docker API 1.24 at most"], &["tcp://127.0.0.1:2376"], &["upgrade the engine", "--host"]),
        ),
        E::Unsupported { .. } => {
            (13, words(&["https:// needs TLS files"], &["https://127.0.0.1:2376"], &["set DOCKER_CERT_PATH"]))
        }
        // Its own table below.
        E::Endpoint(e) => (14, endpoint_row(e).1),
        // Its own table below.
        E::Ssh(e) => (15, ssh_row(e).1),
        E::Other(_) => (
            10,
            words(
                &["Docker engine: ", "the engine did not report its exit"],
                &["container 0a1b2c"],
                &["docker info", "run the build again"],
            ),
        ),
    }
}

fn engine_table() -> usize {
    use engine::Error as E;
    let host = || "unix:///run/d.sock".to_owned();
    let registry = || "reg.example:5000".to_owned();
    let bad_line = dockerignore::DockerIgnore::parse("ok\n[a-\n").expect_err("a bad pattern");
    let samples = vec![
        E::Unreachable { host: host(), reason: "no socket at /run/d.sock".into() },
        E::ConnectionLost {
            host: host(),
            during: "build",
            reason: "connection reset".into(),
            left_container: Some("0a1b2c".into()),
        },
        E::Daemon { status: 409, message: "conflict: the name is in use".into() },
        E::Context {
            path: "/src/ctx".into(),
            reason: "cannot read secret.key: Permission denied (os error 13)".into(),
        },
        E::from_dockerignore(Path::new("/src/ctx"), bad_line),
        E::Stream { operation: "push", message: "unexpected EOF".into() },
        E::CredentialsRefused {
            operation: "push",
            image: "reg.example:5000/app:1".into(),
            registry: registry(),
            message: "unauthorized".into(),
        },
        E::NoCredentials {
            operation: "push",
            image: "reg.example:5000/app:1".into(),
            registry: registry(),
            message: "no basic auth credentials".into(),
        },
        E::RegistryUnavailable {
            operation: "pull",
            image: "reg.example:5000/base:1".into(),
            registry: registry(),
            attempts: 3,
            message: "502 Bad Gateway".into(),
        },
        E::ImageNotFound {
            operation: "pull",
            image: "reg.example:5000/base:9".into(),
            message: "manifest unknown".into(),
        },
        E::Other("container 0a1b2c: the engine did not report its exit".into()),
        E::Tls {
            host: "tcp://127.0.0.1:2376".into(),
            problem: "the engine refused reactor's client certificate (missing, or not signed by a CA it trusts)"
                .into(),
            hint: "give cert.pem and key.pem signed by the CA the engine's --tlscacert names".into(),
        },
        E::TooOld {
            host: "tcp://127.0.0.1:2376".into(),
            problem: "speaks Docker API 1.24 at most, older than this request needs".into(),
            hint: "upgrade the engine, or build on a newer one (--host, --context)".into(),
        },
        E::Unsupported {
            host: "https://127.0.0.1:2376".into(),
            reason: "https:// needs TLS files: set DOCKER_CERT_PATH to the directory holding ca.pem (and cert.pem, \
                     key.pem), or use a context with TLS files"
                .into(),
        },
        E::Endpoint(engine::endpoint::EndpointError::Conflict),
        E::Ssh(engine::ssh::Error::Ssh {
            url: "ssh://me@build:2222".into(),
            detail: "kex_exchange_identification".into(),
        }),
    ];
    check("engine::Error", 16, samples, engine_row, shown)
}

fn ssh_row(e: &engine::ssh::Error) -> Row {
    use engine::ssh::Error as E;
    const PLACE: &[&str] = &["ssh://me@build:2222"];
    match e {
        E::BadUrl { .. } => (
            0,
            words(
                &["a password in the URL is not supported"],
                &["engine URL ssh://me:***@build:2222"],
                &["use a key, or ssh-agent", "ssh://[user@]host[:port]"],
            ),
        ),
        E::NoSshClient { .. } => {
            (1, words(&["cannot run `ssh`", "No such file"], PLACE, &["install an ssh client", "openssh-client"]))
        }
        E::UnknownHostKey { .. } => (
            2,
            words(
                &["does not know the host key", "Host key verification failed"],
                &["ssh://me@build:2222", "build:2222"],
                &["add it to known_hosts", "ssh-keyscan -p 2222 build"],
            ),
        ),
        E::PermissionDenied { .. } => (
            3,
            words(
                &["refused the ssh login", "Permission denied (publickey)"],
                &["ssh://me@build:2222", "user 'me'"],
                &["key authorized for that user", "ssh-agent", "IdentityFile"],
            ),
        ),
        E::NoRemoteDocker { .. } => (
            4,
            words(&["has no `docker` command", "docker: command not found"], PLACE, &["install the docker CLI there"]),
        ),
        E::RemoteEngineDown { .. } => (
            5,
            words(
                &["cannot reach its engine", "Cannot connect to the Docker daemon"],
                PLACE,
                &["is dockerd running there", "DOCKER_HOST"],
            ),
        ),
        E::Unreachable { .. } => (
            6,
            words(
                &["cannot reach the engine", "Connection refused"],
                &["ssh://me@build:2222", "build:2222"],
                &["is sshd running", "host and port right"],
            ),
        ),
        E::Ssh { .. } => (7, words(&["ssh failed", "kex_exchange_identification"], PLACE, &["run that ssh by hand"])),
    }
}

fn ssh_table() -> usize {
    use engine::ssh::Error as E;
    let url = || "ssh://me@build:2222".to_owned();
    let samples = vec![
        engine::ssh::SshUrl::parse("ssh://me:secret@build:2222").expect_err("a password"),
        E::NoSshClient { url: url(), reason: "No such file or directory (os error 2)".into() },
        E::UnknownHostKey {
            url: url(),
            target: "build:2222".into(),
            host: "build".into(),
            port_flag: " -p 2222".into(),
        },
        E::PermissionDenied {
            url: url(),
            target: "build:2222".into(),
            user: "user 'me'".into(),
            detail: "me@build: Permission denied (publickey).".into(),
        },
        E::NoRemoteDocker { url: url(), detail: "bash: line 1: docker: command not found".into() },
        E::RemoteEngineDown {
            url: url(),
            detail: "Cannot connect to the Docker daemon at unix:///var/run/docker.sock".into(),
        },
        E::Unreachable {
            url: url(),
            target: "build:2222".into(),
            detail: "ssh: connect to host build port 2222: Connection refused".into(),
        },
        E::Ssh { url: url(), detail: "kex_exchange_identification: read: Connection reset by peer".into() },
    ];
    check("engine::ssh::Error", 8, samples, ssh_row, shown)
}

fn endpoint_row(e: &engine::endpoint::EndpointError) -> Row {
    use engine::endpoint::EndpointError as E;
    match e {
        E::Conflict => (0, words(&["both choose the engine"], &["--host and --context"], &["give one of them"])),
        E::BadUrl { .. } => (
            1,
            words(&["does not speak npipe://"], &["engine URL npipe:////./pipe/docker_engine"], &["give unix:///PATH"]),
        ),
        E::UnknownContext { .. } => (
            2,
            words(
                &["there is no docker context 'remote'"],
                &["DOCKER_CONTEXT", "/home/u/.docker/contexts"],
                &["known contexts: default, tls", "docker context ls"],
            ),
        ),
        E::BadContext { .. } => (
            3,
            words(
                &["cannot read", "expected value"],
                &["docker context 'tls'", "meta.json"],
                &["docker context rm tls", "--context or --host"],
            ),
        ),
        E::BadConfig { .. } => (
            4,
            words(
                &["cannot read", "expected value"],
                &["/home/u/.docker/config.json"],
                &["fix or remove that file", "DOCKER_CONFIG"],
            ),
        ),
    }
}

fn endpoint_table() -> usize {
    use engine::endpoint::EndpointError as E;
    let samples = vec![
        E::Conflict,
        E::BadUrl { url: "npipe:////./pipe/docker_engine".into(), reason: "reactor does not speak npipe://".into() },
        E::UnknownContext {
            name: "remote".into(),
            chosen_by: "DOCKER_CONTEXT".into(),
            store: "/home/u/.docker/contexts".into(),
            known: "default, tls".into(),
        },
        E::BadContext {
            name: "tls".into(),
            path: "/home/u/.docker/contexts/meta/0a1b/meta.json".into(),
            reason: "expected value at line 1 column 1".into(),
        },
        E::BadConfig { path: "/home/u/.docker/config.json".into(), reason: "expected value at line 1 column 1".into() },
    ];
    check("engine::endpoint::EndpointError", 5, samples, endpoint_row, shown)
}

/// A `.dockerignore` that cannot be used is said as an engine error naming the file.
fn dockerignore_row(e: &dockerignore::PatternError) -> Row {
    use dockerignore::PatternError as E;
    match e {
        E::BadPattern { .. } => {
            (0, words(&["bad pattern `!`"], &["/src/ctx/.dockerignore: line 1"], &["correct that line, or remove it"]))
        }
        E::Io { .. } => (
            1,
            words(
                &["cannot read", "Permission denied"],
                &["/src/ctx/.dockerignore"],
                &["check that every file under it is readable"],
            ),
        ),
    }
}

fn dockerignore_table() -> usize {
    use dockerignore::PatternError as E;
    let samples = vec![
        dockerignore::DockerIgnore::parse("!").expect_err("a bad pattern"),
        E::Io {
            path: PathBuf::from("/src/ctx/.dockerignore"),
            source: io_error(io::ErrorKind::PermissionDenied, "Permission denied"),
        },
    ];
    check("dockerignore::PatternError", 2, samples, dockerignore_row, |e| {
        engine::Error::from_dockerignore(Path::new("/src/ctx"), e).to_string()
    })
}

// ---------------------------------------------------------------------------------------------
// The source.

fn source_row(e: &source::Error) -> Row {
    use source::Error as E;
    match e {
        E::TempDir(_) => (
            0,
            words(
                &["cannot make a temporary directory", "Permission denied"],
                &["TMPDIR"],
                &["set TMPDIR to a directory you can write to"],
            ),
        ),
        E::Clone { .. } => (
            1,
            words(
                &["cannot clone", "connection refused"],
                &["https://git.example/app.git"],
                &["check source.uri", "serves the repository"],
            ),
        ),
        E::TimedOut { .. } => (
            2,
            words(
                &["cannot clone", "the server sent nothing for 30 s"],
                &["https://git.example/app.git"],
                &["check that the server is up", "--git-timeout"],
            ),
        ),
        E::NoRepository { .. } => (3, words(&["does not exist"], &["/src/app"], &["check source.uri"])),
        E::NotARepository { .. } => (4, words(&["is not a git repository"], &["/src/app"], &["check source.uri"])),
        E::NoSpace { .. } => (
            5,
            words(
                &["is full", "cloning"],
                &["TMPDIR /tmp", "/tmp/reactor-source-1"],
                &["free space there", "set TMPDIR"],
            ),
        ),
        E::NoSuchCommit { .. } => (
            6,
            words(
                &["has no commit, branch or tag 'v9'"],
                &["https://git.example/app.git"],
                &["source.provider_params.git_commit", "--commit"],
            ),
        ),
        E::Checkout { .. } => (
            7,
            words(
                &["cannot check out 'v1'", "object not found"],
                &["https://git.example/app.git"],
                &["git fsck", "give another commit"],
            ),
        ),
        E::Copy { .. } => (
            8,
            words(
                &["cannot copy", "Permission denied"],
                &["/src/app/secret"],
                &["check that everything under it is readable"],
            ),
        ),
        E::PathSource { .. } => {
            (9, words(&["the path source", "cannot be used", "not a directory"], &["/src/app"], &["check source.uri"]))
        }
        E::Overlay { .. } => (
            10,
            words(&["cannot put the Dockerfile into the context overlay"], &["/tmp/overlay"], &["TMPDIR is writable"]),
        ),
        E::OutsideSource(_) => {
            (11, words(&["points outside the source"], &["dockerfile_path '../x'"], &["give a path inside it"]))
        }
        E::DockerfileLinkOutside { .. } => (
            12,
            words(
                &["is outside the source", "is a symlink"],
                &["Dockerfile", "/etc/passwd"],
                &["make it a file or a link inside the source"],
            ),
        ),
        E::NoDockerfile(_) => (
            13,
            words(&["doesn't exist in the source"], &["Dockerfile 'docker/Dockerfile'"], &["check dockerfile_path"]),
        ),
        E::Cancelled => (
            14,
            Words {
                what: &["fetching the source was cancelled"],
                place: &[],
                fix: Fix::NoneNeeded("the person cancelled it"),
            },
        ),
    }
}

fn source_samples() -> Vec<source::Error> {
    use source::Error as E;
    let uri = || "https://git.example/app.git".to_owned();
    vec![
        E::TempDir(io_error(io::ErrorKind::PermissionDenied, "Permission denied")),
        E::Clone { uri: uri(), reason: "connection refused".into() },
        E::TimedOut { uri: uri(), reason: "the server sent nothing for 30 s".into() },
        E::NoRepository { path: "/src/app".into() },
        E::NotARepository { path: "/src/app".into() },
        E::NoSpace {
            tmpdir: "/tmp".into(),
            what: "cloning".into(),
            path: "/tmp/reactor-source-1".into(),
            cause: "No space left on device".into(),
        },
        E::NoSuchCommit { uri: uri(), commit: "v9".into() },
        E::Checkout { uri: uri(), commit: "v1".into(), reason: "object not found".into() },
        E::Copy { path: "/src/app/secret".into(), reason: "Permission denied (os error 13)".into() },
        E::PathSource { path: "/src/app".into(), reason: "not a directory".into() },
        E::Overlay { path: "/tmp/overlay".into(), reason: "No space left on device (os error 28)".into() },
        E::OutsideSource("../x".into()),
        E::DockerfileLinkOutside {
            shown: "Dockerfile".into(),
            link: "Dockerfile".into(),
            target: "/etc/passwd".into(),
            real: "/etc/passwd".into(),
        },
        E::NoDockerfile("docker/Dockerfile".into()),
        E::Cancelled,
    ]
}

fn source_table() -> usize {
    check("source::Error", 15, source_samples(), source_row, shown)
}

/// A failed fetch is said as the source error it turns into.
fn fetch_row(e: &FetchError) -> Row {
    match e {
        FetchError::NoSuchCommit(_) => (
            0,
            words(
                &["has no commit, branch or tag 'v9'"],
                &["https://git.example/app.git"],
                &["git_commit", "--commit"],
            ),
        ),
        FetchError::Checkout(_) => {
            (1, words(&["cannot check out 'v9'"], &["https://git.example/app.git"], &["give another commit"]))
        }
        FetchError::Failed(_) => (
            2,
            words(
                &["cannot clone", "the remote has no default branch"],
                &["https://git.example/app.git"],
                &["check source.uri"],
            ),
        ),
        FetchError::TimedOut(_) => (
            3,
            words(&["cannot clone", "no connection within 30 s"], &["https://git.example/app.git"], &["--git-timeout"]),
        ),
        FetchError::NoRepository(_) => (4, words(&["does not exist"], &["/src/app"], &["check source.uri"])),
        FetchError::NotARepository(_) => (5, words(&["is not a git repository"], &["/src/app"], &["check source.uri"])),
        FetchError::Cancelled => {
            (6, Words { what: &["was cancelled"], place: &[], fix: Fix::NoneNeeded("the person cancelled it") })
        }
    }
}

fn fetch_table() -> usize {
    let samples = vec![
        FetchError::NoSuchCommit("v9".into()),
        FetchError::Checkout("object not found".into()),
        FetchError::Failed("the remote has no default branch (HEAD); is it empty?".into()),
        FetchError::TimedOut(Stall::Connect(Duration::from_secs(30))),
        FetchError::NoRepository("/src/app".into()),
        FetchError::NotARepository("/src/app".into()),
        FetchError::Cancelled,
    ];
    check("git::FetchError", 7, samples, fetch_row, |e| {
        git::as_source_error(e, "https://git.example/app.git", Some("v9")).to_string()
    })
}

/// A failed submodule is said as the clone of the source that failed.
fn submodule_row(e: &submodules::Error) -> Row {
    use submodules::Error as E;
    match e {
        E::Fetch { .. } => (
            0,
            words(
                &["cannot clone", "no such repository"],
                &["https://git.example/app.git", "submodule 'lib'", "https://git.example/lib.git"],
                &["check source.uri"],
            ),
        ),
        E::Setup { .. } => {
            (1, words(&["cannot clone", "cannot read the index"], &["submodule 'lib'"], &["check source.uri"]))
        }
        E::Cancelled => {
            (2, Words { what: &["was cancelled"], place: &[], fix: Fix::NoneNeeded("the person cancelled it") })
        }
    }
}

fn submodule_table() -> usize {
    use submodules::Error as E;
    let samples = vec![
        E::Fetch { path: "lib".into(), url: "https://git.example/lib.git".into(), reason: "no such repository".into() },
        E::Setup { path: "lib".into(), reason: "cannot read the index: corrupt".into() },
        E::Cancelled,
    ];
    check("submodules::Error", 3, samples, submodule_row, |e| {
        git::from_submodule_error(e, "https://git.example/app.git").to_string()
    })
}

// ---------------------------------------------------------------------------------------------
// The build.json, the build log, credentials.

fn build_json_row(e: &build_json::Error) -> Row {
    use build_json::Error as E;
    match e {
        E::Read { .. } => (
            0,
            words(
                &["cannot read", "No such file or directory"],
                &["ci/build.json"],
                &["give the path of a readable build.json"],
            ),
        ),
        E::Syntax { .. } => (
            1,
            words(
                &["not valid JSON", "trailing comma"],
                &["ci/build.json", "line 1 column 15"],
                &["correct the JSON there"],
            ),
        ),
        E::Invalid { .. } => (
            2,
            words(
                &["is a required property"],
                &["ci/build.json", "/source"],
                &["correct the build.json where each problem points"],
            ),
        ),
        E::Substitute(_) => (3, words(&["expected KEY=VALUE"], &["--substitute image"], &["like image=app:2"])),
    }
}

fn build_json_table() -> usize {
    use build_json::Error as E;
    let file = || "ci/build.json".to_owned();
    let samples = vec![
        E::Read { file: file(), reason: "No such file or directory (os error 2)".into() },
        E::Syntax { file: file(), reason: "trailing comma at line 1 column 15".into() },
        E::Invalid { file: file(), problems: vec!["/source: \"uri\" is a required property".into()] },
        E::Substitute("image: expected KEY=VALUE, like image=app:2".into()),
    ];
    check("build_json::Error", 4, samples, build_json_row, shown)
}

fn build_log_row(e: &build_log::Error) -> Row {
    use build_log::Error as E;
    match e {
        E::Io { .. } => {
            (0, words(&["the build log's spool file", "No space left"], &["/tmp"], &["free space there", "TMPDIR"]))
        }
        E::NotALine { .. } => {
            (1, words(&["has no line at offset 17"], &["the build log"], &["read from 0", "next_offset"]))
        }
    }
}

fn build_log_table() -> usize {
    use build_log::Error as E;
    let samples = vec![
        E::Io { dir: "/tmp".into(), source: io_error(io::ErrorKind::StorageFull, "No space left on device") },
        E::NotALine { offset: 17 },
    ];
    check("build_log::Error", 2, samples, build_log_row, shown)
}

fn credentials_row(e: &credentials::Error) -> Row {
    use credentials::Error as E;
    match e {
        E::Read { .. } => (
            0,
            words(
                &["cannot read registry credentials", "Permission denied"],
                &["/secrets/reg/.dockercfg"],
                &["check that you may read it"],
            ),
        ),
        E::Malformed { .. } => (
            1,
            words(
                &["are malformed", "not a JSON object"],
                &["/root/.docker/config.json"],
                &["correct the file", "docker login"],
            ),
        ),
        E::Helper { .. } => (
            2,
            words(
                &["cannot get the credentials", "it failed"],
                &["reg.example:5000", "docker-credential-pass", "credHelpers", "/root/.docker/config.json"],
                &["put docker-credential-pass on PATH", "take it out of the credHelpers"],
            ),
        ),
    }
}

fn credentials_table() -> usize {
    use credentials::Error as E;
    let config = || PathBuf::from("/root/.docker/config.json");
    let samples = vec![
        E::Read {
            path: "/secrets/reg/.dockercfg".into(),
            source: io_error(io::ErrorKind::PermissionDenied, "Permission denied"),
        },
        E::Malformed { path: config(), reason: "`auths` is not a JSON object".into() },
        E::Helper {
            path: config(),
            field: "credHelpers",
            helper: "pass".into(),
            registry: "reg.example:5000".into(),
            reason: "it failed: gpg: decryption failed".into(),
        },
    ];
    check("credentials::Error", 3, samples, credentials_row, shown)
}

// ---------------------------------------------------------------------------------------------
// The workflow and the plugins.

fn failure_row(e: &Failure) -> Row {
    match e {
        Failure::Source(_) => (
            0,
            words(&["source: ", "has no commit, branch or tag 'v9'"], &["https://git.example/app.git"], &["--commit"]),
        ),
        Failure::Engine(_) => (1, words(&["cannot reach the Docker engine"], &["unix:///run/d.sock"], &["dockerd"])),
        Failure::Build(_) => (
            2,
            words(
                &["docker build failed", "returned a non-zero code: 1"],
                &["'/bin/sh -c make'"],
                &["fix the Dockerfile's failing step"],
            ),
        ),
        Failure::Plugin(_) => (
            3,
            Words {
                what: &["failed", "POST http://logs.example/: refused"],
                place: &["postbuild plugin 'logs_submitter'"],
                fix: Fix::PassedOn("the plugin's own message, which ends in its fix"),
            },
        ),
        Failure::Cancelled(_) => {
            (4, Words { what: &["cancelled by SIGINT"], place: &[], fix: Fix::NoneNeeded("the person cancelled it") })
        }
        Failure::ExitLimit { .. } => {
            (5, words(&["cancelled by SIGTERM", "abandoned"], &["exit plugin 'notify'"], &["raise --exit-timeout"]))
        }
        Failure::Internal(_) => (
            6,
            words(
                &["fetching the source stopped", "panicked"],
                &["fetching the source"],
                &["a bug in reactor", "report it"],
            ),
        ),
    }
}

fn failure_table() -> usize {
    let samples = vec![
        Failure::Source(source::Error::NoSuchCommit { uri: "https://git.example/app.git".into(), commit: "v9".into() }),
        Failure::Engine(engine::Error::Unreachable { host: "unix:///run/d.sock".into(), reason: "no socket".into() }),
        Failure::Build("The command '/bin/sh -c make' returned a non-zero code: 1".into()),
        Failure::Plugin(PluginFailure {
            phase: Phase::Postbuild,
            key: "logs_submitter".into(),
            message: "POST http://logs.example/: refused; check the server".into(),
        }),
        Failure::Cancelled(Signal::Interrupt),
        Failure::ExitLimit {
            signal: Signal::Terminate,
            key: "notify".into(),
            message: "abandoned: still running at the exit phase's limit, 2 s after the cancellation (--exit-timeout)"
                .into(),
        },
        Failure::Internal("fetching the source stopped: task 3 panicked".into()),
    ];
    check("workflow::Failure", 7, samples, failure_row, shown)
}

fn elf_row(e: &ElfProblem) -> Row {
    use ElfProblem as E;
    let reinstall = &["reinstall it"];
    const FILE: &[&str] = &["--load-plugin plugins/libx.so"];
    match e {
        E::Unreadable(_) => (0, words(&["cannot be read", "Permission denied"], FILE, &["check that it exists"])),
        E::NotElf => (1, words(&["not an ELF file"], FILE, &["rebuild it, or reinstall it"])),
        E::ShorterThanHeader { .. } => (2, words(&["truncated", "12 bytes"], FILE, reinstall)),
        E::WrongClass { .. } => {
            (3, words(&["a 32-bit ELF file"], FILE, &["use a build of the plugin for this machine"]))
        }
        E::WrongByteOrder { .. } => {
            (4, words(&["a big-endian ELF file"], FILE, &["use a build of the plugin for this machine"]))
        }
        E::WrongArchitecture { .. } => {
            (5, words(&["an ELF file for AArch64"], FILE, &["use a build of the plugin for x86-64"]))
        }
        E::NotSharedObject { .. } => {
            (6, words(&["not a shared object"], FILE, &["build the plugin as a cdylib crate"]))
        }
        E::Truncated { .. } => (7, words(&["truncated", "segment"], FILE, reinstall)),
        E::Malformed(_) => (8, words(&["ELF headers are unreadable"], FILE, reinstall)),
    }
}

/// An ELF problem is said after the file it is in, as a load error: `--load-plugin PATH: ...`.
fn elf_table() -> usize {
    use ElfProblem as E;
    let samples = vec![
        E::Unreadable("Permission denied (os error 13)".into()),
        E::NotElf,
        E::ShorterThanHeader { size: 12 },
        E::WrongClass { found: "32-bit", ours: "64-bit" },
        E::WrongByteOrder { found: "big-endian", ours: "little-endian" },
        E::WrongArchitecture { found: "AArch64".into(), ours: "x86-64" },
        E::NotSharedObject { found: "executable" },
        E::Truncated { what: "segment 2 is".into(), start: 4096, end: 8192, size: 5000 },
        E::Malformed("bad section table".into()),
    ];
    check("ElfProblem", 9, samples, elf_row, |problem| {
        let line = LoadError::BadElf { path: "plugins/libx.so".into(), problem }.to_string();
        assert!(line.starts_with("--load-plugin plugins/libx.so: "), "{line}");
        line
    })
}

fn load_row(e: &LoadError) -> Row {
    use LoadError as E;
    const FILE: &[&str] = &["--load-plugin plugins/libx.so"];
    match e {
        E::NotFound(_) => (0, words(&["no such file"], FILE, &["check the path"])),
        E::NotSharedObject { .. } => (
            1,
            words(
                &["not a loadable shared object", "invalid ELF header"],
                FILE,
                &["rebuild it", "a build for this platform"],
            ),
        ),
        E::BadElf { .. } => {
            (2, words(&["not a loadable shared object", "not an ELF file"], FILE, &["rebuild it, or reinstall it"]))
        }
        E::NotPlugin(_) => (3, words(&["not a reactor plugin"], FILE, &["export_plugins!"])),
        E::NewerMajor { .. } => (
            4,
            words(
                &["built against reactor-plugin-api 9.0.0", "a newer major"],
                FILE,
                &["upgrade reactor", "use a build of the plugin"],
            ),
        ),
        E::OlderMajor { .. } => (
            5,
            words(
                &["built against reactor-plugin-api 0.1.0", "cannot load"],
                FILE,
                &["rebuild the plugin against reactor-plugin-api"],
            ),
        ),
        E::SameVersionOtherLayout { .. } => (
            6,
            words(&["another binary layout"], FILE, &["rebuild the plugin against the released reactor-plugin-api"]),
        ),
        E::OtherLayout { .. } => (
            7,
            words(
                &["binary layout is not the one"],
                FILE,
                &["rebuild the plugin against a released reactor-plugin-api"],
            ),
        ),
        E::NeedsFeature { .. } => (
            8,
            words(
                &["needs the host feature 'build_log'"],
                &["--load-plugin plugins/libx.so", "plugin 'x' 1.0.0"],
                &["upgrade reactor to ≥ 0.2.0"],
            ),
        ),
        E::Invalid { .. } => (
            9,
            words(
                &["runs in no phase"],
                &["--load-plugin plugins/libx.so", "plugin 'x'"],
                &["the plugin's author must fix the module"],
            ),
        ),
        E::Broken { .. } => {
            (10, words(&["the module exports no plugins"], FILE, &["the plugin's author must fix the module"]))
        }
        E::WorkerNotStarted { .. } => (
            11,
            words(
                &["cannot start its isolated process", "Resource temporarily unavailable"],
                FILE,
                &["ulimit", "without --isolate-plugins"],
            ),
        ),
        E::Insecure { .. } => (
            12,
            words(
                &["refused", "writable by every user"],
                &["--load-plugin plugins/libx.so"],
                &["chmod go-w plugins/libx.so", "--allow-insecure-plugin-dirs"],
            ),
        ),
        E::Discovery(_) => (
            13,
            words(&["two files", "hold plugin 'x'"], &["plugins/liba.so", "plugins/libb.so"], &["remove one of them"]),
        ),
        E::FromIsolatedProcess(_) => (
            14,
            Words {
                what: &["not a loadable shared object"],
                place: &["--load-plugin plugins/libx.so"],
                fix: Fix::PassedOn("the load error the isolated process made, with its own fix"),
            },
        ),
    }
}

fn load_samples() -> Vec<LoadError> {
    use abi_stable::sabi_types::VersionNumber;
    use LoadError as E;
    let path = || PathBuf::from("plugins/libx.so");
    vec![
        E::NotFound(path()),
        E::NotSharedObject { path: path(), reason: "plugins/libx.so: invalid ELF header".into() },
        E::BadElf { path: path(), problem: ElfProblem::NotElf },
        E::NotPlugin(path()),
        E::NewerMajor { path: path(), found: VersionNumber { major: 9, minor: 0, patch: 0 } },
        E::OlderMajor { path: path(), found: VersionNumber { major: 0, minor: 1, patch: 0 } },
        E::SameVersionOtherLayout { path: path(), found: reactor_plugin_api::API_VERSION.into() },
        E::OtherLayout { path: path(), found: "1.0.0".into() },
        E::NeedsFeature { path: path(), key: "x".into(), version: "1.0.0".into(), api: "1.1.0".into(), feature: "build_log".into(), since: "0.2.0".into() },
        E::Invalid { path: path(), problem: "plugin 'x' runs in no phase (its manifest lists none)".into() },
        E::Broken { path: path(), reason: "the module exports no plugins".into() },
        load::from_start_error(&path(), StartError::Spawn(io_error(io::ErrorKind::WouldBlock, "Resource temporarily unavailable"))),
        E::Insecure {
            path: path(),
            refusal: "plugins/libx.so: refused: the file is writable by every user (mode 0666), so another user could make reactor run their code; fix: chmod go-w plugins/libx.so, or pass --allow-insecure-plugin-dirs to accept the risk".into(),
        },
        E::Discovery("two files of plugins hold plugin 'x': plugins/liba.so and plugins/libb.so; remove one of them".into()),
        E::FromIsolatedProcess("--load-plugin plugins/libx.so: not a loadable shared object (bad ELF); rebuild it".into()),
    ]
}

fn load_table() -> usize {
    check("LoadError", 15, load_samples(), load_row, shown)
}

/// What the isolated process (`--isolate-plugins`) says is said as a load error of the file.
fn start_row(e: &StartError) -> Row {
    const FILE: &[&str] = &["--load-plugin plugins/libx.so"];
    match e {
        StartError::Spawn(_) => {
            (0, words(&["cannot start its isolated process"], FILE, &["ulimit", "without --isolate-plugins"]))
        }
        StartError::Refused(_) => (
            1,
            Words {
                what: &["no such file"],
                place: FILE,
                fix: Fix::PassedOn("the load error the isolated process made, with its own fix"),
            },
        ),
        StartError::Lost(_) => (
            2,
            words(
                &["crashed: killed by signal 11 (SIGSEGV) while loading"],
                FILE,
                &["the plugin's author must fix the module"],
            ),
        ),
    }
}

fn start_table() -> usize {
    let samples = vec![
        StartError::Spawn(io_error(io::ErrorKind::WouldBlock, "Resource temporarily unavailable")),
        StartError::Refused(
            "--load-plugin plugins/libx.so: no such file; check the path, or build the plugin first".into(),
        ),
        StartError::Lost("crashed: killed by signal 11 (SIGSEGV)".into()),
    ];
    check("StartError", 3, samples, start_row, |e| load::from_start_error(Path::new("plugins/libx.so"), e).to_string())
}

fn scaffold_row(e: &scaffold::Error) -> Row {
    use scaffold::Error as E;
    match e {
        E::BadName { .. } => (0, words(&["is not a usable plugin name"], &["'Logs'"], &["use lowercase letters"])),
        E::NotEmpty(_) => (
            1,
            words(
                &["already exists and is not an empty directory"],
                &["work/logs"],
                &["choose another --dir, or remove it"],
            ),
        ),
        E::BadApiPath(..) => (
            2,
            words(
                &["no Cargo.toml there"],
                &["--api-path", "/src/api"],
                &["name the reactor-plugin-api source directory"],
            ),
        ),
        E::Write(..) => {
            (3, words(&["cannot write the crate", "No space left"], &["work/logs"], &["choose another --dir"]))
        }
    }
}

fn scaffold_table() -> usize {
    use scaffold::Error as E;
    let samples = vec![
        scaffold::names("Logs").map(|_| ()).expect_err("an upper-case name"),
        E::NotEmpty("work/logs".into()),
        scaffold::api_dependency(Some(Path::new("/nonexistent/src/api"))).map(|_| ()).expect_err("no Cargo.toml"),
        E::Write("work/logs".into(), io_error(io::ErrorKind::StorageFull, "No space left on device")),
    ];
    check("scaffold::Error", 4, samples, scaffold_row, |e| {
        // The api path's sample names where it looked.
        e.to_string().replace("/nonexistent/src/api", "/src/api")
    })
}

// ---------------------------------------------------------------------------------------------
// The result document.

fn results_row(e: &results::WriteError) -> Row {
    use results::WriteError as E;
    let fix = &["choose another --metadata-file", "make its directory writable"];
    match e {
        E::AfterSuccess { .. } => (
            0,
            words(&["the build succeeded", "cannot be written", "Read-only file system"], &["out/result.json"], fix),
        ),
        E::AfterFailure { .. } => {
            (1, words(&["cannot write", "Read-only file system"], &["--metadata-file out/result.json"], fix))
        }
    }
}

fn results_table() -> usize {
    use results::WriteError as E;
    let path = || "out/result.json".to_owned();
    let read_only = || io_error(io::ErrorKind::ReadOnlyFilesystem, "Read-only file system");
    let samples = vec![
        E::AfterSuccess { path: path(), source: read_only(), code: crate::app::exit::RESULT_NOT_WRITTEN },
        E::AfterFailure { path: path(), source: read_only() },
    ];
    check("results::WriteError", 2, samples, results_row, shown)
}

/// The table: every enum's rows, each checked as [`check`] says.
#[test]
fn every_error_kind_says_what_failed_where_and_what_to_do() {
    let rows: Vec<usize> = vec![
        engine_table(),
        endpoint_table(),
        ssh_table(),
        dockerignore_table(),
        source_table(),
        fetch_table(),
        submodule_table(),
        build_json_table(),
        build_log_table(),
        credentials_table(),
        failure_table(),
        elf_table(),
        load_table(),
        start_table(),
        scaffold_table(),
        results_table(),
    ];
    // The README gives the table's size: it must be this one.
    let said = format!("{} rows of {} enums", rows.iter().sum::<usize>(), rows.len());
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(readme.contains(&said), "README.md should say \"{said}\" of errors_table.rs");
}
