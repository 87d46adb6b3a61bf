//! Subcommands: flags (clap) and the wiring of components for each.

pub mod agent;
pub mod controller_manager;
pub mod hollow_nodes;
pub mod images;
pub mod scheduler;
pub mod server;

use tokio_util::sync::CancellationToken;

/// Cancels `shutdown` on SIGTERM or SIGINT.
pub async fn wait_for_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
