//! Hollow nodes, like Kubernetes' kubemark and KWOK: Node objects with
//! Leases and a Ready status, whose pods are reported Running without any
//! container behind them. A test tool for scale work (the scheduler, the
//! controllers and the API server under thousands of nodes and pods), never
//! a real node.
//!
//! Like every component it talks to the cluster only through the API:
//! - [`node`]: registration (restart-safe: existing nodes of the same name
//!   are adopted), the node status and the node Lease;
//! - [`heartbeat`]: lease renewals and status refreshes, spread evenly over
//!   their period;
//! - [`pods`]: one watch on bound pods; Running status for pods bound to a
//!   hollow node, deletion finished for pods being deleted; [`pod_status`]
//!   decides what to write from the observed pod alone;
//! - [`ipam`]: the fake node and pod addresses. Pod addresses come from
//!   the node's `spec.podCIDR`, which the node IPAM controller sets; nodes
//!   wait for it before running pods, and take `10.244.<i>.0/24` themselves
//!   only when no controller manager assigns one (a server started with
//!   `--disable-controller-manager`).

pub mod heartbeat;
pub mod ipam;
pub mod node;
pub mod parse;
pub mod pod_status;
pub mod pods;
mod retry;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

pub use k8s_openapi::api::core::v1::Taint;
pub use parse::{parse_label, parse_quantity, parse_taint};

/// The field manager of every write a hollow node makes.
pub const FIELD_MANAGER: &str = "skiff-hollow-node";

#[derive(Clone, Debug)]
pub struct HollowConfig {
    /// How many nodes: `<name_prefix>0` .. `<name_prefix><count-1>`.
    pub count: usize,
    pub name_prefix: String,
    /// Capacity (= allocatable) of each node, as quantities.
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub ephemeral_storage: String,
    /// Nodes are spread round-robin over `zone-0` .. `zone-<zones-1>`
    /// (`topology.kubernetes.io/zone`); 0 means no zone label.
    pub zones: usize,
    /// Extra labels for every node.
    pub labels: BTreeMap<String, String>,
    /// Taints every node registers with.
    pub taints: Vec<Taint>,
    pub kubelet_version: String,
    pub kernel_version: String,
    /// The node Lease's duration; it is renewed every quarter of it, as the
    /// kubelet does (40 s, renewed every 10 s).
    pub lease_duration: Duration,
    /// How often each node's conditions are refreshed (lastHeartbeatTime).
    pub status_update_frequency: Duration,
    /// Pod writes in flight at most (registration and heartbeats each have
    /// their own budget of the same size).
    pub max_in_flight: usize,
}

impl Default for HollowConfig {
    fn default() -> Self {
        HollowConfig {
            count: 0,
            name_prefix: "hollow-node-".into(),
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: "110".into(),
            ephemeral_storage: "100Gi".into(),
            zones: 0,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            kubelet_version: "v1.33.0".into(),
            kernel_version: host_kernel_version(),
            lease_duration: Duration::from_secs(40),
            status_update_frequency: Duration::from_secs(60),
            max_in_flight: 48,
        }
    }
}

impl HollowConfig {
    pub(crate) fn lease_duration_seconds(&self) -> i32 {
        self.lease_duration.as_secs().clamp(1, i32::MAX as u64) as i32
    }

    /// The kubelet renews every quarter of the lease duration.
    pub fn lease_renew_interval(&self) -> Duration {
        (self.lease_duration / 4).max(Duration::from_millis(250))
    }
}

/// The running kernel's release, as a kubelet reports it.
pub fn host_kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Registers the nodes, then keeps them alive and runs their pods until
/// `shutdown`. Nodes stay registered on shutdown (they go NotReady once
/// their leases expire, as a stopped kubelet's do).
pub async fn run(
    client: kube::Client,
    cfg: HollowConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (registered, _) = tokio::sync::watch::channel(false);
    run_with_ready(client, cfg, registered, shutdown).await
}

/// [`run`], setting `registered` to true once every node is registered.
pub async fn run_with_ready(
    client: kube::Client,
    cfg: HollowConfig,
    registered: tokio::sync::watch::Sender<bool>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let boot_id = format!(
        "{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    );

    let joined: Vec<node::Registered> = futures::stream::iter(0..cfg.count)
        .map(|i| {
            let (client, cfg, boot_id, shutdown) = (&client, &cfg, &boot_id, &shutdown);
            async move { node::register(client, cfg, i, boot_id, shutdown).await }
        })
        .buffer_unordered(cfg.max_in_flight.max(1))
        .try_collect()
        .await
        .context("registering hollow nodes")?;
    if shutdown.is_cancelled() {
        return Ok(());
    }
    let nodes = node::await_pod_cidrs(&client, joined, cfg.max_in_flight, &shutdown)
        .await
        .context("waiting for pod CIDRs")?;
    if shutdown.is_cancelled() {
        return Ok(());
    }
    let nodes: Arc<[node::HollowNode]> = nodes.into();
    tracing::info!(count = nodes.len(), "hollow nodes registered");
    registered.send_replace(true);

    let stop = shutdown.child_token();

    let leases = heartbeat::spread(
        "lease renewal",
        nodes.clone(),
        cfg.lease_renew_interval(),
        cfg.max_in_flight,
        stop.clone(),
        {
            let (client, cfg, shutdown) = (client.clone(), cfg.clone(), stop.clone());
            move |nodes, i| {
                heartbeat::renew_lease(client.clone(), cfg.clone(), nodes, i, shutdown.clone())
            }
        },
    );
    let statuses = heartbeat::spread(
        "node status update",
        nodes.clone(),
        cfg.status_update_frequency,
        cfg.max_in_flight,
        stop.clone(),
        {
            let client = client.clone();
            move |nodes, i| heartbeat::update_status(client.clone(), nodes, i)
        },
    );
    let worker = pods::PodWorker::new(
        client.clone(),
        nodes.clone(),
        cfg.max_in_flight,
        stop.clone(),
    );
    let pods = async {
        let result = worker.run().await;
        // The heartbeats end with the pod worker, even if it failed.
        stop.cancel();
        result
    };
    let (_, _, pods) = tokio::join!(leases, statuses, pods);
    pods
}
