//! `skiff controller-manager`: the controllers alone, against any cluster's
//! API (as kube-controller-manager runs beside an API server). `skiff server`
//! runs the same controllers in-process; several controller managers share
//! the work through the `kube-system/kube-controller-manager` Lease.

use std::path::PathBuf;

use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct ControllerManagerArgs {
    /// (cluster) Kubeconfig of the cluster to manage [default: $KUBECONFIG]
    #[arg(long, env = "SKIFF_KUBECONFIG", help_heading = "Cluster")]
    pub kubeconfig: Option<PathBuf>,

    #[command(flatten)]
    pub controllers: super::server::ControllerArgs,
}

pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let client = client::from_kubeconfig_or_env(args.kubeconfig.as_deref()).await?;
    let stop = CancellationToken::new();
    tokio::spawn(super::wait_for_signal(stop.clone()));
    controllers::run(client, args.controllers.config(), stop).await
}
