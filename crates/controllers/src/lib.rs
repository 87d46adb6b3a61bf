//! The controller manager: one module per controller, each a level-triggered
//! client of the API (informer → work queue → reconcile → write), all
//! running under one Lease (`kube-system/kube-controller-manager`) so that
//! with several servers only one acts. Controllers share one cache per
//! resource type ([`informer::Informers`]).

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslicemirroring;
pub mod expectations;
pub mod garbagecollector;
pub mod history;
pub use client::informer;
pub mod job;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod pod_control;
pub mod podgc;
pub mod replicaset;
pub mod serviceaccount;
pub mod servicelb;
pub mod statefulset;
pub mod tainteviction;
pub mod ttlafterfinished;
pub mod workqueue;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The controller manager's settings (kube-controller-manager's flags).
#[derive(Clone, Debug)]
pub struct Config {
    /// `--cluster-cidr`: the range node pod CIDRs are cut from.
    pub cluster_cidr: String,
    /// `--node-cidr-mask-size`: the prefix length of each node's range.
    pub node_cidr_mask_size: u8,
    /// `--node-monitor-grace-period`: how long a node may go without
    /// renewing its Lease before it is marked `Ready=Unknown`.
    pub node_monitor_grace_period: Duration,
    /// `--terminated-pod-gc-threshold`: finished pods kept at most (0: all).
    pub terminated_pod_gc_threshold: usize,
    /// Whether the built-in service load balancer runs (`--disable servicelb`
    /// turns it off; LoadBalancer Services then stay pending).
    pub servicelb: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cluster_cidr: "10.42.0.0/16".into(),
            node_cidr_mask_size: 24,
            node_monitor_grace_period: Duration::from_secs(40),
            terminated_pod_gc_threshold: 12500,
            servicelb: true,
        }
    }
}

/// What every controller gets: the API client, the shared informers and the
/// settings. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub informers: informer::Informers,
    pub config: Arc<Config>,
}

impl Context {
    pub fn new(client: kube::Client, config: Config) -> Context {
        Context {
            informers: informer::Informers::new(client.clone()),
            client,
            config: Arc::new(config),
        }
    }

    /// An event recorder reporting as `component` (e.g. `replicaset-controller`).
    pub fn recorder(&self, component: &str) -> client::events::Recorder {
        client::events::Recorder::new(self.client.clone(), component, "")
    }
}

/// Runs every controller while this process holds the controller-manager
/// lease, until `shutdown`.
pub async fn run(
    client: kube::Client,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let cfg = client::leaderelection::LeaderElectionConfig::new(
        "kube-controller-manager",
        client::identity(),
    );
    client::leaderelection::run(client.clone(), cfg, shutdown, move |leading| {
        let ctx = Context::new(client.clone(), config.clone());
        async move { run_all(ctx, leading).await }
    })
    .await;
    Ok(())
}

/// Runs each controller until leadership is lost; they stop together.
async fn run_all(ctx: Context, leading: CancellationToken) {
    let mut controllers = tokio::task::JoinSet::new();
    macro_rules! start {
        ($name:literal, $run:expr) => {
            controllers.spawn(supervise($name, leading.clone(), $run));
        };
    }
    start!("disruption", disruption::run(ctx.clone(), leading.clone()));
    start!("replicaset", replicaset::run(ctx.clone(), leading.clone()));
    start!(
        "replicationcontroller",
        replicaset::run_rc(ctx.clone(), leading.clone())
    );
    start!("deployment", deployment::run(ctx.clone(), leading.clone()));
    start!(
        "statefulset",
        statefulset::run(ctx.clone(), leading.clone())
    );
    start!("daemonset", daemonset::run(ctx.clone(), leading.clone()));
    start!("job", job::run(ctx.clone(), leading.clone()));
    start!("cronjob", cronjob::run(ctx.clone(), leading.clone()));
    start!(
        "ttl-after-finished",
        ttlafterfinished::run(ctx.clone(), leading.clone())
    );
    start!(
        "garbagecollector",
        garbagecollector::run(ctx.clone(), leading.clone())
    );
    start!("namespace", namespace::run(ctx.clone(), leading.clone()));
    start!(
        "serviceaccount",
        serviceaccount::run(ctx.clone(), leading.clone())
    );
    start!("nodeipam", nodeipam::run(ctx.clone(), leading.clone()));
    start!(
        "nodelifecycle",
        nodelifecycle::run(ctx.clone(), leading.clone())
    );
    start!(
        "tainteviction",
        tainteviction::run(ctx.clone(), leading.clone())
    );
    start!("podgc", podgc::run(ctx.clone(), leading.clone()));
    start!("endpoint", endpoints::run(ctx.clone(), leading.clone()));
    start!(
        "endpointslice",
        endpointslice::run(ctx.clone(), leading.clone())
    );
    start!(
        "endpointslicemirroring",
        endpointslicemirroring::run(ctx.clone(), leading.clone())
    );
    if ctx.config.servicelb {
        start!("servicelb", servicelb::run(ctx.clone(), leading.clone()));
    }
    // Informers the controllers asked for start now; later ones start at once.
    ctx.informers.start(leading.clone());
    while controllers.join_next().await.is_some() {}
}

/// Runs one controller to completion, logging how it ended.
async fn supervise<E: std::fmt::Display>(
    name: &'static str,
    leading: CancellationToken,
    controller: impl std::future::Future<Output = Result<(), E>>,
) {
    match controller.await {
        Ok(()) if leading.is_cancelled() => tracing::debug!(controller = name, "stopped"),
        Ok(()) => tracing::warn!(controller = name, "stopped while still leading"),
        Err(e) => tracing::error!(controller = name, error = %e, "failed"),
    }
}
