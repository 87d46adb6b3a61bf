//! The node agent (kubelet): pods bound to this node become real containers
//! through containerd over CRI, with CNI networking, probes, volumes, logs,
//! exec/attach/port-forward streams and stats. A client of the API only.
//!
//! - [`containerd`] starts the agent's own containerd; [`cri`] talks to it;
//! - [`cni`] writes the pod network config once the node has a podCIDR;
//! - [`node`] registers the Node, reports its status and renews its Lease;
//! - [`pod_manager`] watches the pods bound here and runs one worker per pod
//!   ([`pod_workers`]); a relist of the runtime every second (the kubelet's
//!   PLEG) wakes the worker of any pod whose containers changed;
//! - [`server`] is the HTTPS endpoint the API server proxies logs, exec,
//!   attach and port-forward to.

pub mod cni;
pub mod container;
pub mod containerd;
pub mod cri;
pub mod env;
mod host;
pub mod images;
pub mod killall;
pub mod logs;
pub mod node;
pub mod pod_manager;
pub mod pod_workers;
pub mod probes;
pub mod qos;
pub mod runtime_view;
pub mod sandbox;
pub mod server;
pub mod stats;
pub mod status;
pub mod streaming;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Pod, Taint};

pub use pod_manager::run;

/// The agent's settings (`skiff agent` flags, or `skiff server`'s).
#[derive(Clone, Debug)]
pub struct Config {
    /// `<data-dir>/agent`.
    pub root: PathBuf,
    pub node_name: String,
    pub node_ip: Option<IpAddr>,
    pub node_labels: BTreeMap<String, String>,
    pub node_taints: Vec<Taint>,
    /// Servers get `node-role.kubernetes.io/control-plane`.
    pub control_plane: bool,
    /// An existing CRI socket; None starts containerd as a child.
    pub container_runtime_endpoint: Option<String>,
    pub private_registry: PathBuf,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub kubelet_port: u16,
    pub max_pods: u32,
    pub cgroup_root: String,
    pub sandbox_image: String,
    /// TLS of the kubelet endpoint: serving cert and key, and the CA whose
    /// client certificates it accepts (the API server's).
    pub tls_cert_pem: String,
    pub tls_key_pem: String,
    pub client_ca_pem: String,
}

impl Config {
    pub fn pods_dir(&self) -> PathBuf {
        self.root.join("pods")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }
}

pub const SANDBOX_IMAGE: &str = "localhost/pause:3.10";

/// Shared by the pod manager, the workers and the kubelet server.
pub struct Kubelet {
    pub client: kube::Client,
    pub rt: cri::Runtime,
    pub config: Arc<Config>,
    pub node_ip: String,
    pub machine: node::Machine,
    pub recorder: client::events::Recorder,
    pub images: images::ImageManager,
    pub volumes: volumes::VolumeManager,
    pub probes: probes::ProbeManager,
    pub stats: Arc<stats::StatsProvider>,
    /// The Services of the cluster, for the service environment variables.
    pub services: client::informer::Informer<k8s_openapi::api::core::v1::Service>,
    host_resolv_conf: String,
    /// The pods bound to this node, as the API last said.
    pods: Mutex<HashMap<String, Arc<Pod>>>,
    /// What the runtime last showed of each pod (for the server's lookups).
    observed: Mutex<HashMap<String, runtime_view::PodRuntime>>,
    /// Grace periods of pods that vanished from the API.
    graces: Mutex<HashMap<String, std::time::Duration>>,
    states: pod_workers::States,
    /// Containers whose liveness or startup probe failed: id → probe name.
    liveness_failed: Mutex<HashMap<String, &'static str>>,
}

impl Kubelet {
    pub(crate) fn desired(&self, uid: &str) -> Option<Arc<Pod>> {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .cloned()
    }

    pub(crate) fn set_observed(&self, uid: &str, view: &runtime_view::PodRuntime) {
        self.observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.to_string(), view.clone());
    }

    pub(crate) fn last_grace(&self, uid: &str) -> Option<std::time::Duration> {
        self.graces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .copied()
    }

    pub(crate) fn forget(&self, uid: &str) {
        self.observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
        self.graces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }

    /// The log directory of a pod known by UID (the dir name ends in it).
    pub(crate) fn log_dir_of(&self, uid: &str) -> Option<PathBuf> {
        let suffix = format!("_{uid}");
        std::fs::read_dir(self.config.logs_dir())
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(&suffix))
            })
    }

    pub(crate) fn sandbox_config(&self, pod: &Pod, attempt: u32) -> cri::api::PodSandboxConfig {
        let logs = self.config.logs_dir();
        sandbox::config(
            pod,
            attempt,
            &sandbox::SandboxSettings {
                cluster_dns: &self.config.cluster_dns,
                cluster_domain: &self.config.cluster_domain,
                cgroup_root: &self.config.cgroup_root,
                log_root: &logs,
                host_resolv_conf: &self.host_resolv_conf,
            },
        )
    }
}
