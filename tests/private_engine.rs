//! Engines and registries a test owns alone, so that it may kill them: a private dockerd (its own
//! data root, exec root, pid file and socket, no networking of its own) holding a copy of
//! `busybox:latest`, in a network namespace of its own, and a private `docker-registry` on an ephemeral loopback port. The shared
//! dockerd and registries of `scripts/setup.sh` are never touched. Each is stopped and cleaned
//! up when dropped, also when the test fails: its processes killed (dockerd's containerd and
//! shims too), what it mounted unmounted, its directories removed.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A dockerd of the test's own.
pub struct PrivateEngine {
    /// Holds `data/`, `exec/`, the pid file, the socket and the log; short, for the socket's sake.
    root: tempfile::TempDir,
    daemon: Option<Child>,
}

impl PrivateEngine {
    /// Starts a dockerd and loads `busybox:latest` from the shared engine into it.
    pub fn start() -> PrivateEngine {
        let root = tempfile::Builder::new().prefix("reactor-engine-").tempdir_in("/tmp").expect("tempdir");
        let mut engine = PrivateEngine { root, daemon: None };
        engine.restart();
        let mut save = Command::new("docker")
            .args(["save", "busybox:latest"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save (the shared engine: scripts/setup.sh)");
        let load = Command::new("docker")
            .args(["-H", &engine.host(), "load", "-q"])
            .stdin(save.stdout.take().expect("docker save's output"))
            .output()
            .expect("docker load");
        assert!(save.wait().expect("docker save").success(), "docker save busybox:latest failed");
        assert!(load.status.success(), "docker load: {}", String::from_utf8_lossy(&load.stderr));
        engine
    }

    /// Starts dockerd (again, after [`PrivateEngine::kill`]) on the same data root and waits
    /// until it answers.
    pub fn restart(&mut self) {
        assert!(self.daemon.is_none(), "dockerd is already running");
        let root = self.root.path();
        // A killed dockerd leaves its pid file, and a new one refuses to start while it is there.
        let _ = std::fs::remove_file(root.join("docker.pid"));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(root.join("dockerd.log")).expect("log");
        let mut dockerd = vec!["dockerd".to_owned()];
        for (flag, path) in [("--data-root", "data"), ("--exec-root", "exec"), ("--pidfile", "docker.pid")] {
            dockerd.extend([flag.to_owned(), root.join(path).display().to_string()]);
        }
        dockerd.extend(
            ["-H", &self.host(), "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false"]
                .map(str::to_owned),
        );
        dockerd.extend(["--storage-driver", "overlay2", "--shutdown-timeout", "2"].map(str::to_owned));
        // In a network namespace of its own: a dockerd started with `--bridge=none` deletes the
        // host's `docker0`, which the shared engine's containers need. Its loopback must be up,
        // or dockerd takes many seconds to reach its containerd.
        let daemon = Command::new("unshare")
            .args(["--net", "--", "sh", "-c", "ip link set lo up && exec \"$@\"", "sh"])
            .args(&dockerd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            // Its own process group: a Ctrl-C meant for the tests does not kill it uncleaned.
            .process_group(0)
            .spawn()
            .expect("start dockerd (Debian's docker.io: scripts/setup.sh)");
        self.daemon = Some(daemon);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.docker(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "the private dockerd did not start:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `DOCKER_HOST` for this engine.
    pub fn host(&self) -> String {
        format!("unix://{}", self.root.path().join("docker.sock").display())
    }

    /// Runs the docker CLI against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker").arg("-H").arg(self.host()).args(args).output().expect("run docker")
    }

    /// The IDs of every container this engine has, running or not.
    pub fn containers(&self) -> Vec<String> {
        let out = self.docker(&["ps", "-aq", "--no-trunc"]);
        assert!(out.status.success(), "docker ps: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    }

    /// SIGKILLs dockerd, as the OOM killer or a crash would, and reaps it.
    pub fn kill(&mut self) {
        let mut daemon = self.daemon.take().expect("dockerd is running");
        daemon.kill().expect("SIGKILL dockerd");
        daemon.wait().expect("reap dockerd");
        // Its containerd follows it (dockerd asks the kernel to kill it then); a restart must
        // not find it still there. The build's container lives on in its shim, as on a real host.
        let pid_file = self.root.path().join("exec/containerd/containerd.pid");
        if let Ok(pid) = std::fs::read_to_string(&pid_file).as_deref().map(str::trim) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while is_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        // Left unreaped, a zombie containerd would pass for a live one with dockerd, which would
        // then wait for it to answer, in vain.
        let _ = std::fs::remove_file(pid_file);
    }

    /// dockerd's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        let root = self.root.path().to_path_buf();
        if let Some(mut daemon) = self.daemon.take() {
            // A clean stop lets dockerd stop its containers and unmount its layers.
            let _ = Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(daemon.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        // What outlived it (a containerd, a shim and its container after a SIGKILL) names the root.
        kill_processes_naming(&root);
        unmount_under(&root);
    }
}

/// Whether process `pid` runs (a zombie does not).
fn is_alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

/// SIGKILLs every process whose command line names `root` (they were all started under it).
fn kill_processes_naming(root: &Path) {
    let needle = root.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if pid != std::process::id() && String::from_utf8_lossy(&cmdline).contains(&needle) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
    // A shim's container dies with it; give the kernel a moment to release their mounts.
    std::thread::sleep(Duration::from_millis(300));
}

/// Unmounts, deepest first, everything mounted under `root` (overlay layers, shm, netns).
fn unmount_under(root: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|point| point.starts_with(root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        let _ = Command::new("umount").arg("-l").arg(&point).status();
    }
}

/// A `docker-registry` of the test's own, on an ephemeral loopback port, that the test can stop
/// and start again on the same port and storage.
pub struct PrivateRegistry {
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub address: String,
    process: Option<Child>,
}

impl PrivateRegistry {
    /// Starts a registry (plain HTTP, no login, loopback only) and waits until it answers.
    pub fn start() -> PrivateRegistry {
        let dir = tempfile::Builder::new().prefix("reactor-registry-").tempdir().expect("tempdir");
        // The port is free a moment ago; the registry binds it right after.
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let address = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    \
             enabled: true\nhttp:\n  addr: {address}\n",
            dir.path().join("storage").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("write the registry's config");
        let mut registry = PrivateRegistry { dir, address, process: None };
        registry.restart();
        registry.wait_until_up();
        registry
    }

    /// Starts the registry again (after [`PrivateRegistry::stop`]); does not wait for it.
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "the registry is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("registry.log"))
            .expect("log");
        let process = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start docker-registry (Debian's docker-registry: scripts/setup.sh)");
        self.process = Some(process);
    }

    /// Waits until the registry answers `/v2/`.
    pub fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.answers() {
            let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "the private registry did not start:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the registry answers `/v2/`.
    pub fn answers(&self) -> bool {
        let out = Command::new("curl")
            .args(["-sf", "-o", "/dev/null", &format!("http://{}/v2/", self.address)])
            .status()
            .expect("curl");
        out.success()
    }

    /// Stops the registry (SIGKILL: it is gone at once, as a crashed one is).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Whether an upload to `repository` has begun (the registry keeps it under `_uploads`).
    pub fn upload_started(&self, repository: &str) -> bool {
        let uploads = self.dir.path().join("storage/docker/registry/v2/repositories").join(repository).join("_uploads");
        std::fs::read_dir(uploads).is_ok_and(|mut entries| entries.next().is_some())
    }

    /// The HTTP status of the manifest `repository:reference`.
    pub fn manifest_status(&self, repository: &str, reference: &str) -> u16 {
        crate::util::registry_manifest(&self.address, repository, reference, None).status
    }
}

impl Drop for PrivateRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
