//! Heartbeats: each node's Lease renewed every quarter of its duration (as
//! the kubelet does), and its Ready condition refreshed every
//! `status_update_frequency`. Both are spread over their period: with 1,000
//! nodes and a 10 s renewal, one lease is written every 10 ms, never 1,000
//! at once.

use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::node::{
    ensure_lease, lease_renewal, node_conditions, now, HollowNode, NODE_LEASE_NAMESPACE,
};
use crate::retry::{is_conflict, is_not_found};
use crate::{HollowConfig, FIELD_MANAGER};

/// Ticks are no closer than this; each tick serves several nodes instead.
const MIN_TICK: Duration = Duration::from_millis(10);

/// How many slots a period is cut into: one per node, unless that would
/// make ticks shorter than [`MIN_TICK`].
pub(crate) fn slot_count(nodes: usize, period: Duration) -> usize {
    let by_time = (period.as_nanos() / MIN_TICK.as_nanos()).max(1) as usize;
    nodes.clamp(1, by_time)
}

/// The nodes served in `slot` of `slots`: an even share, every node in
/// exactly one slot.
pub(crate) fn slot_range(slot: usize, slots: usize, nodes: usize) -> Range<usize> {
    (slot * nodes / slots)..((slot + 1) * nodes / slots)
}

/// Calls `beat(node)` for every node once per `period`, spread evenly, with
/// at most `max_in_flight` beats running and never two for the same node.
/// A beat that cannot start (too many still running) waits for the next
/// period: missing one of four lease renewals is harmless, a burst is not.
pub(crate) async fn spread<F, Fut>(
    what: &'static str,
    nodes: Arc<[HollowNode]>,
    period: Duration,
    max_in_flight: usize,
    shutdown: CancellationToken,
    beat: F,
) where
    F: Fn(Arc<[HollowNode]>, usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let count = nodes.len();
    if count == 0 || period.is_zero() {
        shutdown.cancelled().await;
        return;
    }
    let slots = slot_count(count, period);
    let tick = period / slots as u32;
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    let busy: Arc<[AtomicBool]> = (0..count).map(|_| AtomicBool::new(false)).collect();
    let mut tasks = JoinSet::new();
    let mut slot = 0;
    let mut skipped = 0u64;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        while tasks.try_join_next().is_some() {}
        for i in slot_range(slot, slots, count) {
            if tasks.len() >= max_in_flight || busy[i].swap(true, Ordering::AcqRel) {
                skipped += 1;
                if skipped.is_power_of_two() {
                    tracing::warn!(
                        skipped,
                        "{what}: the API is slower than the heartbeats; skipping some"
                    );
                }
                continue;
            }
            let fut = beat(nodes.clone(), i);
            let busy = busy.clone();
            tasks.spawn(async move {
                fut.await;
                busy[i].store(false, Ordering::Release);
            });
        }
        slot = (slot + 1) % slots;
    }
    tasks.shutdown().await;
}

/// Renews one node's lease with a merge patch; recreates it if it is gone
/// while the Node still exists.
pub(crate) async fn renew_lease(
    client: kube::Client,
    cfg: Arc<HollowConfig>,
    nodes: Arc<[HollowNode]>,
    i: usize,
    shutdown: CancellationToken,
) {
    let node = &nodes[i];
    let leases: Api<Lease> = Api::namespaced(client.clone(), NODE_LEASE_NAMESPACE);
    let patch = lease_renewal(&node.name, cfg.lease_duration_seconds(), now());
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match leases
        .patch(&node.name, &params, &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            node.gone.store(false, Ordering::Relaxed);
        }
        Err(e) if is_not_found(&e) => {
            let nodes_api: Api<Node> = Api::all(client.clone());
            match nodes_api.get_opt(&node.name).await {
                Ok(Some(n)) => {
                    let uid = n.metadata.uid.unwrap_or_else(|| node.uid.clone());
                    if let Err(e) = ensure_lease(&client, &cfg, &node.name, &uid, &shutdown).await {
                        tracing::warn!(node = %node.name, error = %e, "recreating the node lease failed");
                    }
                }
                Ok(None) => note_gone(node),
                Err(e) => tracing::debug!(node = %node.name, error = %e, "reading the node failed"),
            }
        }
        Err(e) => tracing::warn!(node = %node.name, error = %e, "renewing the node lease failed"),
    }
}

/// Refreshes one node's conditions (lastHeartbeatTime; a transition if
/// someone else changed them, e.g. the node lifecycle controller marking it
/// Unknown). Read, then a merge patch guarded by the resourceVersion read.
pub(crate) async fn update_status(client: kube::Client, nodes: Arc<[HollowNode]>, i: usize) {
    let node = &nodes[i];
    let api: Api<Node> = Api::all(client);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    for _ in 0..3 {
        let current = match api.get_opt(&node.name).await {
            Ok(Some(n)) => n,
            Ok(None) => return note_gone(node),
            Err(e) => {
                tracing::warn!(node = %node.name, error = %e, "reading the node for its status update failed");
                return;
            }
        };
        let prev = current
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let patch = json!({
            "metadata": { "resourceVersion": current.metadata.resource_version },
            "status": { "conditions": node_conditions(&prev, now()) },
        });
        match api
            .patch_status(&node.name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return,
            Err(e) if is_conflict(&e) => continue,
            Err(e) if is_not_found(&e) => return note_gone(node),
            Err(e) => {
                tracing::warn!(node = %node.name, error = %e, "updating the node status failed");
                return;
            }
        }
    }
}

fn note_gone(node: &HollowNode) {
    if !node.gone.swap(true, Ordering::Relaxed) {
        tracing::warn!(node = %node.name, "the node was deleted; it is not registered again until restart");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_spread_nodes_over_the_period() {
        let ten = Duration::from_secs(10);
        assert_eq!(slot_count(3, ten), 3);
        assert_eq!(slot_count(1000, ten), 1000, "one lease every 10 ms");
        assert_eq!(slot_count(10_000, ten), 1000, "ten leases every 10 ms");
        assert_eq!(slot_count(0, ten), 1);
        assert_eq!(slot_count(5, Duration::from_millis(1)), 1);
    }

    #[test]
    fn every_node_in_exactly_one_slot() {
        for (nodes, slots) in [(3, 3), (10, 3), (1000, 1000), (10_000, 1000), (7, 1)] {
            let mut seen = vec![0; nodes];
            let mut largest = 0;
            for s in 0..slots {
                let r = slot_range(s, slots, nodes);
                largest = largest.max(r.len());
                for i in r {
                    seen[i] += 1;
                }
            }
            assert!(
                seen.iter().all(|n| *n == 1),
                "{nodes} nodes in {slots} slots"
            );
            assert!(largest <= nodes.div_ceil(slots), "even shares");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn beats_are_spread_not_bursted() {
        use std::sync::Mutex;
        let nodes: Arc<[HollowNode]> = (0..100)
            .map(|i| HollowNode {
                index: i,
                name: format!("n{i}"),
                uid: String::new(),
                pod_cidr: crate::ipam::node_pod_cidr(i),
                internal_ip: crate::ipam::node_internal_ip(i),
                gone: AtomicBool::new(false),
            })
            .collect();
        let start = tokio::time::Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(spread(
            "test",
            nodes,
            Duration::from_secs(10),
            8,
            shutdown.clone(),
            {
                let log = log.clone();
                move |_, i| {
                    let log = log.clone();
                    async move {
                        log.lock().unwrap().push((i, start.elapsed()));
                    }
                }
            },
        ));
        tokio::time::sleep(Duration::from_millis(20_050)).await;
        shutdown.cancel();
        task.await.unwrap();
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 200, "every node twice in two periods");
        for (n, (i, at)) in log.iter().enumerate() {
            assert_eq!(*i, n % 100);
            assert_eq!(at.as_millis(), (n as u128 + 1) * 100, "beat {n}");
        }
    }
}
