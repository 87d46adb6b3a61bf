//! What the cluster's own components (scheduler, controllers, hollow nodes)
//! share as clients of the API: a kube-rs connection made from a kubeconfig,
//! and leader election on a `coordination.k8s.io` Lease.
//!
//! Components never reach the store directly; like kube-scheduler and
//! kube-controller-manager they list, watch and write through the API.

pub mod events;
pub mod informer;
pub mod labels;
pub mod leaderelection;
pub mod tls;

use std::path::Path;

use anyhow::Context;

/// The API client every component uses.
pub use kube::Client;

/// A client for the cluster the kubeconfig at `path` names (its current context).
pub async fn from_kubeconfig(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .with_context(|| format!("loading kubeconfig {}", path.display()))?;
    // Components make many small requests; the default 295 s read timeout
    // would hide a dead server for minutes.
    config.read_timeout = Some(std::time::Duration::from_secs(60));
    kube::Client::try_from(config).context("building the API client")
}

/// A client for the cluster named by `path`, else by `$KUBECONFIG` (what
/// `skiff scheduler` and `skiff hollow-nodes` take).
pub async fn from_kubeconfig_or_env(path: Option<&Path>) -> anyhow::Result<kube::Client> {
    let path = path
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("KUBECONFIG").map(std::path::PathBuf::from))
        .context("--kubeconfig is required (or set KUBECONFIG)")?;
    from_kubeconfig(&path).await
}

/// `<hostname>_<random>`: unique per process, as client-go's leader election
/// identities are, so a restarted component never mistakes an old lease for its own.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "skiff".to_string());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// The PEM of the CA the kubeconfig at `path` trusts for its current
/// cluster (inline data or a file).
pub fn ca_pem_from_kubeconfig(path: &Path) -> anyhow::Result<String> {
    use base64::Engine;
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let context = kubeconfig.current_context.clone().unwrap_or_default();
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .unwrap_or_default();
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .or_else(|| kubeconfig.clusters.first())
        .and_then(|c| c.cluster.as_ref())
        .context("the kubeconfig names no cluster")?;
    if let Some(data) = &cluster.certificate_authority_data {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .context("decoding certificate-authority-data")?;
        return String::from_utf8(pem).context("certificate-authority-data is not PEM");
    }
    let file = cluster
        .certificate_authority
        .as_ref()
        .context("the kubeconfig's cluster has no certificate authority")?;
    std::fs::read_to_string(file).with_context(|| format!("reading {file}"))
}
