//! The fake pod lifecycle: one watch on all bound pods, and for those bound
//! to a hollow node, the writes a kubelet would make (Running with an
//! address; deletion finished once "containers" stopped).
//!
//! Shaped like a controller runner: events only record the latest pod per
//! uid and queue the uid; a dispatcher starts at most `max_in_flight` writes
//! and never two for the same pod; a pod that changed while its write was in
//! flight is looked at again when the write ends.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, ResourceExt};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ipam::PodIpam;
use crate::node::{now, HollowNode};
use crate::pod_status::{next_step, pod_ip, running_status, terminal_status, Step};
use crate::retry::{is_conflict, is_not_found, is_transient, until_settled, Backoff};
use crate::FIELD_MANAGER;

/// What we know of a pod we acted on.
#[derive(Debug)]
struct PodRecord {
    node: usize,
    /// The address it holds on its node's range, if we track one.
    ip: Option<Ipv4Addr>,
    /// The resourceVersion our Running status was written at: events older
    /// than it (already in the watch when the write landed) are stale.
    written_rv: Option<String>,
    /// A grace-0 delete was sent; the pod is only waiting for finalizers.
    finalizing: bool,
}

impl PodRecord {
    fn new(node: usize) -> PodRecord {
        PodRecord {
            node,
            ip: None,
            written_rv: None,
            finalizing: false,
        }
    }
}

/// How a write ended.
#[derive(Debug)]
enum Outcome {
    /// Our Running status is stored at this resourceVersion.
    Written(Option<String>),
    /// The pod changed under us: look at this version of it again.
    Recheck(Box<Pod>),
    /// The pod is gone (or a different pod now has its name).
    Gone,
    /// Nothing to remember (deletion waits for finalizers; or a write the
    /// server refused, already logged).
    Done,
}

pub(crate) struct PodWorker {
    client: kube::Client,
    nodes: Arc<[HollowNode]>,
    by_name: HashMap<String, usize>,
    ipams: Vec<PodIpam>,
    records: HashMap<String, PodRecord>,
    /// The latest version of each pod waiting to be looked at, by uid.
    latest: HashMap<String, Pod>,
    queue: VecDeque<String>,
    in_flight: HashSet<String>,
    /// Pods whose node has no free address left, by uid.
    starved: HashMap<String, Pod>,
    /// Between a watch (re)start and the end of its initial list: uids seen.
    relisting: Option<HashSet<String>>,
    max_in_flight: usize,
    shutdown: CancellationToken,
}

impl PodWorker {
    pub(crate) fn new(
        client: kube::Client,
        nodes: Arc<[HollowNode]>,
        max_in_flight: usize,
        shutdown: CancellationToken,
    ) -> PodWorker {
        PodWorker {
            client,
            by_name: nodes.iter().map(|n| (n.name.clone(), n.index)).collect(),
            ipams: nodes.iter().map(|n| PodIpam::new(n.pod_cidr)).collect(),
            nodes,
            records: HashMap::new(),
            latest: HashMap::new(),
            queue: VecDeque::new(),
            in_flight: HashSet::new(),
            starved: HashMap::new(),
            relisting: None,
            max_in_flight: max_in_flight.max(1),
            shutdown,
        }
    }

    pub(crate) async fn run(mut self) -> anyhow::Result<()> {
        let api: Api<Pod> = Api::all(self.client.clone());
        // Only bound pods: the scheduler's churn on pending ones is not ours.
        // The server ends each watch within 50 s (the watcher resumes it from
        // the last resourceVersion), inside the client's 60 s read timeout, so
        // a quiet watch is renewed instead of failing.
        let config = watcher::Config::default()
            .fields("spec.nodeName!=")
            .timeout(50);
        let mut events = watcher(api, config).default_backoff().boxed();
        let mut tasks: JoinSet<(String, Outcome)> = JoinSet::new();
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => match done {
                    Ok((uid, outcome)) => self.finished(uid, outcome),
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => {}
                },
                event = events.next() => match event {
                    Some(Ok(event)) => self.observe(event),
                    Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                    None => anyhow::bail!("the pod watch ended"),
                },
            }
            self.dispatch(&mut tasks);
        }
        tasks.shutdown().await;
        Ok(())
    }

    fn node_of(&self, pod: &Pod) -> Option<usize> {
        let name = pod.spec.as_ref()?.node_name.as_deref()?;
        self.by_name.get(name).copied()
    }

    fn observe(&mut self, event: Event<Pod>) {
        match event {
            Event::Init => self.relisting = Some(HashSet::new()),
            Event::InitApply(pod) => {
                if self.node_of(&pod).is_some() {
                    if let Some(seen) = self.relisting.as_mut() {
                        seen.insert(pod.uid().unwrap_or_default());
                    }
                    self.enqueue(pod);
                }
            }
            Event::InitDone => self.relisted(),
            Event::Apply(pod) => {
                if self.node_of(&pod).is_some() {
                    self.enqueue(pod);
                }
            }
            Event::Delete(pod) => {
                let uid = pod.uid().unwrap_or_default();
                self.latest.remove(&uid);
                self.starved.remove(&uid);
                self.forget(&uid);
            }
        }
    }

    fn enqueue(&mut self, pod: Pod) {
        let uid = pod.uid().unwrap_or_default();
        if self.latest.insert(uid.clone(), pod).is_none() {
            self.queue.push_back(uid);
        }
    }

    /// The initial list is complete: pods we knew that it did not contain
    /// were deleted while the watch was down; addresses the listed pods
    /// already hold are taken before any new one is handed out.
    fn relisted(&mut self) {
        let Some(seen) = self.relisting.take() else {
            return;
        };
        let vanished: Vec<String> = self
            .records
            .keys()
            .filter(|uid| !seen.contains(*uid))
            .cloned()
            .collect();
        for uid in vanished {
            self.forget(&uid);
        }
        self.latest.retain(|uid, _| seen.contains(uid));
        self.starved.retain(|uid, _| seen.contains(uid));
        let listed: Vec<(usize, String, Ipv4Addr)> = self
            .latest
            .iter()
            .filter(|(_, p)| next_step(p) != Step::Release)
            .filter_map(|(uid, p)| Some((self.node_of(p)?, uid.clone(), pod_ip(p)?)))
            .collect();
        for (node, uid, ip) in listed {
            self.adopt_ip(node, &uid, ip);
        }
        tracing::debug!(pods = seen.len(), "pod list complete");
    }

    /// Records that the pod `uid` holds `ip` (already in its status).
    fn adopt_ip(&mut self, node: usize, uid: &str, ip: Ipv4Addr) {
        let record = self
            .records
            .entry(uid.to_string())
            .or_insert_with(|| PodRecord::new(node));
        if record.ip.is_none() && self.ipams[node].adopt(ip) {
            record.ip = Some(ip);
        }
    }

    /// Drops what we know of `uid` and frees its address (possibly for a
    /// pod that was waiting for one).
    fn forget(&mut self, uid: &str) {
        let Some(record) = self.records.remove(uid) else {
            return;
        };
        if let Some(ip) = record.ip {
            self.ipams[record.node].release(ip);
            let waiting = self
                .starved
                .iter()
                .find(|(_, p)| self.node_of(p) == Some(record.node))
                .map(|(uid, _)| uid.clone());
            if let Some(pod) = waiting.and_then(|w| self.starved.remove(&w)) {
                self.enqueue(pod);
            }
        }
    }

    fn dispatch(&mut self, tasks: &mut JoinSet<(String, Outcome)>) {
        // Addresses already held must all be known before new ones are given.
        if self.relisting.is_some() {
            return;
        }
        while self.in_flight.len() < self.max_in_flight {
            let Some(uid) = self.queue.pop_front() else {
                return;
            };
            if self.in_flight.contains(&uid) {
                continue; // looked at again when its write ends
            }
            let Some(pod) = self.latest.remove(&uid) else {
                continue;
            };
            self.evaluate(uid, pod, tasks);
        }
    }

    fn evaluate(&mut self, uid: String, pod: Pod, tasks: &mut JoinSet<(String, Outcome)>) {
        let Some(node) = self.node_of(&pod) else {
            return;
        };
        let step = next_step(&pod);
        match step {
            Step::Nothing => {
                if let Some(ip) = pod_ip(&pod) {
                    self.adopt_ip(node, &uid, ip);
                }
            }
            Step::Release => self.forget(&uid),
            Step::Finalize { terminal_status } => {
                let record = self
                    .records
                    .entry(uid.clone())
                    .or_insert_with(|| PodRecord::new(node));
                if record.finalizing && pod.metadata.deletion_grace_period_seconds == Some(0) {
                    return; // deleted already; held by finalizers
                }
                record.finalizing = true;
                self.spawn(
                    tasks,
                    uid,
                    finalize(
                        self.client.clone(),
                        pod,
                        terminal_status,
                        self.shutdown.clone(),
                    ),
                );
            }
            Step::MarkRunning => {
                let rv = pod.resource_version().unwrap_or_default();
                if self
                    .records
                    .get(&uid)
                    .and_then(|r| r.written_rv.as_deref())
                    .is_some_and(|written| !is_newer(&rv, written))
                {
                    return; // an event from before our write landed
                }
                let ip = match pod_ip(&pod) {
                    Some(ip) => {
                        self.adopt_ip(node, &uid, ip);
                        ip
                    }
                    None => match self.records.get(&uid).and_then(|r| r.ip) {
                        Some(ip) => ip,
                        None => match self.ipams[node].allocate() {
                            Some(ip) => {
                                self.records
                                    .entry(uid.clone())
                                    .or_insert_with(|| PodRecord::new(node))
                                    .ip = Some(ip);
                                ip
                            }
                            None => {
                                tracing::warn!(
                                    pod = %key(&pod),
                                    node = %self.nodes[node].name,
                                    range = %self.ipams[node].cidr(),
                                    "no free pod address on the node; the pod waits for one"
                                );
                                self.starved.insert(uid, pod);
                                return;
                            }
                        },
                    },
                };
                let host_ip = self.nodes[node].internal_ip;
                self.spawn(
                    tasks,
                    uid,
                    mark_running(self.client.clone(), pod, host_ip, ip, self.shutdown.clone()),
                );
            }
        }
    }

    fn spawn(
        &mut self,
        tasks: &mut JoinSet<(String, Outcome)>,
        uid: String,
        work: impl std::future::Future<Output = Outcome> + Send + 'static,
    ) {
        self.in_flight.insert(uid.clone());
        tasks.spawn(async move { (uid, work.await) });
    }

    fn finished(&mut self, uid: String, outcome: Outcome) {
        self.in_flight.remove(&uid);
        match outcome {
            Outcome::Written(rv) => {
                if let Some(r) = self.records.get_mut(&uid) {
                    r.written_rv = rv;
                }
            }
            Outcome::Recheck(pod) => {
                // Unless the watch has shown it deleted meanwhile.
                if self.records.contains_key(&uid) && !self.latest.contains_key(&uid) {
                    self.enqueue(*pod);
                }
            }
            Outcome::Gone => self.forget(&uid),
            Outcome::Done => {}
        }
        if self.latest.contains_key(&uid) {
            self.queue.push_back(uid);
        }
    }
}

/// Whether resourceVersion `a` is later than `b`. Kubernetes calls them
/// opaque; both etcd's and skiff's are increasing integers, and when they
/// are not, an event is taken as no newer than our own write.
fn is_newer(a: &str, b: &str) -> bool {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a > b,
        _ => false,
    }
}

fn key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

async fn mark_running(
    client: kube::Client,
    pod: Pod,
    host_ip: Ipv4Addr,
    ip: Ipv4Addr,
    shutdown: CancellationToken,
) -> Outcome {
    let api: Api<Pod> = Api::namespaced(client, &pod.namespace().unwrap_or_default());
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    let mut backoff = Backoff::new();
    loop {
        let patch = running_status(&pod, host_ip, ip, now());
        match api
            .patch_status(&name, &params(), &Patch::Merge(&patch))
            .await
        {
            Ok(p) => {
                tracing::debug!(pod = %key(&pod), %ip, "pod running");
                return Outcome::Written(p.resource_version());
            }
            Err(e) if is_not_found(&e) => return Outcome::Gone,
            Err(e) if is_conflict(&e) => return reread(&api, &name, &uid, &shutdown).await,
            Err(e) if is_transient(&e) => {
                if !backoff.wait(&shutdown).await {
                    return Outcome::Done;
                }
            }
            Err(e) => {
                tracing::warn!(pod = %key(&pod), error = %e, "reporting the pod running failed");
                return Outcome::Done;
            }
        }
    }
}

/// After a conflict: the pod as it is now, if it is still the same pod.
async fn reread(api: &Api<Pod>, name: &str, uid: &str, shutdown: &CancellationToken) -> Outcome {
    match until_settled(shutdown, "reading a pod", || api.get_opt(name)).await {
        Ok(Some(p)) if p.uid().as_deref() == Some(uid) => Outcome::Recheck(Box::new(p)),
        Ok(_) => Outcome::Gone,
        Err(e) => {
            tracing::warn!(pod = %name, error = %e, "reading the pod failed");
            Outcome::Done
        }
    }
}

async fn finalize(
    client: kube::Client,
    pod: Pod,
    terminal: bool,
    shutdown: CancellationToken,
) -> Outcome {
    let api: Api<Pod> = Api::namespaced(client, &pod.namespace().unwrap_or_default());
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    if terminal {
        let patch = terminal_status(&pod, now());
        let written = until_settled(&shutdown, "reporting a pod stopped", || async {
            api.patch_status(&name, &params(), &Patch::Merge(&patch))
                .await
        })
        .await;
        match written {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Outcome::Gone,
            Err(e) if is_conflict(&e) => return reread(&api, &name, &uid, &shutdown).await,
            Err(e) => {
                tracing::warn!(pod = %key(&pod), error = %e, "reporting the pod stopped failed");
                return Outcome::Done;
            }
        }
    }
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match until_settled(&shutdown, "deleting a pod", || api.delete(&name, &dp)).await {
        Ok(either) => {
            tracing::debug!(pod = %key(&pod), "pod deletion finished");
            if either.is_left() {
                Outcome::Done // still held by finalizers
            } else {
                Outcome::Gone
            }
        }
        // Gone, or the name now belongs to another pod (uid precondition).
        Err(e) if is_not_found(&e) || is_conflict(&e) => Outcome::Gone,
        Err(e) => {
            tracing::warn!(pod = %key(&pod), error = %e, "finishing the pod deletion failed");
            Outcome::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_version_order() {
        assert!(is_newer("11", "9"));
        assert!(!is_newer("9", "11"));
        assert!(!is_newer("9", "9"));
        assert!(!is_newer("abc", "9"));
    }
}
