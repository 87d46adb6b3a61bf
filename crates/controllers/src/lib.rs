//! The controller manager: one module per controller, each a level-triggered
//! client of the API (watch → reconcile → write), all running under one
//! Lease (`kube-system/kube-controller-manager`) so that with several
//! servers only one acts.

pub mod disruption;

use tokio_util::sync::CancellationToken;

/// Runs every controller while this process holds the controller-manager
/// lease, until `shutdown`.
pub async fn run(client: kube::Client, shutdown: CancellationToken) -> anyhow::Result<()> {
    let cfg = client::leaderelection::LeaderElectionConfig::new(
        "kube-controller-manager",
        client::identity(),
    );
    client::leaderelection::run(client.clone(), cfg, shutdown, move |leading| {
        let client = client.clone();
        async move {
            // Each controller runs until leadership is lost; they stop together.
            let mut controllers = tokio::task::JoinSet::new();
            controllers.spawn(supervise(
                "disruption",
                leading.clone(),
                disruption::run(client.clone(), leading.clone()),
            ));
            while controllers.join_next().await.is_some() {}
        }
    })
    .await;
    Ok(())
}

/// Runs one controller to completion, logging how it ended.
async fn supervise<E: std::error::Error>(
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
