//! `kubectl apply -f` of a directory of manifests, timed beside `kubectl
//! create -f` of the same directory in the same run (the real kubectl, so
//! the figure includes its discovery and OpenAPI reads).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::objects::deployment;

pub struct Timings {
    pub create: Duration,
    pub apply: Duration,
    pub reapply: Duration,
}

/// Writes `count` manifests (ConfigMaps, Secrets, Services, Deployments in
/// turn) into `dir`, one file each.
pub fn write_manifests(dir: &Path, count: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for i in 0..count {
        let name = format!("obj-{i:04}");
        let doc = match i % 4 {
            0 => serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "labels": {"bench": "kubectl"}},
                "data": {"settings.conf": format!("mode=production\nindex={i}\n")}}),
            1 => serde_json::json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "labels": {"bench": "kubectl"}},
                "stringData": {"password": format!("secret-{i}")}}),
            2 => serde_json::json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "labels": {"bench": "kubectl"}},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}),
            _ => {
                let mut d = deployment("", &name);
                if let Some(m) = d["metadata"].as_object_mut() {
                    m.remove("namespace");
                }
                d
            }
        };
        std::fs::write(
            dir.join(format!("{name}.yaml")),
            serde_yaml::to_string(&doc)?,
        )?;
    }
    Ok(())
}

/// Times `kubectl create -f dir` into one namespace and `kubectl apply -f
/// dir` twice (the second changes nothing) into another.
pub fn run(kubeconfig: &Path, dir: &Path) -> Result<Timings> {
    for ns in ["kubectl-create", "kubectl-apply"] {
        kubectl(kubeconfig, &["create", "namespace", ns])?;
    }
    let create = kubectl(
        kubeconfig,
        &["create", "-n", "kubectl-create", "-f", path(dir)?],
    )?;
    let apply = kubectl(
        kubeconfig,
        &["apply", "-n", "kubectl-apply", "-f", path(dir)?],
    )?;
    let reapply = kubectl(
        kubeconfig,
        &["apply", "-n", "kubectl-apply", "-f", path(dir)?],
    )?;
    Ok(Timings {
        create,
        apply,
        reapply,
    })
}

fn path(p: &Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 path")
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<Duration> {
    let started = Instant::now();
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .context("running kubectl")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or_default()
        );
    }
    Ok(took)
}
