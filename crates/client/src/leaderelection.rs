//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's
//! rules: a holder renews every `retry_period`; others take over once the
//! lease has not changed for `lease_duration` *as observed on their own
//! clock* (never trusting another machine's `renewTime`); every write is
//! guarded by the Lease's resourceVersion, so two candidates can never both
//! win; a leader that cannot renew within `renew_deadline` stops leading.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::Api;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a lease stays valid after its last change (15 s upstream).
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it gives up (10 s).
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew (2 s).
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    /// Upstream's defaults for `kube-system/<name>`.
    pub fn new(name: &str, identity: String) -> Self {
        LeaderElectionConfig {
            namespace: "kube-system".into(),
            name: name.into(),
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What this candidate last saw of the lease, and when (its own clock).
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    resource_version: Option<String>,
    at: Instant,
}

/// Runs `lead` whenever this process holds the lease, until `shutdown`.
/// `lead` gets a token that is cancelled when leadership is lost; it is
/// started again if the lease is won back later. On shutdown the lease is
/// released so another candidate takes over at once.
pub async fn run<F, Fut>(
    client: kube::Client,
    cfg: LeaderElectionConfig,
    shutdown: CancellationToken,
    lead: F,
) where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let mut observed: Option<Observed> = None;
    loop {
        // Acquire.
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            match try_acquire_or_renew(&api, &cfg, &mut observed).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(lease = %cfg.name, error = %e, "leader election: acquiring failed")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(cfg.retry_period) => {}
            }
        }
        tracing::info!(lease = %format!("{}/{}", cfg.namespace, cfg.name), identity = %cfg.identity, "became leader");
        let leading = shutdown.child_token();
        let work = tokio::spawn(lead(leading.clone()));
        // Renew until the deadline passes without a successful renewal.
        let mut last_renew = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    leading.cancel();
                    let _ = work.await;
                    release(&api, &cfg).await;
                    return;
                }
                _ = tokio::time::sleep(cfg.retry_period) => {}
            }
            match try_acquire_or_renew(&api, &cfg, &mut observed).await {
                Ok(true) => last_renew = Instant::now(),
                Ok(false) => {
                    tracing::warn!(lease = %cfg.name, "leader election: another holder took the lease");
                    break;
                }
                Err(e) => {
                    tracing::debug!(lease = %cfg.name, error = %e, "leader election: renewing failed")
                }
            }
            if last_renew.elapsed() > cfg.renew_deadline {
                tracing::warn!(lease = %cfg.name, "leader election: could not renew within the deadline");
                break;
            }
        }
        leading.cancel();
        let _ = work.await;
        tracing::info!(lease = %cfg.name, identity = %cfg.identity, "stopped leading");
    }
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

async fn try_acquire_or_renew(
    api: &Api<Lease>,
    cfg: &LeaderElectionConfig,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let duration_secs = cfg.lease_duration.as_secs().max(1) as i32;
    let Some(mut lease) = api.get_opt(&cfg.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(cfg.name.clone()),
                namespace: Some(cfg.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(cfg.identity.clone()),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(l) => {
                remember(observed, &l);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let changed = match observed {
        Some(o) => {
            o.holder != holder
                || o.renew_time != spec.renew_time
                || o.resource_version != lease.metadata.resource_version
        }
        None => true,
    };
    if changed {
        remember(observed, &lease);
    }
    let am_holder = holder.as_deref() == Some(cfg.identity.as_str());
    let held_duration =
        Duration::from_secs(spec.lease_duration_seconds.unwrap_or(duration_secs).max(1) as u64);
    let expired = observed
        .as_ref()
        .is_none_or(|o| o.at.elapsed() > held_duration);
    if holder.is_some() && !am_holder && !expired {
        return Ok(false);
    }
    let mut new_spec = spec.clone();
    if !am_holder {
        new_spec.acquire_time = Some(now());
        new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    new_spec.holder_identity = Some(cfg.identity.clone());
    new_spec.lease_duration_seconds = Some(duration_secs);
    new_spec.renew_time = Some(now());
    lease.spec = Some(new_spec);
    match api.replace(&cfg.name, &PostParams::default(), &lease).await {
        Ok(l) => {
            remember(observed, &l);
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

fn remember(observed: &mut Option<Observed>, lease: &Lease) {
    let spec = lease.spec.clone().unwrap_or_default();
    *observed = Some(Observed {
        holder: spec.holder_identity.filter(|h| !h.is_empty()),
        renew_time: spec.renew_time,
        resource_version: lease.metadata.resource_version.clone(),
        at: Instant::now(),
    });
}

/// Gives the lease up (empty holder, 1 s duration) so a waiting candidate
/// takes over without waiting out the whole duration, as client-go's
/// ReleaseOnCancel does.
async fn release(api: &Api<Lease>, cfg: &LeaderElectionConfig) {
    let Ok(Some(mut lease)) = api.get_opt(&cfg.name).await else {
        return;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    if spec.holder_identity.as_deref() != Some(cfg.identity.as_str()) {
        return;
    }
    lease.spec = Some(LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        renew_time: Some(now()),
        ..spec
    });
    if let Err(e) = api.replace(&cfg.name, &PostParams::default(), &lease).await {
        tracing::debug!(lease = %cfg.name, error = %e, "leader election: releasing failed");
    }
}
