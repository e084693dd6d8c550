//! Git sources over the transports users have: `git daemon` (git://), smart HTTP through
//! `git http-backend` behind lighttpd, HTTPS with a CA made for the test (and an http:// URL
//! redirected to it), `file://` and plain paths, and submodules. Each test starts its own servers
//! on ephemeral loopback ports; every build is a real one.
//!
//! Shallowness is checked where it can fail: the checkout is copied into the image whole, and a
//! depth-1 fetch leaves `.git/shallow` naming the commit, which a full clone has not; a local
//! source leaves `.git/objects` holding nothing but `info/alternates`, where a clone has a pack.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::util::*;

/// Copies the whole checkout, `.git` included, so a test can look at it in the image.
const DOCKERFILE: &str = "FROM busybox:latest\nCOPY . /src\nCMD [\"cat\", \"/src/content.txt\"]\n";

/// A free loopback port (the server binds it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `git daemon` exporting every repository under `base`: `git://127.0.0.1:PORT/NAME`.
pub(crate) fn git_daemon(base: &Path) -> (Server, String) {
    let port = free_port();
    let exec_path = git(base, &["--exec-path"]);
    // git-daemon itself, not the `git daemon` wrapper, so that killing it stops the server.
    let child = Command::new(Path::new(&exec_path).join("git-daemon"))
        .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1", &format!("--port={port}")])
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start git daemon (scripts/setup.sh installs git)");
    let server = Server(child);
    wait_for_port(port, "git daemon");
    (server, format!("git://127.0.0.1:{port}"))
}

/// lighttpd serving the repositories under `base` through `git http-backend` at `/git/`, on
/// plain HTTP, on HTTPS with `tls.pem` (certificate and key), and on a third port that
/// redirects every request to the HTTPS one.
struct Web {
    _server: Server,
    http: String,
    https: String,
    redirecting: String,
}

fn lighttpd(dir: &Path, base: &Path, tls: &Path) -> Web {
    let (http, https, redirecting) = (free_port(), free_port(), free_port());
    let exec_path = git(dir, &["--exec-path"]);
    let config = format!(
        r#"server.document-root = "{base}"
server.bind = "127.0.0.1"
server.port = {http}
server.errorlog = "{dir}/lighttpd.log"
server.modules = ("mod_alias", "mod_cgi", "mod_setenv", "mod_redirect", "mod_openssl")
alias.url = ("/git" => "{exec_path}/git-http-backend")
$HTTP["url"] =^ "/git" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{base}", "GIT_HTTP_EXPORT_ALL" => "")
}}
$SERVER["socket"] == "127.0.0.1:{https}" {{
  ssl.engine = "enable"
  ssl.pemfile = "{tls}"
}}
$SERVER["socket"] == "127.0.0.1:{redirecting}" {{
  url.redirect = ("^/(.*)" => "https://127.0.0.1:{https}/$1")
}}
"#,
        base = base.display(),
        dir = dir.display(),
        tls = tls.display(),
    );
    let file = dir.join("lighttpd.conf");
    std::fs::write(&file, config).expect("write lighttpd.conf");
    let child = Command::new("lighttpd")
        .arg("-D")
        .arg("-f")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lighttpd (scripts/setup.sh installs lighttpd and lighttpd-mod-openssl)");
    let server = Server(child);
    for port in [http, https, redirecting] {
        wait_for_port(port, "lighttpd");
    }
    Web {
        _server: server,
        http: format!("http://127.0.0.1:{http}/git"),
        https: format!("https://127.0.0.1:{https}/git"),
        redirecting: format!("http://127.0.0.1:{redirecting}/git"),
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA made for the test (`dir/ca.pem`) and a server certificate it signed for 127.0.0.1 and
/// localhost, with its key (`dir/tls.pem`).
fn test_ca(dir: &Path) -> (PathBuf, PathBuf) {
    let subject_key = |name: &str| ["-newkey", "rsa:2048", "-nodes", "-keyout", name].map(str::to_owned);
    let mut ca = vec!["req".to_owned(), "-x509".into(), "-days".into(), "2".into()];
    ca.extend(subject_key("ca.key"));
    ca.extend(["-subj", "/CN=reactor test CA", "-out", "ca.pem"].map(str::to_owned));
    openssl(dir, &ca.iter().map(String::as_str).collect::<Vec<_>>());
    let mut request = vec!["req".to_owned()];
    request.extend(subject_key("server.key"));
    request.extend(["-subj", "/CN=127.0.0.1", "-out", "server.csr"].map(str::to_owned));
    openssl(dir, &request.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("write");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
            "-out",
            "server.pem",
        ],
    );
    let mut tls = std::fs::read(dir.join("server.pem")).expect("cert");
    tls.extend(std::fs::read(dir.join("server.key")).expect("key"));
    std::fs::write(dir.join("tls.pem"), tls).expect("write tls.pem");
    (dir.join("ca.pem"), dir.join("tls.pem"))
}

/// A bare repository `served/NAME.git` with three commits of `content.txt` ("one", "two",
/// "three"): branch `stable` and annotated tag `v1` at "one". Returns the SHAs, oldest first.
fn served_repo(served: &Path, name: &str) -> [String; 3] {
    let work = served.join(format!("{name}-work"));
    let one = git_repo(&work, &[("Dockerfile", DOCKERFILE), ("content.txt", "one\n")]);
    git(&work, &["tag", "-a", "-m", "first release", "v1"]);
    git(&work, &["branch", "stable"]);
    let two = git_commit(&work, &[("content.txt", "two\n")], "second");
    let three = git_commit(&work, &[("content.txt", "three\n")], "third");
    git(served, &["clone", "-q", "--bare", &work.display().to_string(), &format!("{name}.git")]);
    [one, two, three]
}

/// Builds `source` (the build.json's `source`) with `env`; returns the run and the image (removed
/// when `images` is dropped).
fn build(dir: &Path, source: Value, env: &[(&str, &str)], images: &mut Images) -> (Run, String) {
    let image = unique("transport");
    images.0.push(image.clone());
    let file = build_json(dir, &json!({"image": image, "source": source}));
    (reactor(dir, &["build", "json", &file], env), image)
}

/// What a file of the image's `/src` (the checkout) holds, or `None` when it does not exist.
fn file_in_image(image: &str, path: &str) -> Option<String> {
    let out = docker(&["run", "--rm", image, "cat", &format!("/src/{path}")]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn git_daemon_branches_tags_the_default_branch_and_shas_are_fetched_with_depth_1() {
    let dir = workdir();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    let [one, two, three] = served_repo(&served, "open");
    git(&served.join("open.git"), &["config", "uploadpack.allowReachableSHA1InWant", "true"]);
    served_repo(&served, "closed");
    let closed_two = git(&served.join("closed.git"), &["rev-parse", "main~1"]);
    let (_daemon, base) = git_daemon(&served);
    let open = format!("{base}/open.git");
    let mut images = Images(Vec::new());

    for (commit, sha, content, how) in [
        (None, &three, "three\n", "the default branch 'main'"),
        (Some("stable"), &one, "one\n", "branch 'stable'"),
        (Some("v1"), &one, "one\n", "tag 'v1'"),
        // Not the tip of any ref: asked for by SHA, which this server allows.
        (Some(two.as_str()), &two, "two\n", ""),
    ] {
        let mut source = json!({"provider": "git", "uri": open});
        if let Some(commit) = commit {
            source["provider_params"] = json!({"git_commit": commit});
        }
        let (run, image) = build(dir.path(), source, &[], &mut images);
        run.expect_code(0);
        let fetched = if how.is_empty() {
            format!("fetched {sha} with depth 1")
        } else {
            format!("fetched {how} at {sha} with depth 1")
        };
        assert!(run.stderr.contains(&fetched), "{commit:?}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("checked out {sha}")), "{}", run.stderr);
        assert_eq!(docker_run(&image, &[]), content);
        // Depth 1: the history stops at the commit itself (a full clone has no `shallow`).
        assert_eq!(file_in_image(&image, ".git/shallow").as_deref(), Some(format!("{sha}\n").as_str()), "{commit:?}");
    }

    // The same SHA from a server that refuses SHAs in want: found in the branches' history.
    let (run, image) = build(
        dir.path(),
        json!({"provider": "git", "uri": format!("{base}/closed.git"), "provider_params": {"git_commit": closed_two}}),
        &[],
        &mut images,
    );
    run.expect_code(0);
    assert!(
        run.stderr.contains(&format!("the server refuses SHAs in want; found {closed_two} by deepening to 50")),
        "{}",
        run.stderr
    );
    assert_eq!(docker_run(&image, &[]), "two\n");

    // A revision expression, as atomic-reactor's `git reset --hard` took it: the branch's history
    // is fetched deeper until it resolves.
    let (run, image) = build(
        dir.path(),
        json!({"provider": "git", "uri": open, "provider_params": {"git_commit": "main~1"}}),
        &[],
        &mut images,
    );
    run.expect_code(0);
    let how = format!("the revision expression '~1' needs history; found {two} by deepening to 50");
    assert!(run.stderr.contains(&how), "{}", run.stderr);
    assert_eq!(docker_run(&image, &[]), "two\n");

    // An unknown branch: named, with the URL, before anything is fetched or built.
    let (run, _) = build(
        dir.path(),
        json!({"provider": "git", "uri": open, "provider_params": {"git_commit": "no-such-branch"}}),
        &[],
        &mut images,
    );
    run.expect_code(1);
    let message = format!("{open} has no commit, branch or tag 'no-such-branch'; give one it has");
    assert!(run.errors().iter().any(|l| l.contains(&message)), "{}", run.stderr);
    assert!(!run.stderr.contains("Step 1/"), "nothing was built: {}", run.stderr);
}

#[test]
fn smart_http_and_an_http_url_redirected_to_https_with_the_ca_in_ssl_cert_file() {
    let dir = workdir();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    let [_, _, three] = served_repo(&served, "r");
    let (ca, tls) = test_ca(dir.path());
    let web = lighttpd(dir.path(), &served, &tls);
    let mut images = Images(Vec::new());

    let (run, image) =
        build(dir.path(), json!({"provider": "git", "uri": format!("{}/r.git", web.http)}), &[], &mut images);
    run.expect_code(0);
    assert!(
        run.stderr.contains(&format!("fetched the default branch 'main' at {three} with depth 1")),
        "{}",
        run.stderr
    );
    assert_eq!(docker_run(&image, &[]), "three\n");
    assert_eq!(file_in_image(&image, ".git/shallow"), Some(format!("{three}\n")));

    // http:// that lands on https://: the CA must be loaded even though the URL is not https.
    let ca = ca.display().to_string();
    let (run, image) = build(
        dir.path(),
        json!({"provider": "git", "uri": format!("{}/r.git", web.redirecting), "provider_params": {"git_commit": "stable"}}),
        &[("SSL_CERT_FILE", &ca)],
        &mut images,
    );
    run.expect_code(0);
    assert_eq!(docker_run(&image, &[]), "one\n");
}

#[test]
fn https_trusts_a_ca_from_ssl_cert_file_or_git_ssl_cainfo_and_refuses_an_unknown_one() {
    let dir = workdir();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    served_repo(&served, "r");
    let (ca, tls) = test_ca(dir.path());
    let web = lighttpd(dir.path(), &served, &tls);
    let url = format!("{}/r.git", web.https);
    let ca = ca.display().to_string();
    let mut images = Images(Vec::new());

    for var in ["SSL_CERT_FILE", "GIT_SSL_CAINFO"] {
        let (run, image) = build(dir.path(), json!({"provider": "git", "uri": url}), &[(var, &ca)], &mut images);
        run.expect_code(0);
        assert_eq!(docker_run(&image, &[]), "three\n", "{var}");
    }

    // No CA given: the system store does not know the test's CA, and nothing turns checks off.
    let (run, _) =
        build(dir.path(), json!({"provider": "git", "uri": url}), &[("GIT_SSL_NO_VERIFY", "1")], &mut images);
    run.expect_code(1);
    let errors = run.errors();
    assert!(
        errors.iter().any(|l| l.contains(&format!("cannot clone {url}: ")) && l.contains("certificate")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("GIT_SSL_NO_VERIFY is ignored"), "{}", run.stderr);

    // A git:// superproject needs no TLS (reactor saves loading the CA bundle for it), but its
    // submodule over https:// does: the CA from SSL_CERT_FILE is loaded then.
    let sup = served.join("super-work");
    let dockerfile = "FROM busybox:latest\nCOPY . /src\nCMD [\"cat\", \"/src/sub/content.txt\"]\n";
    git_repo(
        &sup,
        &[("Dockerfile", dockerfile), (".gitmodules", &format!("[submodule \"sub\"]\n\tpath = sub\n\turl = {url}\n"))],
    );
    let stable = git(&served.join("r.git"), &["rev-parse", "stable"]);
    add_gitlink(&sup, "sub", &stable);
    git_commit(&sup, &[], "the submodule");
    git(&served, &["clone", "-q", "--bare", "super-work", "super.git"]);
    let (_daemon, base) = git_daemon(&served);
    let (run, image) = build(
        dir.path(),
        json!({"provider": "git", "uri": format!("{base}/super.git"), "submodules": true}),
        &[("SSL_CERT_FILE", &ca)],
        &mut images,
    );
    run.expect_code(0);
    assert!(run.stderr.contains(&format!("submodule 'sub' checked out at {stable}")), "{}", run.stderr);
    assert_eq!(docker_run(&image, &[]), "one\n");
}

#[test]
fn file_urls_and_paths_borrow_the_objects_instead_of_copying_a_pack() {
    let dir = workdir();
    let repo = dir.path().join("repo");
    // A 2 MB binary asset.
    let blob: Vec<u8> = (0u32..2_000_000).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::create_dir_all(&repo).expect("mkdir");
    std::fs::write(repo.join("blob.bin"), &blob).expect("write blob");
    git_repo(&repo, &[("Dockerfile", DOCKERFILE), ("content.txt", "local\n")]);
    git(&repo, &["gc", "-q"]); // one pack, as a real repository has: a clone would copy it
    let source_objects = repo.canonicalize().expect("canonical").join(".git/objects");
    let mut images = Images(Vec::new());

    for uri in [format!("file://{}", repo.display()), "repo".to_owned()] {
        let (run, image) = build(dir.path(), json!({"provider": "git", "uri": uri}), &[], &mut images);
        run.expect_code(0);
        assert!(run.stderr.contains("the checkout borrows its objects (alternates): no pack copied"), "{}", run.stderr);
        assert_eq!(docker_run(&image, &[]), "local\n");
        let listing =
            docker_run(&image, &["sh", "-c", "md5sum /src/blob.bin | cut -d' ' -f1; find /src/.git/objects -type f"]);
        let md5 = Command::new("md5sum").arg(repo.join("blob.bin")).output().expect("md5sum");
        let md5 = String::from_utf8_lossy(&md5.stdout).split(' ').next().unwrap_or_default().to_owned();
        assert_eq!(listing, format!("{md5}\n/src/.git/objects/info/alternates\n"), "{uri}");
        assert_eq!(
            file_in_image(&image, ".git/objects/info/alternates"),
            Some(format!("{}\n", source_objects.display()))
        );
    }
}

/// Records `sha` as a submodule at `path` of the work tree `work` (committed by the next commit).
fn add_gitlink(work: &Path, path: &str, sha: &str) {
    git(work, &["update-index", "--add", "--cacheinfo", &format!("160000,{sha},{path}")]);
    // An empty directory is an unpopulated submodule; without it `git add -A` would drop it.
    std::fs::create_dir_all(work.join(path)).expect("mkdir");
}

#[test]
fn submodules_are_fetched_at_their_gitlinks_only_when_asked_for() {
    let dir = workdir();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    // inner.git ← lib.git (at `nested`) ← super.git (at `lib`), all by relative URLs.
    let inner = served.join("inner-work");
    let inner_sha = git_repo(&inner, &[("inner.txt", "inner\n")]);
    let lib = served.join("lib-work");
    git_repo(
        &lib,
        &[("lib.txt", "lib\n"), (".gitmodules", "[submodule \"nested\"]\n\tpath = nested\n\turl = ./../inner.git\n")],
    );
    add_gitlink(&lib, "nested", &inner_sha);
    let lib_sha = git_commit(&lib, &[], "the submodule");
    // A later commit the gitlink does not record.
    git_commit(&lib, &[("lib.txt", "later\n")], "later");
    let sup = served.join("super-work");
    let gitmodules = "[submodule \"lib\"]\n\tpath = lib\n\turl = ../lib.git\n";
    let dockerfile = "FROM busybox:latest\nCOPY . /src\nCMD [\"sh\", \"-c\", \"cd /src/lib && find . -name '*.txt' | sort && cat lib.txt\"]\n";
    git_repo(&sup, &[("Dockerfile", dockerfile), (".gitmodules", gitmodules)]);
    add_gitlink(&sup, "lib", &lib_sha);
    git_commit(&sup, &[], "the submodule");
    // The same superproject with a submodule whose repository is not there.
    let broken = served.join("broken-work");
    git_repo(&broken, &[("Dockerfile", dockerfile), (".gitmodules", &gitmodules.replace("lib.git", "missing.git"))]);
    add_gitlink(&broken, "lib", &lib_sha);
    git_commit(&broken, &[], "the submodule");
    for name in ["inner", "lib", "super", "broken"] {
        git(&served, &["clone", "-q", "--bare", &format!("{name}-work"), &format!("{name}.git")]);
    }
    // The gitlink of `lib` is not a tip: a depth-1 fetch of it needs the server's leave.
    git(&served.join("lib.git"), &["config", "uploadpack.allowReachableSHA1InWant", "true"]);
    let (_daemon, base) = git_daemon(&served);
    let mut images = Images(Vec::new());

    let (run, image) = build(
        dir.path(),
        json!({"provider": "git", "uri": format!("{base}/super.git"), "submodules": true}),
        &[],
        &mut images,
    );
    run.expect_code(0);
    assert!(run.stderr.contains(&format!("submodule 'lib' checked out at {lib_sha}")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("submodule 'lib/nested' checked out at {inner_sha}")), "{}", run.stderr);
    assert_eq!(docker_run(&image, &[]), "./lib.txt\n./nested/inner.txt\nlib\n");
    // Shallow too.
    assert!(run.stderr.contains(&format!("fetched {lib_sha} with depth 1")), "{}", run.stderr);
    assert_eq!(file_in_image(&image, "lib/.git/shallow"), Some(format!("{lib_sha}\n")));

    let (run, image) =
        build(dir.path(), json!({"provider": "git", "uri": format!("{base}/super.git")}), &[], &mut images);
    run.expect_code(0);
    assert!(!run.stderr.contains("submodule"), "{}", run.stderr);
    let out = docker(&["run", "--rm", &image, "ls", "-A", "/src/lib"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "no submodule content without `submodules`");

    let (run, _) = build(
        dir.path(),
        json!({"provider": "git", "uri": format!("{base}/broken.git"), "submodules": true}),
        &[],
        &mut images,
    );
    run.expect_code(1);
    let message = format!("cannot clone {base}/broken.git: submodule 'lib' ({base}/missing.git): ");
    assert!(run.errors().iter().any(|l| l.contains(&message)), "{}", run.stderr);
}
