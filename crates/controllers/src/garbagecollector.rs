//! GarbageCollector (`pkg/controller/garbagecollector`): deletes objects
//! whose owners are gone, and carries out foreground and orphan deletion.
//!
//! It keeps a graph of every object of every listable resource (found by
//! discovery, refreshed every 30 s so custom resources join): uid → kind,
//! namespace, name, owner references and finalizers, plus owner uid →
//! dependents. Watches only feed the graph and queue uids; one reconcile
//! per uid decides:
//! - an object whose owners are all gone (checked with a live GET before
//!   acting) is deleted, in background — or foreground when an owner is
//!   itself waiting on its dependents; with some owners left, only the
//!   dangling references are removed;
//! - an owner being deleted with `foregroundDeletion` gets its dependents
//!   deleted (in foreground) and loses the finalizer once no dependent with
//!   `blockOwnerDeletion` remains;
//! - an owner being deleted with `orphan` has its reference removed from
//!   every dependent, then loses the finalizer.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::discovery::{verbs, Discovery, Scope};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::pod_control;
use crate::workqueue::WorkQueue;
use crate::Context;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";
const REDISCOVERY: Duration = Duration::from_secs(30);
const WORKERS: usize = 4;

/// Resources never collected (upstream's ignored resources).
const IGNORED: [(&str, &str); 2] = [("", "events"), ("events.k8s.io", "events")];

/// One object in the graph.
#[derive(Clone, Debug)]
struct Node {
    resource: Arc<Resource>,
    namespace: String,
    name: String,
    resource_version: String,
    owners: Vec<OwnerReference>,
    finalizers: Vec<String>,
    deleting: bool,
}

/// A resource type: how to reach its objects.
#[derive(Debug)]
struct Resource {
    ar: ApiResource,
    namespaced: bool,
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    /// Owner uid → dependent uids.
    dependents: HashMap<String, BTreeSet<String>>,
    /// `apiVersion/kind` → resource, from discovery.
    kinds: HashMap<String, Arc<Resource>>,
}

impl Graph {
    fn insert(&mut self, uid: String, node: Node) -> Option<Node> {
        let old = self.nodes.insert(uid.clone(), node.clone());
        if let Some(o) = &old {
            for r in &o.owners {
                if let Some(d) = self.dependents.get_mut(&r.uid) {
                    d.remove(&uid);
                    if d.is_empty() {
                        self.dependents.remove(&r.uid);
                    }
                }
            }
        }
        for r in &node.owners {
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(uid.clone());
        }
        old
    }

    fn remove(&mut self, uid: &str) -> Option<Node> {
        let old = self.nodes.remove(uid)?;
        for r in &old.owners {
            if let Some(d) = self.dependents.get_mut(&r.uid) {
                d.remove(uid);
                if d.is_empty() {
                    self.dependents.remove(&r.uid);
                }
            }
        }
        Some(old)
    }

    fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents
            .get(uid)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }
}

struct Collector {
    client: kube::Client,
    graph: Mutex<Graph>,
    queue: WorkQueue,
}

/// Runs the garbage collector until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let gc = Arc::new(Collector {
        client: ctx.client.clone(),
        graph: Mutex::new(Graph::default()),
        queue: WorkQueue::new("garbagecollector"),
    });
    let workers = {
        let gc2 = gc.clone();
        tokio::spawn(gc.queue.clone().run(WORKERS, shutdown.clone(), move |uid| {
            let gc = gc2.clone();
            async move { gc.attempt(&uid).await }
        }))
    };
    // Resource key → its watch task.
    let mut watches: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        match Discovery::new(ctx.client.clone()).run().await {
            Ok(discovery) => gc.sync_monitors(&discovery, &mut watches, &shutdown),
            Err(e) => tracing::info!(error = %e, "garbage collector discovery failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(REDISCOVERY) => {}
        }
    }
    for (_, w) in watches {
        w.abort();
    }
    let _ = workers.await;
    Ok(())
}

impl Collector {
    fn graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a watch for every new deletable resource and stops those
    /// whose resource went away.
    fn sync_monitors(
        self: &Arc<Self>,
        discovery: &Discovery,
        watches: &mut HashMap<String, tokio::task::JoinHandle<()>>,
        shutdown: &CancellationToken,
    ) {
        let mut seen = BTreeSet::new();
        let mut kinds = HashMap::new();
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                let resource = Arc::new(Resource {
                    namespaced: matches!(caps.scope, Scope::Namespaced),
                    ar: ar.clone(),
                });
                // Owner references may name any served version.
                for v in group.versions() {
                    kinds.insert(
                        format!("{}/{}", group_version(&ar.group, v), ar.kind),
                        resource.clone(),
                    );
                }
                let ignored = IGNORED.contains(&(ar.group.as_str(), ar.plural.as_str()));
                let usable = [verbs::LIST, verbs::WATCH, verbs::DELETE]
                    .iter()
                    .all(|v| caps.supports_operation(v));
                if ignored || !usable {
                    continue;
                }
                let key = format!("{}/{}", ar.group, ar.plural);
                seen.insert(key.clone());
                if let std::collections::hash_map::Entry::Vacant(e) = watches.entry(key) {
                    let stop = shutdown.child_token();
                    e.insert(tokio::spawn(self.clone().monitor(resource, stop)));
                }
            }
        }
        self.graph().kinds = kinds;
        watches.retain(|key, task| {
            let keep = seen.contains(key);
            if !keep {
                task.abort();
            }
            keep
        });
    }

    /// Feeds one resource's objects into the graph.
    async fn monitor(self: Arc<Self>, resource: Arc<Resource>, shutdown: CancellationToken) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource.ar);
        let config = watcher::Config::default().timeout(50).any_semantic();
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        let mut relisted: Option<BTreeSet<String>> = None;
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = events.next() => e,
            };
            match event {
                None => return,
                Some(Err(e)) => {
                    tracing::debug!(resource = %resource.ar.plural, error = %e, "garbage collector watch failed")
                }
                Some(Ok(Event::Init)) => relisted = Some(BTreeSet::new()),
                Some(Ok(Event::InitApply(obj))) => {
                    if let Some(seen) = relisted.as_mut() {
                        seen.insert(obj.uid().unwrap_or_default());
                    }
                    self.observe(&resource, obj);
                }
                Some(Ok(Event::InitDone)) => {
                    if let Some(seen) = relisted.take() {
                        let gone: Vec<String> = self
                            .graph()
                            .nodes
                            .iter()
                            .filter(|(uid, n)| {
                                Arc::ptr_eq(&n.resource, &resource) && !seen.contains(*uid)
                            })
                            .map(|(uid, _)| uid.clone())
                            .collect();
                        for uid in gone {
                            self.forget(&uid);
                        }
                    }
                }
                Some(Ok(Event::Apply(obj))) => self.observe(&resource, obj),
                Some(Ok(Event::Delete(obj))) => self.forget(&obj.uid().unwrap_or_default()),
            }
        }
    }

    /// An object was added or changed: record it, and queue it when there
    /// may be something to do.
    fn observe(&self, resource: &Arc<Resource>, obj: DynamicObject) {
        let Some(uid) = obj.uid() else { return };
        let node = Node {
            resource: resource.clone(),
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            resource_version: obj.resource_version().unwrap_or_default(),
            owners: obj.metadata.owner_references.clone().unwrap_or_default(),
            finalizers: obj.metadata.finalizers.clone().unwrap_or_default(),
            deleting: obj.metadata.deletion_timestamp.is_some(),
        };
        let mut graph = self.graph();
        let waiting = node.deleting
            && (node
                .finalizers
                .iter()
                .any(|f| f == FOREGROUND || f == ORPHAN));
        let owner_trouble = node.owners.iter().any(|r| match graph.nodes.get(&r.uid) {
            None => true,
            Some(o) => o.deleting,
        });
        let dependents = if waiting {
            graph.dependents_of(&uid)
        } else {
            Vec::new()
        };
        graph.insert(uid.clone(), node);
        drop(graph);
        if waiting || owner_trouble {
            self.queue.add(uid);
        }
        for d in dependents {
            self.queue.add(d);
        }
    }

    /// An object is gone: its dependents may now be orphans, and an owner
    /// waiting in foreground may be done.
    fn forget(&self, uid: &str) {
        let mut graph = self.graph();
        let Some(node) = graph.remove(uid) else {
            return;
        };
        let dependents = graph.dependents_of(uid);
        let owners: Vec<String> = node
            .owners
            .iter()
            .filter(|r| graph.nodes.get(&r.uid).is_some_and(|o| o.deleting))
            .map(|r| r.uid.clone())
            .collect();
        drop(graph);
        for d in dependents.into_iter().chain(owners) {
            self.queue.add(d);
        }
    }

    fn api(&self, node: &Node) -> Api<DynamicObject> {
        if node.resource.namespaced {
            Api::namespaced_with(self.client.clone(), &node.namespace, &node.resource.ar)
        } else {
            Api::all_with(self.client.clone(), &node.resource.ar)
        }
    }

    /// One uid's reconcile (`attemptToDeleteItem`, `processDeletingDependentsItem`,
    /// `attemptToOrphan`).
    async fn attempt(&self, uid: &str) -> anyhow::Result<Option<Duration>> {
        let Some(node) = self.graph().nodes.get(uid).cloned() else {
            return Ok(None);
        };
        if node.deleting {
            if node.finalizers.iter().any(|f| f == ORPHAN) {
                self.orphan_dependents(uid, &node).await?;
                return Ok(None);
            }
            if node.finalizers.iter().any(|f| f == FOREGROUND) {
                return self.delete_dependents(uid, &node).await;
            }
            return Ok(None);
        }
        if node.owners.is_empty() {
            return Ok(None);
        }
        // Decide on the object as it is now, not as the graph last saw it:
        // its owner references may have just been removed (an owner deleted
        // with `orphan`), and then nothing may delete it (as upstream's
        // attemptToDeleteItem reads the latest object).
        let mut node = node;
        match self.api(&node).get_opt(&node.name).await? {
            Some(live) if live.uid().as_deref() == Some(uid) => {
                node.owners = live.owner_references().to_vec();
                if node.owners.is_empty() {
                    return Ok(None);
                }
            }
            _ => return Ok(None),
        }
        let mut states = Vec::new();
        for r in &node.owners {
            states.push((r.uid.clone(), self.owner_state(&node, r).await?));
        }
        let has_dependents = !self.graph().dependents_of(uid).is_empty();
        let policy = match decide(&states, has_dependents, &node.finalizers) {
            Decision::Keep => return Ok(None),
            Decision::DropReferences(gone) => {
                self.patch_owners(&node, |r| !gone.contains(&r.uid)).await?;
                return Ok(None);
            }
            Decision::Delete(policy) => policy,
        };
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            ..pod_control::delete_params_for_uid(Some(uid.to_string()))
        };
        match self.api(&node).delete(&node.name, &dp).await {
            Ok(_) => Ok(None),
            Err(e) if pod_control::is_not_found(&e) || pod_control::is_conflict(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an owner exists, is going away in foreground, or is gone;
    /// absence in the graph is confirmed with a live GET (`isDangling`).
    async fn owner_state(&self, node: &Node, r: &OwnerReference) -> anyhow::Result<OwnerState> {
        let resource = {
            let graph = self.graph();
            if let Some(o) = graph.nodes.get(&r.uid) {
                return Ok(
                    if o.deleting && o.finalizers.iter().any(|f| f == FOREGROUND) {
                        OwnerState::WaitingForDependents
                    } else {
                        OwnerState::Present
                    },
                );
            }
            graph
                .kinds
                .get(&format!("{}/{}", r.api_version, r.kind))
                .cloned()
        };
        let Some(resource) = resource else {
            anyhow::bail!("no resource serves owner kind {} {}", r.api_version, r.kind);
        };
        let api: Api<DynamicObject> = if resource.namespaced {
            Api::namespaced_with(self.client.clone(), &node.namespace, &resource.ar)
        } else {
            Api::all_with(self.client.clone(), &resource.ar)
        };
        Ok(match api.get_opt(&r.name).await? {
            Some(o) if o.uid().as_deref() == Some(r.uid.as_str()) => {
                let foreground = o.finalizers().iter().any(|f| f == FOREGROUND);
                if o.metadata.deletion_timestamp.is_some() && foreground {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Present
                }
            }
            _ => OwnerState::Gone,
        })
    }

    /// Foreground: delete the dependents (in foreground themselves), and
    /// drop the finalizer once no blocking dependent remains.
    async fn delete_dependents(&self, uid: &str, owner: &Node) -> anyhow::Result<Option<Duration>> {
        let dependents: Vec<(String, Node)> = {
            let graph = self.graph();
            graph
                .dependents_of(uid)
                .into_iter()
                .filter_map(|d| graph.nodes.get(&d).cloned().map(|n| (d, n)))
                .collect()
        };
        let blocking = dependents.iter().any(|(_, n)| {
            n.owners
                .iter()
                .any(|r| r.uid == uid && r.block_owner_deletion == Some(true))
        });
        if !blocking {
            self.remove_finalizer(owner, FOREGROUND).await?;
            // Non-blocking dependents left are collected in background.
            for (d, _) in dependents {
                self.queue.add(d);
            }
            return Ok(None);
        }
        for (d, n) in dependents.iter().filter(|(_, n)| !n.deleting) {
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Foreground),
                ..pod_control::delete_params_for_uid(Some(d.clone()))
            };
            match self.api(n).delete(&n.name, &dp).await {
                Ok(_) => {}
                Err(e) if pod_control::is_not_found(&e) || pod_control::is_conflict(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Dependents' deletions re-queue this owner; look again anyway.
        Ok(Some(Duration::from_secs(5)))
    }

    /// Orphan: remove this owner from every dependent, then the finalizer.
    async fn orphan_dependents(&self, uid: &str, owner: &Node) -> anyhow::Result<()> {
        let dependents: Vec<Node> = {
            let graph = self.graph();
            graph
                .dependents_of(uid)
                .into_iter()
                .filter_map(|d| graph.nodes.get(&d).cloned())
                .collect()
        };
        for n in dependents {
            self.patch_owners(&n, |r| r.uid != uid).await?;
        }
        self.remove_finalizer(owner, ORPHAN).await
    }

    /// Keeps only the owner references `keep` accepts, guarded by the
    /// resourceVersion the decision was made on.
    async fn patch_owners(
        &self,
        node: &Node,
        keep: impl Fn(&OwnerReference) -> bool,
    ) -> anyhow::Result<()> {
        let owners: Vec<&OwnerReference> = node.owners.iter().filter(|r| keep(r)).collect();
        let patch = json!({"metadata": {"ownerReferences": owners, "resourceVersion": node.resource_version}});
        match self
            .api(node)
            .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if pod_control::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove_finalizer(&self, node: &Node, finalizer: &str) -> anyhow::Result<()> {
        let rest: Vec<&String> = node.finalizers.iter().filter(|f| *f != finalizer).collect();
        let patch =
            json!({"metadata": {"finalizers": rest, "resourceVersion": node.resource_version}});
        match self
            .api(node)
            .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if pod_control::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum OwnerState {
    Present,
    WaitingForDependents,
    Gone,
}

/// What to do with a dependent, given the state of each owner (by uid).
#[derive(Debug, PartialEq)]
enum Decision {
    /// Every owner is there.
    Keep,
    /// Some owner remains: only the references to owners that are gone or
    /// going away in foreground are removed (as upstream).
    DropReferences(BTreeSet<String>),
    /// No owner remains: delete the dependent with this propagation; in
    /// foreground when an owner waits on it and it has dependents itself.
    Delete(PropagationPolicy),
}

fn decide(
    owners: &[(String, OwnerState)],
    has_dependents: bool,
    finalizers: &[String],
) -> Decision {
    let present = owners.iter().any(|(_, s)| *s == OwnerState::Present);
    let waiting = owners
        .iter()
        .any(|(_, s)| *s == OwnerState::WaitingForDependents);
    if present {
        let drop: BTreeSet<String> = owners
            .iter()
            .filter(|(_, s)| *s != OwnerState::Present)
            .map(|(u, _)| u.clone())
            .collect();
        return if drop.is_empty() {
            Decision::Keep
        } else {
            Decision::DropReferences(drop)
        };
    }
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    Decision::Delete(if waiting && has_dependents {
        PropagationPolicy::Foreground
    } else if has(ORPHAN) {
        PropagationPolicy::Orphan
    } else if has(FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    })
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(owners: &[&str]) -> Node {
        Node {
            resource: Arc::new(Resource {
                ar: ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
                namespaced: true,
            }),
            namespace: "default".into(),
            name: "x".into(),
            resource_version: "1".into(),
            owners: owners
                .iter()
                .map(|u| OwnerReference {
                    uid: u.to_string(),
                    ..Default::default()
                })
                .collect(),
            finalizers: vec![],
            deleting: false,
        }
    }

    #[test]
    fn the_graph_tracks_dependents_through_changes() {
        let mut g = Graph::default();
        g.insert("a".into(), node(&["owner1"]));
        g.insert("b".into(), node(&["owner1", "owner2"]));
        assert_eq!(g.dependents_of("owner1"), ["a", "b"]);
        g.insert("b".into(), node(&["owner2"]));
        assert_eq!(g.dependents_of("owner1"), ["a"]);
        g.remove("a");
        assert!(g.dependents_of("owner1").is_empty());
        assert_eq!(g.dependents_of("owner2"), ["b"]);
        assert!(
            !g.dependents.contains_key("owner1"),
            "no empty entries left"
        );
    }

    fn owners(states: &[(&str, OwnerState)]) -> Vec<(String, OwnerState)> {
        states.iter().map(|(u, s)| (u.to_string(), *s)).collect()
    }

    #[test]
    fn dependents_are_kept_trimmed_or_deleted_by_their_owners_state() {
        use OwnerState::*;
        assert_eq!(
            decide(&owners(&[("a", Present)]), false, &[]),
            Decision::Keep
        );
        assert_eq!(
            decide(
                &owners(&[("a", Present), ("b", Gone), ("c", WaitingForDependents)]),
                false,
                &[]
            ),
            Decision::DropReferences(["b".to_string(), "c".to_string()].into())
        );
        assert_eq!(
            decide(&owners(&[("a", Gone), ("b", Gone)]), true, &[]),
            Decision::Delete(PropagationPolicy::Background)
        );
        // An owner waiting in foreground passes foreground on down the chain.
        assert_eq!(
            decide(&owners(&[("a", WaitingForDependents)]), true, &[]),
            Decision::Delete(PropagationPolicy::Foreground)
        );
        assert_eq!(
            decide(&owners(&[("a", WaitingForDependents)]), false, &[]),
            Decision::Delete(PropagationPolicy::Background)
        );
        // The dependent's own finalizers choose otherwise.
        assert_eq!(
            decide(&owners(&[("a", Gone)]), true, &[ORPHAN.to_string()]),
            Decision::Delete(PropagationPolicy::Orphan)
        );
    }
}
