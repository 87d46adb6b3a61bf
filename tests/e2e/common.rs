//! Test harness: starts the real `skiff` binary on a temporary data dir and a
//! free port, and drives it with the real `/usr/bin/kubectl`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn skiff_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_skiff"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A running `skiff server` (control plane only) on 127.0.0.1.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    extra_args: Vec<String>,
    /// A server with its node agent runs inside a network namespace of its
    /// own (with no route out); kubectl and curl run in it too.
    netns: Option<Netns>,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = Server {
            dir,
            port: free_port(),
            child: None,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            netns: None,
        };
        s.launch();
        s
    }

    /// A server with its node agent (real containerd, CNI, containers) in a
    /// fresh network namespace, with the test images ready for import.
    pub fn start_node(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let images = dir.path().join("agent/images");
        std::fs::create_dir_all(&images).expect("images dir");
        for name in ["pause", "busybox", "demo"] {
            let src = test_images_dir().join(format!("{name}.tar"));
            assert!(
                src.exists(),
                "{} is missing: run `make images` first",
                src.display()
            );
            std::fs::copy(&src, images.join(format!("{name}.tar"))).expect("copy image");
        }
        let mut s = Server {
            dir,
            port: free_port(),
            child: None,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            netns: Some(Netns::new("node")),
        };
        s.launch();
        s
    }

    pub fn netns(&self) -> Option<&str> {
        self.netns.as_ref().map(|n| n.name.as_str())
    }

    /// A command run inside the server's network namespace (or as is).
    pub fn in_netns(&self, program: &str) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.name, program]);
                c
            }
            None => Command::new(program),
        }
    }

    /// `ctr` against the node's own containerd, in the CRI namespace.
    pub fn ctr(&self, args: &[&str]) -> String {
        let socket = self.dir.path().join("agent/containerd/containerd.sock");
        let out = Command::new("ctr")
            .arg("-a")
            .arg(&socket)
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .expect("run ctr");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log file");
        let mut cmd = match &self.netns {
            // nsenter, not `ip netns exec`: the latter remounts /sys and
            // would hide the cgroup hierarchies from containerd.
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/var/run/netns/{}", ns.name))
                    .arg(skiff_bin())
                    .args(["server", "--bind-address", "0.0.0.0"]);
                c
            }
            None => {
                let mut c = Command::new(skiff_bin());
                c.args(["server", "--disable-agent", "--bind-address", "127.0.0.1"]);
                c
            }
        };
        let child = cmd
            .arg("--https-listen-port")
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(&self.extra_args)
            .env("SKIFF_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start skiff server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("skiff server exited early ({status}): {}", self.log());
            }
            if self.kubeconfig().exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("skiff server not ready in 30s: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            terminate(c, "server", || self.log());
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        kill(self.child.take());
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn start_again(&mut self) {
        self.launch();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn kubectl_cmd(&self) -> Command {
        let mut c = self.in_netns("kubectl");
        c.env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"));
        c
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd().args(args).output().expect("run kubectl")
    }

    /// Runs kubectl with `stdin` piped in.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .kubectl_cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl output")
    }

    /// kubectl that must succeed; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl that must fail; returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    #[track_caller]
    pub fn apply_stdin(&self, verb: &[&str], yaml: &str) -> String {
        let mut args = verb.to_vec();
        args.extend(["-f", "-"]);
        let out = self.kubectl_stdin(&args, yaml);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A raw API call through `kubectl get --raw` (GET only) parsed as JSON.
    #[track_caller]
    pub fn raw_json(&self, path: &str) -> serde_json::Value {
        let out = self.ok(&["get", "--raw", path]);
        serde_json::from_str(&out).expect("JSON from --raw")
    }

    /// An HTTPS request with the admin client certificate, via curl:
    /// (status code, body).
    pub fn curl(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        let tls = self.dir.path().join("server/tls");
        let body_file = self.dir.path().join(format!("curl-body-{}", rand_suffix()));
        std::fs::write(&body_file, body).expect("write body");
        let out = self
            .in_netns("curl")
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", method])
            .arg("--cacert")
            .arg(tls.join("server-ca.crt"))
            .arg("--cert")
            .arg(tls.join("client-admin.crt"))
            .arg("--key")
            .arg(tls.join("client-admin.key"))
            .args(["-H", &format!("Content-Type: {content_type}")])
            .arg("--data-binary")
            .arg(format!("@{}", body_file.display()))
            .arg(format!("https://127.0.0.1:{}{}", self.port, path))
            .output()
            .expect("curl");
        let _ = std::fs::remove_file(&body_file);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// An anonymous HTTPS GET (no client certificate).
    pub fn curl_anonymous(&self, path: &str) -> (u16, String) {
        let out = self
            .in_netns("curl")
            .args(["-sk", "-o", "-", "-w", "\n%{http_code}"])
            .arg(format!("https://127.0.0.1:{}{}", self.port, path))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill(self.child.take());
        if let Some(ns) = &self.netns {
            // Every pod, containerd and its shims, and their mounts go
            // before the namespace does.
            let _ = Command::new("nsenter")
                .arg(format!("--net=/var/run/netns/{}", ns.name))
                .arg(skiff_bin())
                .arg("killall")
                .arg("--data-dir")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// A network namespace in which nothing reaches outside: `lo`, and an
/// `eth0` whose veth peer stays inside, unconfigured, carrying the node
/// address [`NODE_IP`] and a default route, as a real node has.
pub struct Netns {
    pub name: String,
}

/// The node's address inside a [`Netns`].
pub const NODE_IP: &str = "172.31.0.2";

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        let name = format!(
            "skiff-{prefix}-{}-{}",
            std::process::id(),
            rand_suffix() & 0xffff
        );
        let ok = Command::new("ip").args(["netns", "add", &name]).status();
        assert!(
            ok.is_ok_and(|s| s.success()),
            "ip netns add {name} (root needed)"
        );
        for args in [
            "link set lo up",
            "link add eth0 type veth peer name eth0-peer",
            "link set eth0-peer up",
            &format!("addr add {NODE_IP}/24 dev eth0"),
            "link set eth0 up",
            "route add default dev eth0",
        ] {
            let ok = Command::new("ip")
                .args(["-n", &name])
                .args(args.split(' '))
                .status();
            assert!(ok.is_ok_and(|s| s.success()), "ip -n {name} {args}");
        }
        Netns { name }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Where `make images` put the test images.
pub fn test_images_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SKIFF_IMAGES_DIR") {
        return PathBuf::from(d);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/skiff/target"));
    target.join("images")
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) ^ u64::from(std::process::id()) << 32
}

/// SIGTERM, then waits up to 10 s for a clean exit; panics (with the
/// process's log) if it fails or hangs.
#[track_caller]
fn terminate(mut c: Child, what: &str, log: impl Fn() -> String) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(c.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = c.try_wait() {
            assert!(
                status.success(),
                "{what} did not exit cleanly: {status}: {}",
                log()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    panic!("{what} did not stop within 10s of SIGTERM");
}

/// SIGKILL and reap: the process gets no chance to flush anything.
fn kill(child: Option<Child>) {
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Polls `f` until it returns Some, or panics after `timeout`.
#[track_caller]
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("condition not met within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `skiff hollow-nodes` against a [`Server`]: hollow nodes whose
/// pods are reported Running without containers. Killed when dropped.
pub struct HollowNodes {
    child: Option<Child>,
    log: PathBuf,
    args: Vec<String>,
    kubeconfig: PathBuf,
}

impl HollowNodes {
    /// Starts `skiff hollow-nodes --count <count> <extra_args>` and waits
    /// until it has registered every node.
    pub fn start(server: &Server, count: usize, extra_args: &[&str]) -> HollowNodes {
        let mut args = vec!["--count".to_string(), count.to_string()];
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let mut h = HollowNodes {
            child: None,
            log: server
                .data_dir()
                .join(format!("hollow-nodes-{}.log", rand_suffix())),
            args,
            kubeconfig: server.kubeconfig(),
        };
        h.launch();
        h
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("hollow-nodes log file");
        let before = self.log().matches("hollow nodes registered").count();
        let child = Command::new(skiff_bin())
            .arg("hollow-nodes")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(&self.args)
            .env("SKIFF_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start skiff hollow-nodes");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.log().matches("hollow nodes registered").count() > before {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("skiff hollow-nodes exited early ({status}): {}", self.log());
            }
            if Instant::now() > deadline {
                panic!("hollow nodes not registered in 60s: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGTERM, then wait for a clean exit (the nodes stay registered).
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            terminate(c, "hollow-nodes", || self.log());
        }
    }

    /// Stops and starts again with the same flags (nodes are adopted).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for HollowNodes {
    fn drop(&mut self) {
        kill(self.child.take());
    }
}

/// A standalone `skiff scheduler` against a [`Server`] (started with
/// `--disable-scheduler`, or competing with its in-process one for the
/// lease). Killed when dropped.
pub struct Scheduler {
    child: Option<Child>,
    log: PathBuf,
}

impl Scheduler {
    pub fn start(server: &Server) -> Scheduler {
        let log = server
            .data_dir()
            .join(format!("scheduler-{}.log", rand_suffix()));
        let file = std::fs::File::create(&log).expect("scheduler log file");
        let child = Command::new(skiff_bin())
            .arg("scheduler")
            .arg("--kubeconfig")
            .arg(server.kubeconfig())
            .env("SKIFF_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start skiff scheduler");
        Scheduler {
            child: Some(child),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the lease is left as it was, not released.
    pub fn kill9(&mut self) {
        kill(self.child.take());
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---- pods on a node with its agent (node.rs, node_pods.rs) ----

/// `kubectl get <what> -o jsonpath=<path>` (empty when it fails).
pub fn jsonpath(s: &Server, what: &str, path: &str) -> String {
    let out = s.kubectl(&["get", what, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn phase(s: &Server, pod: &str) -> String {
    jsonpath(s, &format!("pod/{pod}"), "{.status.phase}")
}

#[track_caller]
pub fn wait_phase(s: &Server, pod: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while phase(s, pod) != want {
        if Instant::now() > deadline {
            let status = s.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status}"]);
            let events = s.kubectl(&[
                "get",
                "events",
                "--field-selector",
                &format!("involvedObject.name={pod}"),
            ]);
            panic!(
                "pod {pod} not {want} in 90s: {}\n{}",
                String::from_utf8_lossy(&status.stdout),
                String::from_utf8_lossy(&events.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[track_caller]
pub fn wait_ready(s: &Server, pod: &str, ready: &str) {
    eventually(Duration::from_secs(90), || {
        (jsonpath(
            s,
            &format!("pod/{pod}"),
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        ) == ready)
            .then_some(())
    });
}

pub fn node_ready(s: &Server) {
    eventually(Duration::from_secs(60), || {
        let out = s.kubectl(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        (String::from_utf8_lossy(&out.stdout) == "True").then_some(())
    });
}
