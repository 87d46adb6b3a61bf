//! Durability with the real kubectl: every create kubectl reported as done
//! survives a `kill -9` of the server at an arbitrary moment.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::Server;

const THREADS: usize = 8;

/// How each thread creates a ConfigMap: `kubectl create configmap`, or, when
/// the server cannot take that request, `kubectl create -f -` with YAML
/// (which kubectl sends as JSON).
#[derive(Clone, Copy, Debug)]
enum CreateVia {
    Imperative,
    Manifest,
}

/// A kubectl invocation against `server` that does not borrow it, so the
/// test can kill the server while creates are in flight. Same environment as
/// the harness's `kubectl_cmd`.
struct Kubectl {
    kubeconfig: PathBuf,
    home: PathBuf,
}

impl Kubectl {
    fn of(server: &Server) -> Kubectl {
        Kubectl {
            kubeconfig: server.kubeconfig(),
            home: server.data_dir().to_path_buf(),
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.home)
            .arg("--cache-dir")
            .arg(cache_dir(&self.home))
            .arg("--request-timeout=10s")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Creates ConfigMap `name`; true only if kubectl reported it created.
    fn create(&self, via: CreateVia, name: &str) -> bool {
        let out = match via {
            CreateVia::Imperative => {
                self.run(&["create", "configmap", name, "--from-literal=k=v"], None)
            }
            CreateVia::Manifest => self.run(
                &["create", "-f", "-"],
                Some(&format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"
                )),
            ),
        };
        out.status.success()
            && String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == format!("configmap/{name} created"))
    }
}

fn cache_dir(home: &Path) -> PathBuf {
    home.join("kube-cache")
}

#[test]
fn acknowledged_creates_survive_kill9() {
    let mut server = Server::start();
    let kubectl = Kubectl::of(&server);

    let probe = server.kubectl(&["create", "configmap", "d-probe", "--from-literal=k=v"]);
    let via = if probe.status.success() {
        CreateVia::Imperative
    } else {
        eprintln!(
            "`kubectl create configmap` failed ({}); creating from YAML instead",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        CreateVia::Manifest
    };
    assert!(
        kubectl.create(via, "d-warmup"),
        "a create before the kill must succeed"
    );

    let stop = AtomicBool::new(false);
    let acknowledged = Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (kubectl, stop, acknowledged) = (&kubectl, &stop, &acknowledged);
            s.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("d-{t}-{i}");
                    i += 1;
                    if kubectl.create(via, &name) {
                        acknowledged.lock().unwrap().push(name);
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_secs(3));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(
        acknowledged.len() >= THREADS,
        "only {} creates were acknowledged in 3 s; the check would prove little",
        acknowledged.len()
    );

    server.start_again();
    let listed = server.ok(&["get", "cm", "-o", "name"]);
    let present: std::collections::HashSet<&str> = listed
        .lines()
        .filter_map(|l| l.trim().strip_prefix("configmap/"))
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|n| !present.contains(n.as_str()))
        .collect();
    eprintln!(
        "acknowledged {}, present {}, lost {} (via {via:?})",
        acknowledged.len(),
        acknowledged.len() - lost.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates are missing after kill -9: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    assert!(present.contains("d-warmup"));
}
