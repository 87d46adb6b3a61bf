//! The scheduler: a client of the API like kube-scheduler. It watches
//! pods and nodes, keeps unscheduled pods in a queue, picks a node for each
//! through filter and score plugins with Kubernetes' names, preempts
//! lower-priority pods when nothing fits, and binds through `pods/binding`.

pub mod cache;
pub mod cycle;
pub mod framework;
pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod resource;
mod scheduler;

use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct Config {
    /// Pods whose `spec.schedulerName` is this are ours; others are left alone.
    pub scheduler_name: String,
    /// The Lease `kube-system/<name>` that makes one scheduler of many act.
    pub lease_name: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scheduler_name: "default-scheduler".into(),
            lease_name: "kube-scheduler".into(),
        }
    }
}

/// Schedules while this process holds the scheduler lease, until `shutdown`.
pub async fn run(
    client: kube::Client,
    cfg: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let identity = client::identity();
    let election =
        client::leaderelection::LeaderElectionConfig::new(&cfg.lease_name, identity.clone());
    client::leaderelection::run(client.clone(), election, shutdown, move |leading| {
        let client = client.clone();
        let profile = plugins::default_profile(&cfg.scheduler_name);
        let identity = identity.clone();
        async move { scheduler::Scheduler::run(client, profile, &identity, leading).await }
    })
    .await;
    Ok(())
}
