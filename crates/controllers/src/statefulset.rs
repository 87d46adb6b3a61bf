//! StatefulSetController (`pkg/controller/statefulset`): pods with sticky
//! identities `<set>-<ordinal>` for ordinals `start..start+replicas`, each
//! with its own PersistentVolumeClaims (`<template>-<pod>`), a hostname and
//! the set's `serviceName` as subdomain for per-pod DNS.
//!
//! `OrderedReady` creates one pod at a time in ascending order, each
//! Running and Ready before the next, and removes pods in descending order,
//! one at a time, waiting for each to terminate; `Parallel` does both at
//! once. `RollingUpdate` replaces pods at the old revision by descending
//! ordinal down to `partition`, one at a time (or `maxUnavailable` at a
//! time), each healthy before the next; `OnDelete` only recreates pods the
//! user deleted. Claims outlive their pods unless
//! `persistentVolumeClaimRetentionPolicy` says `Delete`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use client::events::{EventType, Recorder};

use crate::history::{self, Revisions};
use crate::informer::{key_of, Change, Informer};
use crate::pod_control::{self, controller_of};
use crate::replicaset::{is_pod_available, is_pod_ready};
use crate::workqueue::WorkQueue;
use crate::Context;

const CONTROLLER: &str = "statefulset-controller";
const WORKERS: usize = 2;

/// The pod label naming the pod itself (for per-pod Services).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The pod label carrying its ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

struct Controller {
    client: kube::Client,
    sets: Informer<StatefulSet>,
    pods: Informer<Pod>,
    claims: Informer<PersistentVolumeClaim>,
    revisions: Informer<ControllerRevision>,
    recorder: Recorder,
    queue: WorkQueue,
}

/// Runs the StatefulSet controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        sets: ctx.informers.get::<StatefulSet>(),
        pods: ctx.informers.pods(),
        claims: ctx.informers.get::<PersistentVolumeClaim>(),
        revisions: ctx.informers.get::<ControllerRevision>(),
        recorder: ctx.recorder(CONTROLLER),
        queue: WorkQueue::new("statefulset"),
    });
    {
        let c2 = c.clone();
        c.sets
            .on_change(move |change| c2.queue.add(key_of(change.object().as_ref())));
    }
    {
        let c2 = c.clone();
        c.pods.on_change(move |change| c2.pod_changed(change));
    }
    {
        let c2 = c.clone();
        c.revisions.on_change(move |change| {
            if let Some(key) = c2.sets.controller_key(&change.object().metadata) {
                c2.queue.add(key);
            }
        });
    }
    c.sets.wait_synced().await;
    c.pods.wait_synced().await;
    c.claims.wait_synced().await;
    c.revisions.wait_synced().await;
    let c2 = c.clone();
    c.queue
        .clone()
        .run(WORKERS, shutdown, move |key| {
            let c = c2.clone();
            async move { c.sync(&key).await }
        })
        .await;
    Ok(())
}

/// `getParentNameAndOrdinal`: `web-3` → (`web`, 3).
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, ordinal) = name.rsplit_once('-')?;
    if parent.is_empty() || ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ordinal.parse().ok()?))
}

/// `getPodName`.
pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

/// `getPersistentVolumeClaimName`: `<template>-<pod>`.
pub fn claim_name(template: &str, pod: &str) -> String {
    format!("{template}-{pod}")
}

fn ordinal_of(pod: &Pod) -> Option<i32> {
    parent_and_ordinal(pod.metadata.name.as_deref()?).map(|(_, o)| o)
}

/// `isMemberOf`: the pod's name is `<set>-<ordinal>`.
fn is_member_of(set: &StatefulSet, pod: &Pod) -> bool {
    pod.metadata
        .name
        .as_deref()
        .and_then(parent_and_ordinal)
        .is_some_and(|(parent, _)| Some(parent) == set.metadata.name.as_deref())
}

fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

fn replicas(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0)
}

fn is_parallel(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.pod_management_policy.as_deref())
        == Some("Parallel")
}

fn is_on_delete(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        == Some("OnDelete")
}

fn partition(set: &StatefulSet) -> i32 {
    rolling_update(set)
        .and_then(|r| r.partition)
        .unwrap_or(0)
        .max(0)
}

fn rolling_update(
    set: &StatefulSet,
) -> Option<&k8s_openapi::api::apps::v1::RollingUpdateStatefulSetStrategy> {
    set.spec
        .as_ref()?
        .update_strategy
        .as_ref()?
        .rolling_update
        .as_ref()
}

/// `maxUnavailable` scaled to the replicas (percentages round down, at
/// least one); `None` means one at a time, each healthy before the next.
fn max_unavailable(set: &StatefulSet) -> Option<i32> {
    let v = rolling_update(set)?.max_unavailable.as_ref()?;
    let n = match v {
        IntOrString::Int(i) => *i,
        IntOrString::String(s) => {
            let pct: i32 = s.trim_end_matches('%').parse().unwrap_or(0);
            pct * replicas(set) / 100
        }
    };
    Some(n.max(1))
}

fn min_ready_seconds(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn selects(set: &StatefulSet, labels: &BTreeMap<String, String>) -> bool {
    set.spec.as_ref().is_some_and(|s| {
        !client::labels::is_empty(&s.selector) && client::labels::matches(&s.selector, labels)
    })
}

fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn is_failed(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed") | Some("Succeeded")
    )
}

/// `isRunningAndReady`.
fn is_running_and_ready(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && is_pod_ready(pod)
}

/// `isHealthy`: running, ready and not on its way out.
fn is_healthy(pod: &Pod) -> bool {
    is_running_and_ready(pod) && !is_terminating(pod)
}

fn pod_revision(pod: &Pod) -> Option<&str> {
    pod.labels()
        .get(history::CONTROLLER_REVISION_HASH_LABEL)
        .map(String::as_str)
}

/// The claim a retention policy `Delete` hands to an owner.
fn non_controller_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: Some(true),
    }
}

fn retention(set: &StatefulSet) -> (bool, bool) {
    let p = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let delete = |v: Option<&String>| v.map(String::as_str) == Some("Delete");
    (
        delete(p.and_then(|p| p.when_deleted.as_ref())),
        delete(p.and_then(|p| p.when_scaled.as_ref())),
    )
}

/// `newStatefulSetPod`: the pod for `ordinal` from `template`, with its
/// identity (name, labels, hostname, subdomain) and its claims as volumes.
pub fn new_stateful_pod(
    set: &StatefulSet,
    template: &PodTemplateSpec,
    ordinal: i32,
    revision: &str,
) -> Pod {
    let set_name = set.name_any();
    let name = pod_name(&set_name, ordinal);
    let mut pod = pod_control::pod_from_template(template, pod_control::controller_ref(set));
    pod.metadata.name = Some(name.clone());
    pod.metadata.namespace = set.namespace();
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(
        history::CONTROLLER_REVISION_HASH_LABEL.into(),
        revision.into(),
    );
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name.clone());
    spec.subdomain = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty());
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    for t in claim_templates(set) {
        let tname = t.metadata.name.clone().unwrap_or_default();
        volumes.retain(|v| v.name != tname);
        volumes.push(Volume {
            name: tname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&tname, &name),
                read_only: None,
            }),
            ..Default::default()
        });
    }
    pod
}

fn claim_templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or_default()
}

/// `getPersistentVolumeClaims`: the claims of the pod at `ordinal`,
/// labelled with the set's selector labels.
fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let pod = pod_name(&set.name_any(), ordinal);
    let selector_labels = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    let (when_deleted, _) = retention(set);
    claim_templates(set)
        .iter()
        .map(|t| {
            let mut c = t.clone();
            let tname = t.metadata.name.clone().unwrap_or_default();
            c.metadata = ObjectMeta {
                name: Some(claim_name(&tname, &pod)),
                namespace: set.namespace(),
                labels: {
                    let mut l = t.metadata.labels.clone().unwrap_or_default();
                    l.extend(selector_labels.clone());
                    Some(l)
                },
                annotations: t.metadata.annotations.clone(),
                owner_references: when_deleted
                    .then(|| vec![non_controller_ref("apps/v1", "StatefulSet", &set.metadata)]),
                ..Default::default()
            };
            c.status = None;
            c
        })
        .collect()
}

/// What the set's pods look like now, for `status`.
struct Counts {
    replicas: i32,
    ready: i32,
    available: i32,
    current: i32,
    updated: i32,
}

fn count(set: &StatefulSet, pods: &[Arc<Pod>], revs: &Revisions, now: Timestamp) -> Counts {
    let current = revs.current.name_any();
    let update = revs.update.name_any();
    let min_ready = min_ready_seconds(set);
    let mut c = Counts {
        replicas: 0,
        ready: 0,
        available: 0,
        current: 0,
        updated: 0,
    };
    for p in pods.iter().filter(|p| !is_terminating(p)) {
        c.replicas += 1;
        if is_running_and_ready(p) {
            c.ready += 1;
            if is_pod_available(p, min_ready, now) {
                c.available += 1;
            }
        }
        if pod_revision(p) == Some(current.as_str()) {
            c.current += 1;
        }
        if pod_revision(p) == Some(update.as_str()) {
            c.updated += 1;
        }
    }
    c
}

impl Controller {
    fn pod_changed(&self, change: &Change<Pod>) {
        let pod = change.object();
        if let Some(key) = self.sets.controller_key(&pod.metadata) {
            self.queue.add(key.clone());
            if let Some(set) = self.sets.get(&key) {
                let min_ready = min_ready_seconds(&set);
                if min_ready > 0 {
                    self.queue
                        .add_after(key, Duration::from_secs(min_ready as u64 + 1));
                }
            }
        } else if controller_of(&pod.metadata).is_none() {
            for set in self
                .sets
                .list_namespace(&pod.namespace().unwrap_or_default())
            {
                if selects(&set, pod.labels()) {
                    self.queue.add(key_of(set.as_ref()));
                }
            }
        }
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let Some(set) = self.sets.get(key) else {
            return Ok(None);
        };
        let ns = set.namespace().unwrap_or_default();
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let deleting = set.metadata.deletion_timestamp.is_some();
        let owner_ref = pod_control::controller_ref(set.as_ref());
        let candidates = self.pods.owned_or_orphaned(&ns, &uid);
        let pods = pod_control::claim_for(&self.client, set.as_ref(), candidates, |p| {
            selects(&set, p.labels()) && is_member_of(&set, p)
        })
        .await?;
        let rev_candidates = self.revisions.owned_or_orphaned(&ns, &uid);
        let revisions = pod_control::claim_for(&self.client, set.as_ref(), rev_candidates, |r| {
            selects(&set, r.labels())
        })
        .await?;
        if deleting {
            return Ok(None);
        }
        let Some(template) = set.spec.as_ref().map(|s| &s.template) else {
            return Ok(None);
        };
        let status = set.status.as_ref();
        let revs_api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        let revs = history::sync_revisions(
            &revs_api,
            &owner_ref,
            revisions,
            template,
            &history::history_annotations(&set.metadata),
            status.and_then(|s| s.current_revision.as_deref()),
            status.and_then(|s| s.collision_count).unwrap_or(0),
        )
        .await?;
        self.update_stateful_set(&set, &revs, &pods).await?;
        self.truncate_history(&set, &revs, &pods).await?;
        self.update_status(&set, &revs, &pods).await?;
        Ok((min_ready_seconds(&set) > 0).then(|| Duration::from_secs(1)))
    }

    /// `updateStatefulSet`: one step towards the spec. Ordered sets stop at
    /// the first pod they created, deleted or must wait for; the pod
    /// changes wake the set again.
    async fn update_stateful_set(
        &self,
        set: &StatefulSet,
        revs: &Revisions,
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<()> {
        let start = start_ordinal(set);
        let end = start + replicas(set);
        let ordered = !is_parallel(set);
        let mut replicas: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
        let mut condemned: Vec<Arc<Pod>> = Vec::new();
        for p in pods {
            match ordinal_of(p) {
                Some(o) if (start..end).contains(&o) => {
                    replicas.insert(o, p.clone());
                }
                Some(_) => condemned.push(p.clone()),
                None => {}
            }
        }
        // Replicas: replace failed pods, create missing ones in order.
        for ordinal in start..end {
            match replicas.get(&ordinal) {
                Some(p) if is_failed(p) && !is_terminating(p) => {
                    self.delete_pod(set, p).await?;
                    if ordered {
                        return Ok(());
                    }
                }
                None => {
                    self.create_pod(set, revs, ordinal).await?;
                    if ordered {
                        return Ok(());
                    }
                }
                Some(p) if ordered && !is_healthy(p) => return Ok(()),
                Some(_) => {}
            }
        }
        // Condemned pods (ordinals out of range): highest first. Ordered
        // sets get here only with every remaining replica healthy.
        condemned.sort_by_key(|p| std::cmp::Reverse(ordinal_of(p)));
        for p in &condemned {
            if is_terminating(p) {
                if ordered {
                    return Ok(());
                }
                continue;
            }
            self.hand_claims_to_pod(set, p).await?;
            self.delete_pod(set, p).await?;
            if ordered {
                return Ok(());
            }
        }
        if is_on_delete(set) {
            return Ok(());
        }
        self.rolling_update(set, revs, &replicas, start, end).await
    }

    /// Replaces pods not at the update revision, by descending ordinal,
    /// down to `partition`.
    async fn rolling_update(
        &self,
        set: &StatefulSet,
        revs: &Revisions,
        replicas: &BTreeMap<i32, Arc<Pod>>,
        start: i32,
        end: i32,
    ) -> anyhow::Result<()> {
        let update = revs.update.name_any();
        let update_min = start + partition(set);
        let outdated = |p: &Pod| pod_revision(p) != Some(update.as_str()) && !is_terminating(p);
        let Some(max_unavailable) = max_unavailable(set) else {
            for ordinal in (update_min..end).rev() {
                let Some(p) = replicas.get(&ordinal) else {
                    continue;
                };
                if outdated(p) {
                    return self.delete_pod(set, p).await;
                }
                if !is_healthy(p) {
                    return Ok(());
                }
            }
            return Ok(());
        };
        // With maxUnavailable: as many at once as the budget allows.
        let unavailable = (start..end)
            .filter(|o| replicas.get(o).is_none_or(|p| !is_healthy(p)))
            .count() as i32;
        let mut budget = max_unavailable - unavailable;
        for ordinal in (update_min..end).rev() {
            if budget <= 0 {
                break;
            }
            if let Some(p) = replicas.get(&ordinal).filter(|p| outdated(p)) {
                if is_healthy(p) {
                    budget -= 1;
                }
                self.delete_pod(set, p).await?;
            }
        }
        Ok(())
    }

    /// `CreateStatefulPod`: the pod's claims first, then the pod, at the
    /// current revision below the partition and the update revision above.
    async fn create_pod(
        &self,
        set: &StatefulSet,
        revs: &Revisions,
        ordinal: i32,
    ) -> anyhow::Result<()> {
        let below_partition = !is_on_delete(set) && ordinal < start_ordinal(set) + partition(set);
        let (template, revision) = match history::template_of(&revs.current) {
            Some(t) if below_partition => (t, revs.current.name_any()),
            _ => (
                set.spec
                    .as_ref()
                    .map(|s| s.template.clone())
                    .unwrap_or_default(),
                revs.update.name_any(),
            ),
        };
        let pod = new_stateful_pod(set, &template, ordinal, &revision);
        let name = pod.name_any();
        self.create_claims(set, ordinal, &name).await?;
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &set.namespace().unwrap_or_default());
        match api.create(&PostParams::default(), &pod).await {
            Ok(_) => {
                self.event(
                    set,
                    EventType::Normal,
                    "SuccessfulCreate",
                    "Create",
                    format!(
                        "create Pod {name} in StatefulSet {} successful",
                        set.name_any()
                    ),
                );
                Ok(())
            }
            // Our cache is behind: the pod is there already.
            Err(e) if is_already_exists(&e) => Ok(()),
            Err(e) if pod_control::is_namespace_terminating(&e) => Ok(()),
            Err(e) => {
                self.event(
                    set,
                    EventType::Warning,
                    "FailedCreate",
                    "Create",
                    format!(
                        "create Pod {name} in StatefulSet {} failed error: {}",
                        set.name_any(),
                        pod_control::api_message(&e)
                    ),
                );
                Err(e.into())
            }
        }
    }

    /// `createPersistentVolumeClaims`: the pod's claims that do not exist yet.
    async fn create_claims(
        &self,
        set: &StatefulSet,
        ordinal: i32,
        pod: &str,
    ) -> anyhow::Result<()> {
        let ns = set.namespace().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        for claim in claims_for(set, ordinal) {
            let name = claim.name_any();
            if self.claims.get(&format!("{ns}/{name}")).is_some() {
                continue;
            }
            match api.create(&PostParams::default(), &claim).await {
                Ok(_) => self.event(
                    set,
                    EventType::Normal,
                    "SuccessfulCreate",
                    "Create",
                    format!(
                        "create Claim {name} Pod {pod} in StatefulSet {} success",
                        set.name_any()
                    ),
                ),
                Err(e) if is_already_exists(&e) => {}
                Err(e) => {
                    self.event(
                        set,
                        EventType::Warning,
                        "FailedCreate",
                        "Create",
                        format!(
                            "create Claim {name} for Pod {pod} in StatefulSet {} failed error: {}",
                            set.name_any(),
                            pod_control::api_message(&e)
                        ),
                    );
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// With `whenScaled: Delete`, a pod removed by scale-down takes its
    /// claims with it: they get the pod as owner, and the garbage collector
    /// deletes them after it.
    async fn hand_claims_to_pod(&self, set: &StatefulSet, pod: &Pod) -> anyhow::Result<()> {
        let (_, when_scaled) = retention(set);
        let Some(ordinal) = ordinal_of(pod).filter(|_| when_scaled) else {
            return Ok(());
        };
        let ns = set.namespace().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let owner = non_controller_ref("v1", "Pod", &pod.metadata);
        for claim in claims_for(set, ordinal) {
            let name = claim.name_any();
            let Some(existing) = self.claims.get(&format!("{ns}/{name}")) else {
                continue;
            };
            if existing
                .owner_references()
                .iter()
                .any(|r| r.uid == owner.uid)
            {
                continue;
            }
            let mut refs = existing.owner_references().to_vec();
            refs.push(owner.clone());
            let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": existing.resource_version()}});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {}
                Err(e) if pod_control::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// `DeleteStatefulPod`, guarded by uid so a recreated pod is spared.
    async fn delete_pod(&self, set: &StatefulSet, pod: &Pod) -> anyhow::Result<()> {
        let name = pod.name_any();
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &set.namespace().unwrap_or_default());
        let params: DeleteParams = pod_control::delete_params_for_uid(pod.metadata.uid.clone());
        match api.delete(&name, &params).await {
            Ok(_) => {
                self.event(
                    set,
                    EventType::Normal,
                    "SuccessfulDelete",
                    "Delete",
                    format!(
                        "delete Pod {name} in StatefulSet {} successful",
                        set.name_any()
                    ),
                );
                Ok(())
            }
            Err(e) if pod_control::is_not_found(&e) || pod_control::is_conflict(&e) => Ok(()),
            Err(e) => {
                self.event(
                    set,
                    EventType::Warning,
                    "FailedDelete",
                    "Delete",
                    format!(
                        "delete Pod {name} in StatefulSet {} failed error: {}",
                        set.name_any(),
                        pod_control::api_message(&e)
                    ),
                );
                Err(e.into())
            }
        }
    }

    fn event(
        &self,
        set: &StatefulSet,
        kind: EventType,
        reason: &str,
        action: &str,
        message: String,
    ) {
        self.recorder
            .record(pod_control::object_ref(set), kind, reason, action, message);
    }

    /// Deletes revisions beyond `revisionHistoryLimit` that neither the set
    /// nor any pod uses.
    async fn truncate_history(
        &self,
        set: &StatefulSet,
        revs: &Revisions,
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<()> {
        let mut live: HashSet<String> = pods
            .iter()
            .filter_map(|p| pod_revision(p).map(String::from))
            .collect();
        live.insert(revs.current.name_any());
        live.insert(revs.update.name_any());
        let limit = set
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(history::DEFAULT_REVISION_HISTORY_LIMIT);
        let api: Api<ControllerRevision> =
            Api::namespaced(self.client.clone(), &set.namespace().unwrap_or_default());
        history::truncate_history(&api, &revs.all, &live, limit).await?;
        Ok(())
    }

    /// Writes `status` when it changed. A rolling update is complete when
    /// every pod is updated and ready: the update revision becomes current.
    async fn update_status(
        &self,
        set: &StatefulSet,
        revs: &Revisions,
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<()> {
        let c = count(set, pods, revs, Timestamp::now());
        let (mut current_revision, mut current) = (revs.current.name_any(), c.current);
        let update_revision = revs.update.name_any();
        if !is_on_delete(set) && c.updated == c.replicas && c.ready == c.replicas {
            current_revision = update_revision.clone();
            current = c.updated;
        }
        let status = json!({
            "observedGeneration": set.metadata.generation.unwrap_or(0),
            "replicas": c.replicas,
            "readyReplicas": c.ready,
            "availableReplicas": c.available,
            "currentReplicas": current,
            "updatedReplicas": c.updated,
            "currentRevision": current_revision,
            "updateRevision": update_revision,
            "collisionCount": revs.collision_count,
        });
        let old = serde_json::to_value(&set.status).unwrap_or_default();
        let same = status
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| match v {
                serde_json::Value::String(_) => &old[k] == v,
                _ => old[k].as_i64().unwrap_or(0) == v.as_i64().unwrap_or(0),
            });
        if same {
            return Ok(());
        }
        let api: Api<StatefulSet> =
            Api::namespaced(self.client.clone(), &set.namespace().unwrap_or_default());
        api.patch_status(
            &set.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
        Ok(())
    }
}

fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{StatefulSetOrdinals, StatefulSetSpec};
    use k8s_openapi::api::core::v1::PodSpec;

    #[test]
    fn ordinals_parse_from_the_last_dash() {
        assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
        assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", 12)));
        assert_eq!(parent_and_ordinal("web"), None);
        assert_eq!(parent_and_ordinal("web-"), None);
        assert_eq!(parent_and_ordinal("web-x1"), None);
        assert_eq!(parent_and_ordinal("-3"), None);
        assert_eq!(pod_name("web", 7), "web-7");
        assert_eq!(claim_name("data", "web-0"), "data-web-0");
    }

    fn set() -> StatefulSet {
        let claim = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        StatefulSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                service_name: Some("nginx".into()),
                ordinals: Some(StatefulSetOrdinals { start: Some(5) }),
                selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: Some([("app".to_string(), "web".to_string())].into()),
                    ..Default::default()
                },
                volume_claim_templates: Some(vec![claim]),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn pods_get_identity_and_their_claims() {
        let s = set();
        let template = PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec::default()),
        };
        let pod = new_stateful_pod(&s, &template, 5, "web-abc");
        assert_eq!(pod.name_any(), "web-5");
        assert!(is_member_of(&s, &pod));
        let labels = pod.labels();
        assert_eq!(labels[POD_NAME_LABEL], "web-5");
        assert_eq!(labels[POD_INDEX_LABEL], "5");
        assert_eq!(labels[history::CONTROLLER_REVISION_HASH_LABEL], "web-abc");
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-5"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let vol = &spec.volumes.unwrap()[0];
        assert_eq!(vol.name, "data");
        assert_eq!(
            vol.persistent_volume_claim.as_ref().unwrap().claim_name,
            "data-web-5"
        );
        assert_eq!(start_ordinal(&s), 5);

        let claims = claims_for(&s, 5);
        assert_eq!(claims[0].name_any(), "data-web-5");
        assert_eq!(claims[0].labels()["app"], "web");
        assert!(
            claims[0].metadata.owner_references.is_none(),
            "Retain by default"
        );
    }

    #[test]
    fn max_unavailable_scales_down_but_is_at_least_one() {
        use k8s_openapi::api::apps::v1::{
            RollingUpdateStatefulSetStrategy, StatefulSetUpdateStrategy,
        };
        let mut s = set();
        assert_eq!(max_unavailable(&s), None);
        let spec = s.spec.as_mut().unwrap();
        spec.replicas = Some(10);
        spec.update_strategy = Some(StatefulSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateStatefulSetStrategy {
                max_unavailable: Some(IntOrString::String("25%".into())),
                partition: Some(2),
            }),
        });
        assert_eq!(max_unavailable(&s), Some(2));
        assert_eq!(partition(&s), 2);
        s.spec.as_mut().unwrap().replicas = Some(3);
        assert_eq!(max_unavailable(&s), Some(1));
    }
}
