//! `skiff scheduler`: the scheduler alone, against any cluster's API (as
//! kube-scheduler runs beside an API server). `skiff server` runs the same
//! component in-process; several schedulers share the work through the
//! `kube-system/kube-scheduler` Lease, one acting at a time.

use std::path::PathBuf;

use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct SchedulerArgs {
    /// (cluster) Kubeconfig of the cluster to schedule for [default: $KUBECONFIG]
    #[arg(long, env = "SKIFF_KUBECONFIG", help_heading = "Cluster")]
    pub kubeconfig: Option<PathBuf>,

    /// (scheduling) Schedule the pods whose spec.schedulerName is this
    #[arg(
        long,
        env = "SKIFF_SCHEDULER_NAME",
        default_value = "default-scheduler",
        help_heading = "Scheduling"
    )]
    pub scheduler_name: String,

    /// (scheduling) Leader election Lease in kube-system
    #[arg(
        long,
        env = "SKIFF_LEADER_ELECT_RESOURCE_NAME",
        default_value = "kube-scheduler",
        help_heading = "Scheduling"
    )]
    pub leader_elect_resource_name: String,
}

pub async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let client = client::from_kubeconfig_or_env(args.kubeconfig.as_deref()).await?;
    let stop = CancellationToken::new();
    tokio::spawn(super::wait_for_signal(stop.clone()));
    let cfg = scheduler::Config {
        scheduler_name: args.scheduler_name,
        lease_name: args.leader_elect_resource_name,
    };
    scheduler::run(client, cfg, stop).await
}
