//! `skiff hollow-nodes`: flags, and the wiring of the hollow-node component
//! (a scale-test tool, like kubemark/KWOK; never the default node).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct HollowNodesArgs {
    /// (cluster) Kubeconfig of the cluster to register with [default: $KUBECONFIG]
    #[arg(long, env = "SKIFF_KUBECONFIG", help_heading = "Cluster")]
    pub kubeconfig: Option<PathBuf>,

    /// (nodes) How many hollow nodes to register
    #[arg(long, env = "SKIFF_HOLLOW_COUNT", help_heading = "Nodes")]
    pub count: usize,

    /// (nodes) Node names are <prefix>0, <prefix>1, ...
    #[arg(
        long,
        env = "SKIFF_HOLLOW_NAME_PREFIX",
        default_value = "hollow-node-",
        help_heading = "Nodes"
    )]
    pub name_prefix: String,

    /// (nodes) Spread nodes over this many zones (topology.kubernetes.io/zone=zone-<i mod zones>); 0: no zone label
    #[arg(
        long,
        env = "SKIFF_HOLLOW_ZONES",
        default_value_t = 0,
        help_heading = "Nodes"
    )]
    pub zones: usize,

    /// (nodes) Extra node label key=value (repeatable)
    #[arg(
        long = "node-label",
        env = "SKIFF_HOLLOW_NODE_LABEL",
        value_delimiter = ',',
        value_parser = hollow::parse_label,
        help_heading = "Nodes"
    )]
    pub node_labels: Vec<(String, String)>,

    /// (nodes) Register with this taint, key[=value]:Effect (repeatable)
    #[arg(
        long = "node-taint",
        env = "SKIFF_HOLLOW_NODE_TAINT",
        value_delimiter = ',',
        value_parser = hollow::parse_taint,
        help_heading = "Nodes"
    )]
    pub node_taints: Vec<hollow::Taint>,

    /// (capacity) CPU of each node
    #[arg(long, env = "SKIFF_HOLLOW_CPU", default_value = "4", value_parser = hollow::parse_quantity, help_heading = "Capacity")]
    pub cpu: String,

    /// (capacity) Memory of each node
    #[arg(long, env = "SKIFF_HOLLOW_MEMORY", default_value = "16Gi", value_parser = hollow::parse_quantity, help_heading = "Capacity")]
    pub memory: String,

    /// (capacity) Pods each node accepts
    #[arg(long, env = "SKIFF_HOLLOW_PODS", default_value = "110", value_parser = hollow::parse_quantity, help_heading = "Capacity")]
    pub pods: String,

    /// (capacity) Ephemeral storage of each node
    #[arg(
        long,
        env = "SKIFF_HOLLOW_EPHEMERAL_STORAGE",
        default_value = "100Gi",
        value_parser = hollow::parse_quantity,
        help_heading = "Capacity"
    )]
    pub ephemeral_storage: String,

    /// (heartbeat) Node lease duration in seconds; leases are renewed every quarter of it
    #[arg(
        long,
        env = "SKIFF_HOLLOW_NODE_LEASE_DURATION_SECONDS",
        default_value_t = 40,
        help_heading = "Heartbeat"
    )]
    pub node_lease_duration_seconds: u64,

    /// (heartbeat) How often each node's conditions are refreshed, in seconds
    #[arg(
        long,
        env = "SKIFF_HOLLOW_NODE_STATUS_UPDATE_FREQUENCY",
        default_value_t = 60,
        help_heading = "Heartbeat"
    )]
    pub node_status_update_frequency: u64,

    /// (api) API writes in flight at most, per kind (pods, lease renewals, status updates)
    #[arg(
        long,
        env = "SKIFF_HOLLOW_MAX_IN_FLIGHT",
        default_value_t = 48,
        help_heading = "API"
    )]
    pub max_in_flight: usize,
}

pub async fn run(args: HollowNodesArgs) -> anyhow::Result<()> {
    let client = client::from_kubeconfig_or_env(args.kubeconfig.as_deref()).await?;
    let cfg = hollow::HollowConfig {
        count: args.count,
        name_prefix: args.name_prefix,
        cpu: args.cpu,
        memory: args.memory,
        pods: args.pods,
        ephemeral_storage: args.ephemeral_storage,
        zones: args.zones,
        labels: args.node_labels.into_iter().collect::<BTreeMap<_, _>>(),
        taints: args.node_taints,
        lease_duration: Duration::from_secs(args.node_lease_duration_seconds.max(1)),
        status_update_frequency: Duration::from_secs(args.node_status_update_frequency.max(1)),
        max_in_flight: args.max_in_flight.max(1),
        ..Default::default()
    };
    let count = cfg.count;

    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(super::wait_for_signal(shutdown.clone()));
    let (registered_tx, mut registered) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(hollow::run_with_ready(
        client,
        cfg,
        registered_tx,
        shutdown.clone(),
    ));
    if registered.wait_for(|r| *r).await.is_ok() {
        eprintln!("{count} hollow nodes registered");
    }
    let result = task.await.context("hollow nodes task panicked")?;
    signals.abort();
    result?;
    tracing::info!("stopped");
    Ok(())
}
