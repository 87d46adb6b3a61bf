//! End-to-end: the PyPI `kubernetes` client lists and watches against skiff.

mod common;

use common::Server;

#[test]
fn python_client_lists_and_watches() {
    let s = Server::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/e2e/python/client_check.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(s.kubeconfig())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python client: ok"));
}
