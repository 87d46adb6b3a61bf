//! Node IPAM (`pkg/controller/nodeipam`, the range allocator): every node
//! gets its own pod range, cut in `--node-cidr-mask-size` pieces from
//! `--cluster-cidr` and written to `spec.podCIDR` / `spec.podCIDRs`.
//!
//! Ranges nodes already hold are marked used before anything is handed out
//! (a restart must not give a range twice); a deleted node's range is free
//! again. When the cluster range is full the node gets a `CIDRNotAvailable`
//! event and is retried later. IPv4 only.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use client::events::EventType;

use crate::informer::{Change, Informer};
use crate::workqueue::WorkQueue;
use crate::Context;

const WORKERS: usize = 4;
/// How soon a node that found the range full is tried again.
const RETRY_WHEN_FULL: Duration = Duration::from_secs(5);

/// The subnets of one cluster range (upstream's `CidrSet`): which are in use,
/// handed out round-robin from the one after the last given.
#[derive(Debug)]
pub struct CidrSet {
    base: u32,
    cluster_prefix: u8,
    node_prefix: u8,
    used: Vec<bool>,
    next: usize,
}

/// Why a cluster range and mask size cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("invalid cluster CIDR {0:?}: expected an IPv4 range like 10.42.0.0/16")]
    Invalid(String),
    #[error("node CIDR mask size {node} must be between the cluster prefix {cluster} and 30, and at most 16 bits longer")]
    MaskSize { cluster: u8, node: u8 },
}

impl CidrSet {
    pub fn new(cluster_cidr: &str, node_prefix: u8) -> Result<CidrSet, CidrError> {
        let (base, cluster_prefix) =
            parse_cidr(cluster_cidr).ok_or_else(|| CidrError::Invalid(cluster_cidr.into()))?;
        // Upstream also caps the subnet count (2^16) and wants room for pods.
        if node_prefix < cluster_prefix || node_prefix > 30 || node_prefix - cluster_prefix > 16 {
            return Err(CidrError::MaskSize {
                cluster: cluster_prefix,
                node: node_prefix,
            });
        }
        Ok(CidrSet {
            base,
            cluster_prefix,
            node_prefix,
            used: vec![false; 1 << (node_prefix - cluster_prefix)],
            next: 0,
        })
    }

    fn subnet(&self, i: usize) -> String {
        let addr = self.base + ((i as u32) << (32 - u32::from(self.node_prefix)));
        format!("{}/{}", Ipv4Addr::from(addr), self.node_prefix)
    }

    /// The index of `cidr` when it is one of our subnets exactly.
    fn index_of(&self, cidr: &str) -> Option<usize> {
        let (addr, prefix) = parse_cidr(cidr)?;
        if prefix != self.node_prefix || addr & mask(self.cluster_prefix) != self.base {
            return None;
        }
        Some(((addr - self.base) >> (32 - u32::from(self.node_prefix))) as usize)
    }

    /// The next free subnet, or `None` when all are taken.
    pub fn allocate_next(&mut self) -> Option<String> {
        let n = self.used.len();
        let i = (0..n)
            .map(|step| (self.next + step) % n)
            .find(|i| !self.used[*i])?;
        self.used[i] = true;
        self.next = (i + 1) % n;
        Some(self.subnet(i))
    }

    /// Marks `cidr` used (a node had it already). False when it is not one
    /// of this range's subnets.
    pub fn occupy(&mut self, cidr: &str) -> bool {
        match self.index_of(cidr) {
            Some(i) => {
                self.used[i] = true;
                true
            }
            None => false,
        }
    }

    pub fn release(&mut self, cidr: &str) {
        if let Some(i) = self.index_of(cidr) {
            self.used[i] = false;
        }
    }
}

/// `a.b.c.d/p` → (network address with host bits cleared, p).
fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (addr, prefix) = s.trim().split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    Some((u32::from(addr) & mask(prefix), prefix))
}

fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p)),
    }
}

fn node_pod_cidrs(node: &Node) -> Vec<String> {
    let spec = node.spec.as_ref();
    let list: Vec<String> = spec
        .and_then(|s| s.pod_cidrs.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !c.is_empty())
        .collect();
    if !list.is_empty() {
        return list;
    }
    spec.and_then(|s| s.pod_cidr.clone())
        .filter(|c| !c.is_empty())
        .into_iter()
        .collect()
}

/// The allocator's state: the set, and which range each node was given or
/// found holding (so a delete can free it).
struct Allocator {
    set: CidrSet,
    by_node: HashMap<String, String>,
}

impl Allocator {
    /// Records what `node` holds; true when it holds nothing yet.
    fn observe(&mut self, name: &str, node: &Node) -> bool {
        let cidrs = node_pod_cidrs(node);
        for c in &cidrs {
            if self.set.occupy(c) {
                self.by_node.insert(name.to_string(), c.clone());
            } else {
                tracing::debug!(node = name, cidr = %c, "node range outside the cluster CIDR");
            }
        }
        cidrs.is_empty()
    }

    fn forget(&mut self, name: &str) {
        if let Some(c) = self.by_node.remove(name) {
            self.set.release(&c);
        }
    }
}

pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let set = CidrSet::new(&ctx.config.cluster_cidr, ctx.config.node_cidr_mask_size)?;
    let nodes: Informer<Node> = ctx.informers.get();
    let queue = WorkQueue::new("nodeipam");
    nodes.on_change({
        let queue = queue.clone();
        move |c: &Change<Node>| {
            queue.add(crate::informer::key_of(c.object().as_ref()));
        }
    });
    tokio::select! {
        _ = nodes.wait_synced() => {}
        _ = shutdown.cancelled() => return Ok(()),
    }
    // Every range in use is known before the first one is handed out.
    let mut allocator = Allocator {
        set,
        by_node: HashMap::new(),
    };
    for node in nodes.list() {
        allocator.observe(&crate::informer::key_of(node.as_ref()), &node);
    }
    let allocator = Arc::new(Mutex::new(allocator));
    let recorder = ctx.recorder("node-ipam-controller");
    queue
        .run(WORKERS, shutdown, move |name| {
            let (nodes, allocator, client, recorder) = (
                nodes.clone(),
                allocator.clone(),
                ctx.client.clone(),
                recorder.clone(),
            );
            async move { sync_node(&nodes, &allocator, &client, &recorder, &name).await }
        })
        .await;
    Ok(())
}

/// Gives `name` a range if it has none; frees its range once it is gone.
async fn sync_node(
    nodes: &Informer<Node>,
    allocator: &Mutex<Allocator>,
    client: &kube::Client,
    recorder: &client::events::Recorder,
    name: &str,
) -> Result<Option<Duration>, kube::Error> {
    let Some(node) = nodes.get(name) else {
        allocator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(name);
        return Ok(None);
    };
    let cidr = {
        let mut a = allocator.lock().unwrap_or_else(|e| e.into_inner());
        if !a.observe(name, &node) {
            return Ok(None);
        }
        // Given earlier, but the patch is not in the cache yet.
        match a.by_node.get(name).cloned() {
            Some(c) => Some(c),
            None => a.set.allocate_next().inspect(|c| {
                a.by_node.insert(name.to_string(), c.clone());
            }),
        }
    };
    let Some(cidr) = cidr else {
        recorder.record(
            client::events::reference(node.as_ref()),
            EventType::Normal,
            "CIDRNotAvailable",
            "CIDRAssignmentFailed",
            format!("Node {name} status is now: CIDRNotAvailable"),
        );
        tracing::warn!(node = name, "no pod CIDR left in the cluster range");
        return Ok(Some(RETRY_WHEN_FULL));
    };
    let api: Api<Node> = Api::all(client.clone());
    let patch = json!({ "spec": { "podCIDR": cidr, "podCIDRs": [cidr] } });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::info!(node = name, cidr = %cidr, "pod CIDR assigned");
            Ok(None)
        }
        Err(e) => {
            allocator
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(name);
            if crate::pod_control::is_not_found(&e) {
                return Ok(None);
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_distinct_subnets_in_order() {
        let mut set = CidrSet::new("10.42.0.0/16", 24).unwrap();
        assert_eq!(set.allocate_next().as_deref(), Some("10.42.0.0/24"));
        assert_eq!(set.allocate_next().as_deref(), Some("10.42.1.0/24"));
        set.release("10.42.0.0/24");
        // Round-robin: a freed range comes back only after the others.
        assert_eq!(set.allocate_next().as_deref(), Some("10.42.2.0/24"));
    }

    #[test]
    fn occupied_ranges_are_skipped_and_foreign_ones_refused() {
        let mut set = CidrSet::new("10.42.0.0/16", 24).unwrap();
        assert!(set.occupy("10.42.0.0/24"));
        assert!(set.occupy("10.42.1.0/24"));
        assert!(!set.occupy("10.244.0.0/24"), "outside the range");
        assert!(!set.occupy("10.42.2.0/25"), "other mask size");
        assert!(!set.occupy("garbage"));
        assert_eq!(set.allocate_next().as_deref(), Some("10.42.2.0/24"));
    }

    #[test]
    fn runs_out_then_reuses_released() {
        let mut set = CidrSet::new("10.0.0.0/22", 24).unwrap();
        let all: Vec<_> = std::iter::from_fn(|| set.allocate_next()).collect();
        assert_eq!(
            all,
            ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]
        );
        assert_eq!(set.allocate_next(), None);
        set.release("10.0.2.0/24");
        assert_eq!(set.allocate_next().as_deref(), Some("10.0.2.0/24"));
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(matches!(
            CidrSet::new("10.42.0.0", 24),
            Err(CidrError::Invalid(_))
        ));
        assert!(matches!(
            CidrSet::new("fd00::/64", 80),
            Err(CidrError::Invalid(_))
        ));
        assert!(matches!(
            CidrSet::new("10.42.0.0/16", 8),
            Err(CidrError::MaskSize { .. })
        ));
        assert!(matches!(
            CidrSet::new("10.0.0.0/8", 26),
            Err(CidrError::MaskSize { .. })
        ));
        // Host bits in the cluster CIDR are ignored, as upstream does.
        let mut set = CidrSet::new("10.42.7.9/16", 24).unwrap();
        assert_eq!(set.allocate_next().as_deref(), Some("10.42.0.0/24"));
    }

    #[test]
    fn allocator_frees_a_deleted_nodes_range() {
        let mut a = Allocator {
            set: CidrSet::new("10.0.0.0/23", 24).unwrap(),
            by_node: HashMap::new(),
        };
        let node = Node {
            spec: Some(k8s_openapi::api::core::v1::NodeSpec {
                pod_cidr: Some("10.0.1.0/24".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(!a.observe("n1", &node), "already has one");
        assert!(a.observe("n2", &Node::default()));
        assert_eq!(a.set.allocate_next().as_deref(), Some("10.0.0.0/24"));
        assert_eq!(a.set.allocate_next(), None);
        a.forget("n1");
        assert_eq!(a.set.allocate_next().as_deref(), Some("10.0.1.0/24"));
    }
}
