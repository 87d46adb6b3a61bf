//! End-to-end: a kube-rs operator (`examples/operator`, binary `echo-operator`)
//! reconciles a custom resource against the real `skiff server`.
//!
//! The operator's CRD (`Echo`, `demo.skiff.dev/v1`) is installed with kubectl;
//! for each Echo the operator applies a ConfigMap `<name>-echo` it controls and
//! writes the Echo's status through the status subresource.
//!
//! The operator binary belongs to another workspace package, so cargo does not
//! hand its path to this test (`CARGO_BIN_EXE_*` covers only this package). The
//! test builds it with the cargo that runs the test (`$CARGO`, same target dir
//! through the inherited `CARGO_TARGET_DIR`, same profile) and takes the path
//! from cargo's JSON messages. Set `ECHO_OPERATOR_BIN` to skip that build.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

const CRD: &str = "echoes.demo.skiff.dev";

/// The `echo-operator` binary, built once per test process.
fn operator_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("ECHO_OPERATOR_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "-p",
            "skiff-operator-example",
            "--bin",
            "echo-operator",
            "--message-format=json-render-diagnostics",
        ]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build");
        assert!(out.status.success(), "cargo build of echo-operator failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| {
                m["reason"] == "compiler-artifact" && m["target"]["name"] == "echo-operator"
            })
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported the echo-operator executable")
    })
}

/// A running operator; killed when dropped, so a failing test leaves nothing behind.
struct Operator {
    child: Child,
    log: PathBuf,
}

impl Operator {
    fn start(server: &Server) -> Operator {
        let log = server.data_dir().join("operator.log");
        let child = Command::new(operator_bin())
            .arg("run")
            .env("KUBECONFIG", server.kubeconfig())
            .env("RUST_LOG", "info,kube=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("operator log"))
            .spawn()
            .expect("start echo-operator");
        Operator { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    #[track_caller]
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("operator status") {
            panic!("echo-operator exited ({status}):\n{}", self.log());
        }
    }
}

impl Operator {
    /// SIGTERM, then a clean exit within 10 s (the controller's graceful shutdown).
    #[track_caller]
    fn stop(mut self) {
        self.assert_running();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("operator status") {
                assert!(
                    status.success(),
                    "echo-operator exited with {status}:\n{}",
                    self.log()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "echo-operator still running 10s after SIGTERM:\n{}",
            tail(&self.log())
        );
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` for up to 30 s; on timeout panics with the last complaint
/// and both logs.
#[track_caller]
fn wait_for(
    s: &Server,
    op: &mut Operator,
    what: &str,
    mut check: impl FnMut() -> Result<(), String>,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = match check() {
            Ok(()) => return,
            Err(e) => e,
        };
        op.assert_running();
        if Instant::now() > deadline {
            panic!(
                "{what}: not within 30s; last: {last}\n--- operator log ---\n{}\n--- server log ---\n{}",
                tail(&op.log()),
                tail(&s.log())
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(8000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[start..]
}

/// `kubectl get <args> -o json`, or the error as text.
fn get_json(s: &Server, args: &[&str]) -> Result<Value, String> {
    let mut all = vec!["get"];
    all.extend(args);
    all.extend(["-o", "json"]);
    let out = s.kubectl(&all);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// The ConfigMap carries `message`/`replicas` and is controlled by `echo`.
fn config_map_matches(
    s: &Server,
    echo: &Value,
    message: &str,
    replicas: &str,
) -> Result<(), String> {
    let cm = get_json(s, &["configmap", "hello-echo", "-n", "default"])?;
    if cm["data"]["message"] != message || cm["data"]["replicas"] != replicas {
        return Err(format!("data is {}", cm["data"]));
    }
    let refs = cm["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let [owner] = refs.as_slice() else {
        return Err(format!("ownerReferences are {refs:?}"));
    };
    let want = serde_json::json!({
        "apiVersion": "demo.skiff.dev/v1",
        "kind": "Echo",
        "name": "hello",
        "uid": echo["metadata"]["uid"],
        "controller": true,
    });
    if *owner != want {
        return Err(format!("owner reference is {owner}, want {want}"));
    }
    Ok(())
}

/// The Echo's status says the operator saw its current generation.
fn status_current(echo: &Value) -> Result<(), String> {
    let status = &echo["status"];
    let generation = &echo["metadata"]["generation"];
    if status["configMapName"] != "hello-echo" || status["observedGeneration"] != *generation {
        return Err(format!("status is {status}, generation {generation}"));
    }
    Ok(())
}

#[test]
fn operator_reconciles_custom_resources() {
    let s = Server::start();

    // Install the CRD the operator prints, and wait until it is served.
    let crd = Command::new(operator_bin())
        .arg("crd")
        .output()
        .expect("echo-operator crd");
    assert!(
        crd.status.success(),
        "echo-operator crd: {}",
        String::from_utf8_lossy(&crd.stderr)
    );
    s.apply_stdin(
        &["apply"],
        &String::from_utf8(crd.stdout).expect("UTF-8 CRD"),
    );
    s.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        &format!("crd/{CRD}"),
    ]);
    common::eventually(Duration::from_secs(30), || {
        s.kubectl(&["get", "echoes", "-A"])
            .status
            .success()
            .then_some(())
    });

    let mut op = Operator::start(&s);

    s.apply_stdin(
        &["create"],
        r#"
apiVersion: demo.skiff.dev/v1
kind: Echo
metadata:
  name: hello
  namespace: default
spec:
  replicas: 2
  message: hi
"#,
    );
    wait_for(&s, &mut op, "ConfigMap and status for a new Echo", || {
        let echo = get_json(&s, &["echo", "hello", "-n", "default"])?;
        if echo["metadata"]["generation"] != 1 {
            return Err(format!(
                "a new Echo has generation {}",
                echo["metadata"]["generation"]
            ));
        }
        config_map_matches(&s, &echo, "hi", "2")?;
        status_current(&echo)
    });

    // A spec change bumps the generation; the ConfigMap and status follow.
    s.ok(&[
        "patch",
        "echo",
        "hello",
        "-n",
        "default",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"message":"bye","replicas":3}}"#,
    ]);
    wait_for(
        &s,
        &mut op,
        "ConfigMap and status after a spec change",
        || {
            let echo = get_json(&s, &["echo", "hello", "-n", "default"])?;
            if echo["metadata"]["generation"] != 2 {
                return Err(format!(
                    "generation is {} after one spec change",
                    echo["metadata"]["generation"]
                ));
            }
            config_map_matches(&s, &echo, "bye", "3")?;
            status_current(&echo)
        },
    );

    // Settled: the operator's repeated applies change nothing, so nothing is
    // written and no watch event wakes it again (a no-op apply that bumps the
    // resourceVersion would make it spin).
    let versions = || {
        let echo = get_json(&s, &["echo", "hello", "-n", "default"]).expect("get echo");
        let cm =
            get_json(&s, &["configmap", "hello-echo", "-n", "default"]).expect("get configmap");
        (
            echo["metadata"]["resourceVersion"].clone(),
            cm["metadata"]["resourceVersion"].clone(),
        )
    };
    let before = versions();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        versions(),
        before,
        "objects keep changing after the operator settled:\n{}",
        tail(&op.log())
    );

    // kubectl shows the CRD's short name and printer columns (a CRD that
    // names its own columns gets no default AGE column).
    let table = s.ok(&["get", "ec", "-n", "default"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "MESSAGE", "CONFIGMAP"], "{table}");
    assert!(
        table.contains("hello") && table.contains("bye") && table.contains("hello-echo"),
        "{table}"
    );

    op.stop();
}
