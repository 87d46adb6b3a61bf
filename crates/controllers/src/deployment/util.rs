//! The arithmetic and bookkeeping of rollouts (`pkg/controller/deployment/util`):
//! surge and unavailability from `maxSurge`/`maxUnavailable`, the
//! pod-template-hash, revisions and the annotations carrying them, the
//! proportions used when a deployment is scaled mid-rollout, and the
//! Deployment's conditions.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// The longest `revision-history` annotation kept (`maxRevHistoryLengthInChars`).
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Deployment annotations never copied to its ReplicaSets.
const ANNOTATIONS_TO_SKIP: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
];

// Condition types and reasons (`util/deployment_util.go`).
pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const NEW_RS_CREATED_REASON: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS_REASON: &str = "FoundNewReplicaSet";
pub const RS_UPDATED_REASON: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
pub const FAILED_RS_CREATE_REASON: &str = "ReplicaSetCreateError";
pub const PAUSED_DEPLOY_REASON: &str = "DeploymentPaused";
pub const RESUMED_DEPLOY_REASON: &str = "DeploymentResumed";

// ---- spec accessors ----

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn set_rs_replicas(rs: &mut ReplicaSet, n: i32) {
    rs.spec.get_or_insert_with(Default::default).replicas = Some(n);
}

pub fn rs_status(rs: &ReplicaSet) -> (i32, i32, i32) {
    rs.status
        .as_ref()
        .map(|s| {
            (
                s.replicas,
                s.ready_replicas.unwrap_or(0),
                s.available_replicas.unwrap_or(0),
            )
        })
        .unwrap_or((0, 0, 0))
}

pub fn is_paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

pub fn template(d: &Deployment) -> PodTemplateSpec {
    d.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

pub fn min_ready_seconds(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// `Recreate`, or `RollingUpdate` (the default).
pub fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

pub fn is_rolling_update(d: &Deployment) -> bool {
    !is_recreate(d)
}

/// `HasProgressDeadline`: set and not "forever" (MaxInt32).
pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

/// `HasRevisionHistoryLimit`.
pub fn revision_history_limit(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .filter(|s| *s != i32::MAX)
}

// ---- maxSurge / maxUnavailable ----

/// `GetScaledValueFromIntOrPercent`: a number, or a percentage of `total`
/// rounded up or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> i32 {
    match v {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let Some(p) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return s.parse().unwrap_or(0);
            };
            let scaled = p * total as i64;
            if round_up {
                (scaled + 99).div_euclid(100) as i32
            } else {
                scaled.div_euclid(100) as i32
            }
        }
    }
}

/// `ResolveFenceposts`: (surge, unavailable) for `desired` replicas — surge
/// rounds up, unavailability down; both zero would stall, so unavailability
/// becomes 1 (validation refuses that spec anyway).
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let default = IntOrString::String("25%".into());
    let surge = scaled_value(max_surge.unwrap_or(&default), desired, true);
    let unavailable = scaled_value(max_unavailable.unwrap_or(&default), desired, false);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    resolve_fenceposts(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        replicas(d),
    )
}

/// `MaxSurge`: how many pods above the desired count a rollout may run.
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    fenceposts(d).0
}

/// `MaxUnavailable`: how many pods below the desired count may be unavailable.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling_update(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

// ---- pod-template-hash ----

/// `ComputeHash`: a stable hash of the template and the collision count,
/// used as the `pod-template-hash` label and the ReplicaSet name suffix.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&(c as u32).to_le_bytes());
    }
    crate::history::safe_hash(&bytes)
}

/// A template as JSON, without the hash label and without empty values
/// (an absent map and an empty one mean the same).
fn comparable(template: &PodTemplateSpec) -> Value {
    let mut v = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    prune_empty(&mut v);
    v
}

fn prune_empty(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for x in m.values_mut() {
                prune_empty(x);
            }
            m.retain(|_, x| !is_empty_value(x));
        }
        Value::Array(a) => a.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// `EqualIgnoreHash`: the templates are equal but for `pod-template-hash`.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    comparable(a) == comparable(b)
}

/// `labels` plus `pod-template-hash=hash`.
pub fn with_hash_label(
    labels: Option<&BTreeMap<String, String>>,
    hash: &str,
) -> BTreeMap<String, String> {
    let mut l = labels.cloned().unwrap_or_default();
    l.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.into());
    l
}

// ---- ordering ----

fn created(rs: &ReplicaSet) -> Option<Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

fn name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or_default()
}

/// `ReplicaSetsByCreationTimestamp`: oldest first, then by name.
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| name(a).cmp(name(b)))
}

/// `ReplicaSetsBySizeOlder`: largest first, older first among equals.
pub fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// `ReplicaSetsBySizeNewer`: largest first, newer first among equals.
pub fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(b, a))
}

/// `ReplicaSetsByRevision`: lowest revision first, then oldest.
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(a)
        .cmp(&revision(b))
        .then_with(|| by_creation(a, b))
}

// ---- finding the new and old ReplicaSets ----

/// `FindNewReplicaSet`: the oldest ReplicaSet whose template is the
/// deployment's (several only after a race; the oldest wins).
pub fn find_new_replica_set(d: &Deployment, rs_list: &[ReplicaSet]) -> Option<ReplicaSet> {
    let t = template(d);
    let mut sorted: Vec<&ReplicaSet> = rs_list.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted
        .into_iter()
        .find(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|rt| equal_ignore_hash(rt, &t))
        })
        .cloned()
}

/// `FindOldReplicaSets`: every ReplicaSet but the new one.
pub fn find_old_replica_sets(
    rs_list: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> Vec<ReplicaSet> {
    let new_uid = new_rs.and_then(|n| n.metadata.uid.as_deref());
    rs_list
        .iter()
        .filter(|rs| new_uid.is_none() || rs.metadata.uid.as_deref() != new_uid)
        .cloned()
        .collect()
}

/// `FilterActiveReplicaSets`: those with replicas wanted.
pub fn active(rss: &[ReplicaSet]) -> Vec<ReplicaSet> {
    rss.iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .cloned()
        .collect()
}

/// `GetReplicaCountForReplicaSets`: the wanted replicas.
pub fn spec_replicas_sum(rss: &[ReplicaSet]) -> i32 {
    rss.iter().map(rs_replicas).sum()
}

/// (`GetActualReplicaCountForReplicaSets`, ready, available): the counts the
/// ReplicaSet controller reports.
pub fn status_sums(rss: &[ReplicaSet]) -> (i32, i32, i32) {
    rss.iter()
        .map(rs_status)
        .fold((0, 0, 0), |(a, b, c), (x, y, z)| (a + x, b + y, c + z))
}

/// `FindActiveOrLatest`: the one ReplicaSet with replicas, or the latest
/// when none has any; `None` when several do (a rollout is under way).
pub fn find_active_or_latest(
    new_rs: Option<&ReplicaSet>,
    old_rss: &[ReplicaSet],
) -> Option<ReplicaSet> {
    if new_rs.is_none() && old_rss.is_empty() {
        return None;
    }
    let mut all: Vec<ReplicaSet> = old_rss.to_vec();
    all.extend(new_rs.cloned());
    let act = active(&all);
    match act.len() {
        0 => new_rs
            .cloned()
            .or_else(|| old_rss.iter().max_by(|a, b| by_creation(a, b)).cloned()),
        1 => act.into_iter().next(),
        _ => None,
    }
}

/// `IsSaturated`: the new ReplicaSet has, wants and makes available all of
/// the deployment's replicas.
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let Some(desired) = annotation_i32(rs, DESIRED_REPLICAS_ANNOTATION) else {
        return false;
    };
    let want = replicas(d);
    rs_replicas(rs) == want && desired == want && rs_status(rs).2 == want
}

/// `NewRSNewReplicas`: how many replicas the new ReplicaSet may have now.
pub fn new_rs_new_replicas(d: &Deployment, all_rss: &[ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    if is_recreate(d) {
        return replicas(d);
    }
    let current = spec_replicas_sum(all_rss);
    let max_total = replicas(d) + max_surge(d);
    if current >= max_total {
        return rs_replicas(new_rs);
    }
    let scale_up = (max_total - current).min(replicas(d) - rs_replicas(new_rs));
    rs_replicas(new_rs) + scale_up
}

// ---- annotations ----

fn annotation_i32(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

/// The ReplicaSet's revision (0 when absent or unreadable).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

pub fn max_revision(rss: &[ReplicaSet]) -> i64 {
    rss.iter().map(revision).max().unwrap_or(0)
}

/// `SetReplicasAnnotations`: records the deployment's desired and maximum
/// sizes on the ReplicaSet; whether anything changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(Default::default);
    let mut changed = false;
    for (k, v) in [
        (DESIRED_REPLICAS_ANNOTATION, desired),
        (MAX_REPLICAS_ANNOTATION, max),
    ] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

/// `ReplicasAnnotationsNeedUpdate`.
pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation_i32(rs, DESIRED_REPLICAS_ANNOTATION) != Some(desired)
        || annotation_i32(rs, MAX_REPLICAS_ANNOTATION) != Some(max)
}

/// `SetNewReplicaSetAnnotations`: copies the deployment's annotations (so
/// `kubernetes.io/change-cause` shows in `rollout history`), raises the
/// revision to `new_revision` — keeping the earlier ones in
/// `revision-history` when an old ReplicaSet is brought back — and, for a
/// ReplicaSet about to be created, the replicas annotations.
pub fn set_new_replica_set_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = false;
    let annotations = rs.metadata.annotations.get_or_insert_with(Default::default);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if ANNOTATIONS_TO_SKIP.contains(&k.as_str()) || annotations.get(k) == Some(v) {
            continue;
        }
        annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old_revision = annotations.get(REVISION_ANNOTATION).cloned();
    let old = match old_revision.as_deref() {
        None | Some("") => 0,
        Some(r) => match r.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old < new_revision {
        annotations.insert(REVISION_ANNOTATION.into(), new_revision.to_string());
        changed = true;
        if let Some(old_revision) = old_revision {
            record_revision_history(annotations, &old_revision);
        }
    }
    if !exists {
        let (want, surge) = (replicas(d), max_surge(d));
        changed |= set_replicas_annotations(rs, want, want + surge);
    }
    changed
}

/// Appends `old_revision` to `revision-history`, dropping the oldest entries
/// beyond the length limit.
fn record_revision_history(annotations: &mut BTreeMap<String, String>, old_revision: &str) {
    let history = annotations
        .get(REVISION_HISTORY_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    if history.is_empty() {
        annotations.insert(REVISION_HISTORY_ANNOTATION.into(), old_revision.into());
        return;
    }
    let mut revisions: Vec<&str> = history.split(',').collect();
    let mut total = history.len() + old_revision.len() + 1;
    let mut start = 0;
    while total > MAX_REVISION_HISTORY_CHARS && start < revisions.len() {
        total -= revisions[start].len() + 1;
        start += 1;
    }
    if total <= MAX_REVISION_HISTORY_CHARS {
        revisions = revisions.split_off(start);
        revisions.push(old_revision);
        annotations.insert(REVISION_HISTORY_ANNOTATION.into(), revisions.join(","));
    }
}

// ---- proportional scaling ----

/// `getReplicaSetFraction`: how many replicas to add to (or remove from)
/// `rs` for its share of the deployment's new size, relative to the size
/// recorded in its max-replicas annotation.
fn replica_set_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    if replicas(d) == 0 {
        return -rs_replicas(rs);
    }
    let deployment_replicas = replicas(d) + max_surge(d);
    let annotated = annotation_i32(rs, MAX_REPLICAS_ANNOTATION)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated == 0 {
        return 0;
    }
    let size = rs_replicas(rs) as f64 * deployment_replicas as f64 / annotated as f64;
    size.round() as i32 - rs_replicas(rs)
}

/// `GetReplicaSetProportion`: `rs`'s share of `to_add`, bounded by what is
/// still to be added.
pub fn replica_set_proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// The new sizes of active ReplicaSets when the deployment is resized
/// mid-rollout (the proportional part of `scale`): each gets its share,
/// the first (largest) the leftover. `rss` is sorted as upstream sorts it.
pub fn proportional_sizes(d: &Deployment, rss: &[ReplicaSet], to_add: i32) -> Vec<i32> {
    let mut added = 0;
    let mut sizes: Vec<i32> = rss
        .iter()
        .map(|rs| {
            if to_add == 0 {
                return rs_replicas(rs);
            }
            let p = replica_set_proportion(rs, d, to_add, added);
            added += p;
            rs_replicas(rs) + p
        })
        .collect();
    if let Some(first) = sizes.first_mut() {
        if to_add != 0 {
            *first = (*first + to_add - added).max(0);
        }
    }
    sizes
}

// ---- conditions ----

pub fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH))
}

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    let t = now();
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(t.clone()),
        last_transition_time: Some(t),
    }
}

pub fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

pub fn condition_of<'a>(d: &'a Deployment, type_: &str) -> Option<&'a DeploymentCondition> {
    d.status.as_ref().and_then(|s| get_condition(s, type_))
}

/// `SetDeploymentCondition`: no change for the same status and reason; the
/// transition time is kept while the status stays.
pub fn set_condition(status: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = get_condition(status, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(status, &c.type_);
    status.conditions.get_or_insert_with(Vec::new).push(c);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = status.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
    }
}

/// `DeploymentComplete`: every replica updated and available, and the
/// latest spec observed.
pub fn deployment_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = replicas(d);
    s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// `DeploymentProgressing`: more updated, fewer old, or more ready or
/// available replicas than the stored status says.
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// When the Progressing condition's deadline passes (its last update plus
/// `progressDeadlineSeconds`), unless the rollout is done or already failed.
pub fn progress_deadline_at(d: &Deployment, s: &DeploymentStatus) -> Option<Timestamp> {
    let deadline = progress_deadline(d)?;
    let c = get_condition(s, PROGRESSING)?;
    if matches!(
        c.reason.as_deref(),
        Some(NEW_RS_AVAILABLE_REASON) | Some(TIMED_OUT_REASON)
    ) {
        return None;
    }
    let from = c.last_update_time.as_ref()?.0;
    Some(from + jiff::SignedDuration::from_secs(deadline as i64))
}

/// `DeploymentTimedOut`.
pub fn deployment_timed_out(d: &Deployment, s: &DeploymentStatus) -> bool {
    if progress_deadline(d).is_none() {
        return false;
    }
    match get_condition(s, PROGRESSING) {
        Some(c) if c.reason.as_deref() == Some(TIMED_OUT_REASON) => true,
        _ => progress_deadline_at(d, s).is_some_and(|at| at < Timestamp::now()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, RollingUpdateDeployment,
    };
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.into())
    }

    fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn rs(name: &str, replicas: i32, max_replicas: i32, created: i64) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: Some(
                    [(
                        MAX_REPLICAS_ANNOTATION.to_string(),
                        max_replicas.to_string(),
                    )]
                    .into(),
                ),
                creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap())),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn surge_rounds_up_and_unavailable_rounds_down() {
        assert_eq!(
            resolve_fenceposts(Some(&s("25%")), Some(&s("25%")), 10),
            (3, 2)
        );
        assert_eq!(
            resolve_fenceposts(Some(&s("25%")), Some(&s("25%")), 3),
            (1, 0)
        );
        assert_eq!(
            resolve_fenceposts(Some(&s("25%")), Some(&s("25%")), 10_000),
            (2500, 2500)
        );
        assert_eq!(
            resolve_fenceposts(Some(&IntOrString::Int(2)), Some(&s("50%")), 5),
            (2, 2)
        );
        // Both zero would never progress: one pod may be unavailable.
        assert_eq!(
            resolve_fenceposts(Some(&s("0%")), Some(&IntOrString::Int(0)), 3),
            (0, 1)
        );
        let d = deployment(3, IntOrString::Int(0), IntOrString::Int(5));
        assert_eq!(max_unavailable(&d), 3, "never more than the replicas");
        assert_eq!(max_surge(&d), 0);
    }

    #[test]
    fn recreate_has_no_surge_or_unavailability() {
        let mut d = deployment(4, s("50%"), s("50%"));
        d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        });
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 0));
    }

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn template_hash_is_stable_and_changes_with_template_and_collisions() {
        let a = compute_hash(&template("nginx:1"), None);
        assert_eq!(a, compute_hash(&template("nginx:1"), None), "stable");
        assert_eq!(a, compute_hash(&template("nginx:1").clone(), None));
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_ne!(a, compute_hash(&template("nginx:2"), None));
        assert_ne!(a, compute_hash(&template("nginx:1"), Some(1)));
        assert_ne!(
            compute_hash(&template("nginx:1"), Some(1)),
            compute_hash(&template("nginx:1"), Some(2))
        );
    }

    #[test]
    fn templates_compare_without_the_hash_label() {
        let plain = template("nginx:1");
        let mut hashed = plain.clone();
        let labels = with_hash_label(plain.metadata.as_ref().unwrap().labels.as_ref(), "abc");
        hashed.metadata.as_mut().unwrap().labels = Some(labels);
        assert!(equal_ignore_hash(&plain, &hashed));
        assert!(!equal_ignore_hash(&template("nginx:2"), &hashed));
        let mut no_labels = plain.clone();
        no_labels.metadata.as_mut().unwrap().labels = None;
        let mut only_hash = plain.clone();
        only_hash.metadata.as_mut().unwrap().labels = Some(with_hash_label(None, "abc"));
        assert!(
            equal_ignore_hash(&no_labels, &only_hash),
            "absent and empty labels are equal"
        );
    }

    #[test]
    fn scaling_mid_rollout_splits_proportionally() {
        // 10 replicas, surge 3: old has 8, new 5 (13 = 10 + 3), both
        // annotated max 13. Scaled to 20 (max 20 + 5 = 25): 12 more.
        let mut d = deployment(20, s("25%"), s("25%"));
        d.status = Some(DeploymentStatus {
            replicas: Some(13),
            ..Default::default()
        });
        let mut rss = vec![rs("old", 8, 13, 1), rs("new", 5, 13, 2)];
        rss.sort_by(by_size_newer);
        let to_add = 25 - spec_replicas_sum(&rss);
        let sizes = proportional_sizes(&d, &rss, to_add);
        // old: 8*25/13 = 15.38 → 15; new: 5*25/13 = 9.6 → 10 (capped by what is left).
        assert_eq!(sizes, vec![15, 10]);
        assert_eq!(sizes.iter().sum::<i32>(), 25);

        // Scaled down to 5 (max 5 + 2 = 7): remove 6, largest first.
        let d = deployment(5, s("25%"), s("25%"));
        let mut rss = vec![rs("old", 8, 13, 1), rs("new", 5, 13, 2)];
        rss.sort_by(by_size_older);
        let sizes = proportional_sizes(&d, &rss, 7 - 13);
        assert_eq!(sizes.iter().sum::<i32>(), 7);
        assert_eq!(sizes, vec![4, 3]);
    }

    #[test]
    fn leftovers_go_to_the_first_replica_set() {
        // Three equal sets of 1 (max 3) grown to 4 (+1 surge = 5): 2 to add;
        // fractions round 1*5/3 = 1.67 → 2, so +1 each until nothing is left.
        let d = deployment(4, IntOrString::Int(1), IntOrString::Int(0));
        let mut rss = vec![rs("a", 1, 3, 1), rs("b", 1, 3, 2), rs("c", 1, 3, 3)];
        rss.sort_by(by_size_newer);
        let sizes = proportional_sizes(&d, &rss, 2);
        assert_eq!(sizes.iter().sum::<i32>(), 5);
        assert_eq!(sizes, vec![2, 2, 1], "newest first among equals: c, b, a");
    }

    #[test]
    fn new_replica_set_grows_within_surge() {
        let d = deployment(10, s("25%"), s("25%"));
        let new = rs("new", 0, 13, 2);
        let all = vec![rs("old", 10, 13, 1), new.clone()];
        assert_eq!(new_rs_new_replicas(&d, &all, &new), 3);
        let all = vec![rs("old", 10, 13, 1), rs("new", 3, 13, 2)];
        assert_eq!(new_rs_new_replicas(&d, &all, &all[1]), 3, "surge used up");
    }

    #[test]
    fn revision_history_keeps_earlier_revisions_on_rollback() {
        let mut d = deployment(1, s("25%"), s("25%"));
        d.metadata.annotations = Some(
            [
                ("kubernetes.io/change-cause".to_string(), "undo".to_string()),
                (REVISION_ANNOTATION.to_string(), "2".to_string()),
            ]
            .into(),
        );
        let mut old = rs("old", 0, 1, 1);
        old.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(REVISION_ANNOTATION.into(), "1".into());
        assert!(set_new_replica_set_annotations(&d, &mut old, 3, true));
        let a = old.metadata.annotations.as_ref().unwrap();
        assert_eq!(a[REVISION_ANNOTATION], "3");
        assert_eq!(a[REVISION_HISTORY_ANNOTATION], "1");
        assert_eq!(a["kubernetes.io/change-cause"], "undo");
        assert!(
            !set_new_replica_set_annotations(&d, &mut old, 3, true),
            "idempotent"
        );
        assert!(set_new_replica_set_annotations(&d, &mut old, 5, true));
        assert_eq!(
            old.metadata.annotations.as_ref().unwrap()[REVISION_HISTORY_ANNOTATION],
            "1,3"
        );
    }

    #[test]
    fn the_only_active_replica_set_takes_all_scaling() {
        let old = rs("old", 0, 3, 1);
        let new = rs("new", 3, 3, 2);
        let found = find_active_or_latest(Some(&new), std::slice::from_ref(&old)).unwrap();
        assert_eq!(found.metadata.name.as_deref(), Some("new"));
        let both = rs("old", 2, 3, 1);
        assert!(
            find_active_or_latest(Some(&new), &[both]).is_none(),
            "mid-rollout"
        );
        let idle = rs("newer-old", 0, 3, 3);
        let found = find_active_or_latest(None, &[old, idle]).unwrap();
        assert_eq!(
            found.metadata.name.as_deref(),
            Some("newer-old"),
            "the latest when none is active"
        );
    }
}
