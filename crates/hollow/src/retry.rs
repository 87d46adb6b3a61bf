//! Which API failures are worth another try, and how long to wait first.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The HTTP status of an API error, if the server answered.
pub(crate) fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    status_code(e) == Some(404)
}

pub(crate) fn is_conflict(e: &kube::Error) -> bool {
    status_code(e) == Some(409)
}

/// Overload (429), server-side failures (5xx) and broken connections pass;
/// anything the server rejected on its merits will be rejected again.
pub(crate) fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500 || s.code == 0,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// Exponential backoff from 100 ms, doubling up to 5 s.
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// Sleeps for the next delay; false if `shutdown` fired meanwhile.
    pub(crate) async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

/// Runs `op` until it succeeds or fails for a reason that is not transient;
/// transient failures are retried with backoff until `shutdown`, after
/// which the last error is returned.
pub(crate) async fn until_settled<T, F, Fut>(
    shutdown: &CancellationToken,
    what: &str,
    mut op: F,
) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut backoff = Backoff::new();
    loop {
        match op().await {
            Err(e) if is_transient(&e) => {
                tracing::debug!(error = %e, "{what}: retrying");
                if !backoff.wait(shutdown).await {
                    return Err(e);
                }
            }
            r => return r,
        }
    }
}
