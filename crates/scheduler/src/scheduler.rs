//! The scheduler's loop. One task owns the cache and the queue: watch
//! events and binding results arrive on a channel and are applied between
//! cycles, so a cycle never sees a half-applied change and nothing needs a
//! lock. Writes (bindings, pod conditions, events, evictions of preemption
//! victims) run in background tasks and report back on the same channel.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::Api;
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use client::events::{EventType, Recorder};

use crate::cache::{is_terminal, Cache};
use crate::cycle::{schedule_pod, Outcome};
use crate::framework::{PodInfo, Profile};
use crate::preemption;
use crate::queue::{QueuedPod, SchedulingQueue};

/// Bindings in flight at once: the API, not the scheduler, sets the pace.
const MAX_BINDINGS_IN_FLIGHT: usize = 64;
const FIELD_MANAGER: &str = "kube-scheduler";

enum Msg {
    /// Objects arrive boxed (they are large), pods trimmed (see `trim`).
    Pod(Box<watcher::Event<Pod>>),
    Node(Box<watcher::Event<Node>>),
    Namespace(Box<watcher::Event<Namespace>>),
    /// A binding finished; on error the pod goes back to the queue.
    Bound {
        info: Arc<PodInfo>,
        attempts: u32,
        result: Result<(), String>,
    },
}

/// Which initial lists are complete: nothing is scheduled before the
/// cache has every node and every bound pod (upstream's WaitForCacheSync).
#[derive(Default)]
struct Synced {
    pods: bool,
    nodes: bool,
    namespaces: bool,
}

/// Objects seen during a relist, to drop those that vanished meanwhile.
#[derive(Default)]
struct Relist {
    pods: Option<HashSet<String>>,
    nodes: Option<HashSet<String>>,
    namespaces: Option<HashSet<String>>,
}

pub struct Scheduler {
    client: kube::Client,
    profile: Profile,
    cache: Cache,
    queue: SchedulingQueue,
    recorder: Recorder,
    bindings: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Msg>,
    next_start: usize,
    synced: Synced,
    relist: Relist,
}

fn spawn_watch<K, F>(
    stream: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    tx: mpsc::UnboundedSender<Msg>,
    wrap: F,
    shutdown: CancellationToken,
) where
    K: Send + 'static,
    F: Fn(watcher::Event<K>) -> Msg + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = stream.next() => match ev {
                    Some(Ok(ev)) => {
                        if tx.send(wrap(ev)).is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "scheduler watch error; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    None => return,
                }
            }
        }
    });
}

impl Scheduler {
    /// Schedules until `shutdown`.
    pub async fn run(
        client: kube::Client,
        profile: Profile,
        identity: &str,
        shutdown: CancellationToken,
    ) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let cfg = watcher::Config::default();
        spawn_watch(
            watcher(Api::<Pod>::all(client.clone()), cfg.clone()),
            tx.clone(),
            |e| Msg::Pod(Box::new(e.modify(|p| *p = trim(std::mem::take(p))))),
            shutdown.clone(),
        );
        spawn_watch(
            watcher(Api::<Node>::all(client.clone()), cfg.clone()),
            tx.clone(),
            |e| Msg::Node(Box::new(e)),
            shutdown.clone(),
        );
        spawn_watch(
            watcher(Api::<Namespace>::all(client.clone()), cfg),
            tx.clone(),
            |e| Msg::Namespace(Box::new(e)),
            shutdown.clone(),
        );
        let mut s = Scheduler {
            recorder: Recorder::new(client.clone(), &profile.scheduler_name, identity),
            client,
            profile,
            cache: Cache::default(),
            queue: SchedulingQueue::default(),
            bindings: Arc::new(Semaphore::new(MAX_BINDINGS_IN_FLIGHT)),
            tx,
            next_start: 0,
            synced: Synced::default(),
            relist: Relist::default(),
        };
        let mut leftover_check = Instant::now();
        loop {
            while let Ok(m) = rx.try_recv() {
                s.handle(m);
            }
            if shutdown.is_cancelled() {
                return;
            }
            let now = Instant::now();
            if now.duration_since(leftover_check) > Duration::from_secs(30) {
                s.queue.flush_unschedulable_leftover(now);
                leftover_check = now;
            }
            let ready = s.synced.pods && s.synced.nodes && s.synced.namespaces;
            if ready {
                if let Some(qp) = s.queue.pop(now) {
                    s.schedule_one(qp);
                    // Let the binding and event tasks run between cycles.
                    tokio::task::yield_now().await;
                    continue;
                }
            }
            let wake = s
                .queue
                .next_backoff()
                .filter(|_| ready)
                .unwrap_or(now + Duration::from_secs(1));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                m = rx.recv() => match m {
                    Some(m) => s.handle(m),
                    None => return,
                },
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    fn handle(&mut self, m: Msg) {
        let now = Instant::now();
        match m {
            Msg::Pod(ev) => match *ev {
                watcher::Event::Init => self.relist.pods = Some(HashSet::new()),
                watcher::Event::InitApply(p) => {
                    if let (Some(seen), Some(uid)) =
                        (self.relist.pods.as_mut(), p.metadata.uid.clone())
                    {
                        seen.insert(uid);
                    }
                    self.pod_changed(p, now);
                }
                watcher::Event::InitDone => {
                    if let Some(seen) = self.relist.pods.take() {
                        self.queue.retain(|uid| seen.contains(uid));
                        self.cache.retain_pods(|uid| seen.contains(uid));
                    }
                    self.synced.pods = true;
                }
                watcher::Event::Apply(p) => self.pod_changed(p, now),
                watcher::Event::Delete(p) => self.pod_deleted(&p, now),
            },
            Msg::Node(ev) => match *ev {
                watcher::Event::Init => self.relist.nodes = Some(HashSet::new()),
                watcher::Event::InitApply(n) => {
                    if let (Some(seen), Some(name)) =
                        (self.relist.nodes.as_mut(), n.metadata.name.clone())
                    {
                        seen.insert(name);
                    }
                    self.node_changed(n, now);
                }
                watcher::Event::InitDone => {
                    if let Some(seen) = self.relist.nodes.take() {
                        for name in self.cache.node_names() {
                            if !seen.contains(&name) {
                                self.cache.remove_node(&name);
                            }
                        }
                    }
                    self.synced.nodes = true;
                }
                watcher::Event::Apply(n) => self.node_changed(n, now),
                watcher::Event::Delete(n) => self
                    .cache
                    .remove_node(n.metadata.name.as_deref().unwrap_or_default()),
            },
            Msg::Namespace(ev) => match *ev {
                watcher::Event::Init => self.relist.namespaces = Some(HashSet::new()),
                watcher::Event::InitApply(n) | watcher::Event::Apply(n) => {
                    if let (Some(seen), Some(name)) =
                        (self.relist.namespaces.as_mut(), n.metadata.name.clone())
                    {
                        seen.insert(name);
                    }
                    self.cache.upsert_namespace(&n);
                }
                watcher::Event::InitDone => {
                    if let Some(seen) = self.relist.namespaces.take() {
                        for name in self.cache.namespace_names() {
                            if !seen.contains(&name) {
                                self.cache.remove_namespace(&name);
                            }
                        }
                    }
                    self.synced.namespaces = true;
                }
                watcher::Event::Delete(n) => self
                    .cache
                    .remove_namespace(n.metadata.name.as_deref().unwrap_or_default()),
            },
            Msg::Bound {
                info,
                attempts,
                result,
            } => {
                if let Err(e) = result {
                    tracing::debug!(pod = %info.key, error = %e, "binding failed; retrying after backoff");
                    self.cache.forget(&info.uid);
                    self.queue.backoff(info, attempts, now);
                    self.queue.move_all_to_active_or_backoff(now);
                }
            }
        }
    }

    fn node_changed(&mut self, node: Node, now: Instant) {
        if self.cache.upsert_node(node) {
            self.queue.move_all_to_active_or_backoff(now);
        }
    }

    fn pod_changed(&mut self, pod: Pod, now: Instant) {
        let info = Arc::new(PodInfo::new(Arc::new(pod)));
        if info.node_name().is_some() {
            // Bound (by us or anyone): it now counts on its node.
            self.queue.delete(&info.uid);
            self.cache.clear_nominated(&info.uid);
            let freed = is_terminal(&info.pod);
            self.cache.add_or_update_pod(info);
            if freed {
                self.queue.move_all_to_active_or_backoff(now);
            }
            return;
        }
        let ours = info
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler")
            == self.profile.scheduler_name;
        if !ours || info.pod.metadata.deletion_timestamp.is_some() || is_terminal(&info.pod) {
            self.queue.delete(&info.uid);
            self.cache.clear_nominated(&info.uid);
            return;
        }
        if self.cache.is_assumed(&info.uid) {
            // Our binding is in flight; this is an older state.
            return;
        }
        let nominated = info
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.clone())
            .filter(|n| !n.is_empty());
        match nominated {
            Some(n) => self.cache.nominate(&info, &n),
            None => self.cache.clear_nominated(&info.uid),
        }
        self.queue.add_or_update(info, now);
    }

    fn pod_deleted(&mut self, pod: &Pod, now: Instant) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.queue.delete(&uid);
        self.cache.remove_pod(&uid);
        self.cache.clear_nominated(&uid);
        self.recorder.forget(&uid);
        self.queue.move_all_to_active_or_backoff(now);
    }

    fn schedule_one(&mut self, qp: QueuedPod) {
        let pod = qp.info.clone();
        let snapshot = self.cache.snapshot();
        if snapshot.nodes.is_empty() {
            self.record_failure(&qp, "no nodes available to schedule pods".into(), None);
            self.queue.unschedulable(&pod.uid, Instant::now());
            return;
        }
        let cache = &self.cache;
        let nominated = |node: &str| {
            if cache.has_nominated() {
                cache.nominated_for(node, pod.priority, &pod.uid)
            } else {
                Vec::new()
            }
        };
        match schedule_pod(&self.profile, &pod, &snapshot, self.next_start, &nominated) {
            Outcome::Placed(placement, _) => {
                self.next_start =
                    (self.next_start + placement.evaluated) % snapshot.nodes.len().max(1);
                drop(snapshot);
                self.queue.done(&pod.uid);
                self.cache.clear_nominated(&pod.uid);
                self.cache.assume(pod.clone(), &placement.node);
                self.bind(pod, qp.attempts, placement.node);
            }
            Outcome::Unschedulable(mut fit, state) => {
                let outcome = preemption::preempt(
                    &self.profile,
                    &state,
                    &pod,
                    &snapshot,
                    &fit.diagnosis,
                    &nominated,
                );
                drop(snapshot);
                let nominated_node = match outcome {
                    Ok(candidate) => {
                        self.cache.nominate(&pod, &candidate.node);
                        self.evict_victims(&pod, &candidate);
                        Some(candidate.node)
                    }
                    Err(msg) => {
                        fit.post_filter_msg = Some(msg);
                        None
                    }
                };
                self.record_failure(&qp, fit.message(), nominated_node);
                self.queue.unschedulable(&pod.uid, Instant::now());
            }
        }
    }

    /// Posts the Binding in the background; the result comes back as `Msg::Bound`.
    fn bind(&self, info: Arc<PodInfo>, attempts: u32, node: String) {
        let client = self.client.clone();
        let tx = self.tx.clone();
        let permits = self.bindings.clone();
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            let binding = json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": info.name, "namespace": info.namespace, "uid": info.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let path = format!("/api/v1/namespaces/{}/pods", info.namespace);
            let result = async {
                let body = serde_json::to_vec(&binding).map_err(|e| e.to_string())?;
                let req = kube::core::Request::new(path)
                    .create_subresource("binding", &info.name, &PostParams::default(), body)
                    .map_err(|e| e.to_string())?;
                client
                    .request_text(req)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            .await;
            if result.is_ok() {
                recorder.forget(&info.uid);
                recorder.record(
                    client::events::reference(info.pod.as_ref()),
                    EventType::Normal,
                    "Scheduled",
                    "Binding",
                    format!("Successfully assigned {} to {node}", info.key),
                );
            }
            let _ = tx.send(Msg::Bound {
                info,
                attempts,
                result,
            });
        });
    }

    /// Sets `PodScheduled=False` (reason Unschedulable) and, after
    /// preemption, `nominatedNodeName`; records a FailedScheduling event.
    fn record_failure(&self, qp: &QueuedPod, message: String, nominated: Option<String>) {
        let pod = qp.info.clone();
        self.recorder.record(
            client::events::reference(pod.pod.as_ref()),
            EventType::Warning,
            "FailedScheduling",
            "Scheduling",
            message.clone(),
        );
        let status = pod.pod.status.as_ref();
        let current = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
        let same_condition = current.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref() == Some(message.as_str())
        });
        let current_nominated = status
            .and_then(|s| s.nominated_node_name.clone())
            .filter(|n| !n.is_empty());
        let nominated_change = nominated.is_some() && nominated != current_nominated;
        if same_condition && !nominated_change {
            return;
        }
        let mut patch = json!({
            "status": {
                "conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": null,
                    "lastTransitionTime": if current.is_some_and(|c| c.status == "False") {
                        json!(current.and_then(|c| c.last_transition_time.clone()))
                    } else {
                        json!(jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or(jiff::Timestamp::now()).to_string())
                    },
                }]
            }
        });
        if let Some(n) = nominated {
            patch["status"]["nominatedNodeName"] = json!(n);
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let name = pod.name.clone();
        tokio::spawn(async move {
            let pp = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            if let Err(e) = api
                .patch_status(&name, &pp, &Patch::Strategic(&patch))
                .await
            {
                tracing::debug!(pod = %name, error = %e, "updating the PodScheduled condition failed");
            }
        });
    }

    /// Evicts preemption victims: a DisruptionTarget condition first (so
    /// their owners and users see why), an event, then a graceful delete.
    fn evict_victims(&self, preemptor: &PodInfo, candidate: &preemption::Candidate) {
        for v in &candidate.victims {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &v.namespace);
            let name = v.name.clone();
            let uid = v.uid.clone();
            let condition = json!({"status": {"conditions": [{
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "PreemptionByScheduler",
                "message": format!("{}: preempting to accommodate a higher priority pod", self.profile.scheduler_name),
                "lastTransitionTime": jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or(jiff::Timestamp::now()).to_string(),
            }]}});
            self.recorder.record(
                client::events::reference(v.pod.as_ref()),
                EventType::Normal,
                "Preempted",
                "Preempting",
                format!(
                    "Preempted by pod {} on node {}",
                    preemptor.uid, candidate.node
                ),
            );
            tokio::spawn(async move {
                let pp = PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                let _ = api
                    .patch_status(&name, &pp, &Patch::Strategic(&condition))
                    .await;
                let dp = DeleteParams {
                    preconditions: Some(kube::api::Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                if let Err(e) = api.delete(&name, &dp).await {
                    tracing::debug!(pod = %name, error = %e, "deleting a preemption victim failed");
                }
            });
        }
    }
}

/// Drops what no plugin reads before a pod is cached (as kube-scheduler's
/// informers drop managedFields): with 10,000 pods cached, environment,
/// probes, mounts, annotations and container statuses would be most of
/// the scheduler's memory.
fn trim(mut pod: Pod) -> Pod {
    let meta = &mut pod.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    if let Some(spec) = pod.spec.as_mut() {
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            c.env = None;
            c.env_from = None;
            c.command = None;
            c.args = None;
            c.volume_mounts = None;
            c.volume_devices = None;
            c.liveness_probe = None;
            c.readiness_probe = None;
            c.startup_probe = None;
            c.lifecycle = None;
            c.security_context = None;
            c.working_dir = None;
        }
        spec.ephemeral_containers = None;
        // Only claims matter to scheduling (VolumeBinding).
        if let Some(vols) = spec.volumes.as_mut() {
            vols.retain(|v| v.persistent_volume_claim.is_some() || v.ephemeral.is_some());
        }
    }
    if let Some(status) = pod.status.as_mut() {
        status.container_statuses = None;
        status.init_container_statuses = None;
        status.ephemeral_container_statuses = None;
        status.resource_claim_statuses = None;
        status.message = None;
    }
    pod
}
