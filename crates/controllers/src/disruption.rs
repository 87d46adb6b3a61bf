//! DisruptionController: keeps every PodDisruptionBudget's `status` current,
//! as kube-controller-manager's `disruption` controller does
//! (`pkg/controller/disruption/disruption.go`).
//!
//! For each budget it counts the pods its selector picks: `expectedPods`,
//! `currentHealthy` (Ready, not being deleted, not just approved for eviction),
//! `desiredHealthy` (from `minAvailable`, or from `maxUnavailable` and the
//! scale of the pods' controllers), `disruptionsAllowed`, the pruned
//! `disruptedPods`, `observedGeneration` and the `DisruptionAllowed`
//! condition. The eviction subresource reads that status to admit or refuse
//! evictions, and writes `disruptedPods` back; this controller drops entries
//! once their pod is seen being deleted, or after two minutes.
//!
//! Watch events only enqueue budget keys (a pod maps to the budgets whose
//! selector picks it, before and after the change); `reconcile` reads
//! everything again from the caches. The arithmetic is in plain functions
//! ([`expected_and_desired`], [`build_disrupted_pod_map`],
//! [`count_healthy_pods`], [`calculate_status`]) tested with tables below.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ObjectReference, Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{
    PodDisruptionBudget, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::informer::{key_of, Change, Informer};
use crate::pod_control::controller_of;
use crate::replicaset::is_pod_ready;
use crate::workqueue::WorkQueue;

/// How long a pod approved for eviction (in `status.disruptedPods`) is
/// assumed to be on its way out before it counts as healthy again
/// (`DeletionTimeout`).
pub const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_mins(2);

/// How long a pod may carry `DisruptionTarget=True` without being deleted
/// before the condition is reset to False (`stalePodDisruptionTimeout`).
pub const STALE_POD_DISRUPTION_TIMEOUT: SignedDuration = SignedDuration::from_mins(2);

/// The condition this controller owns, and its reasons (`policy/v1`).
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
pub const SUFFICIENT_PODS: &str = "SufficientPods";
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
pub const SYNC_FAILED: &str = "SyncFailed";

/// The name the controller writes and reports events under.
const CONTROLLER_NAME: &str = "disruption-controller";
const FIELD_MANAGER: &str = "kube-controller-manager";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The budget's numbers cannot be computed (upstream's failSafe case:
    /// the status then allows no disruption).
    #[error("{0}")]
    Calculate(String),
    #[error("looking up the scale of {kind} {namespace}/{name}")]
    Scale {
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("writing the status of PodDisruptionBudget {key}")]
    WriteStatus {
        key: String,
        #[source]
        source: Box<kube::Error>,
    },
}

impl Error {
    fn is_conflict(&self) -> bool {
        matches!(self, Error::WriteStatus { source, .. } if matches!(**source, kube::Error::Api(ref s) if s.code == 409))
    }

    /// The error and its causes on one line, for the SyncFailed condition.
    fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cause = c.source();
        }
        out
    }
}

// ---- pure computations ----

/// Whether `pdb` selects `pod` (same namespace, selector matches).
pub fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    pdb.namespace() == pod.namespace()
        && pdb
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .is_some_and(|sel| client::labels::matches(sel, pod.labels()))
}

/// `intstr.GetScaledValueFromIntOrPercent(v, total, roundUp=true)`.
pub fn scaled_value(v: &IntOrString, total: i32) -> Result<i32, Error> {
    match v {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let Some(pct) = s.strip_suffix('%') else {
                return Err(Error::Calculate(
                    "invalid value for IntOrString: invalid type: string is not a percentage"
                        .into(),
                ));
            };
            let pct: i64 = pct.parse().map_err(|_| {
                Error::Calculate(format!(
                    "invalid value for IntOrString: invalid value {s:?}: not an integer"
                ))
            })?;
            let scaled = (pct * i64::from(total)).div_euclid(100)
                + i64::from((pct * i64::from(total)).rem_euclid(100) != 0);
            Ok(scaled.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
        }
    }
}

/// Whether the budget's numbers depend on the scale of the pods'
/// controllers: any `maxUnavailable`, or a percentage `minAvailable`.
pub fn needs_scale(spec: &PodDisruptionBudgetSpec) -> bool {
    spec.max_unavailable.is_some() || matches!(spec.min_available, Some(IntOrString::String(_)))
}

/// `getExpectedPodCount`: `(expectedPods, desiredHealthy)` from the spec,
/// the number of selected pods, and the summed scale of their controllers
/// (only read when [`needs_scale`]).
pub fn expected_and_desired(
    spec: &PodDisruptionBudgetSpec,
    pod_count: i32,
    controllers_scale: i32,
) -> Result<(i32, i32), Error> {
    if let Some(max_unavailable) = &spec.max_unavailable {
        let expected = controllers_scale;
        let max = scaled_value(max_unavailable, expected)?;
        return Ok((expected, (expected - max).max(0)));
    }
    match &spec.min_available {
        Some(IntOrString::Int(n)) => Ok((pod_count, *n)),
        Some(min @ IntOrString::String(_)) => {
            let expected = controllers_scale;
            Ok((expected, scaled_value(min, expected)?))
        }
        None => Ok((0, 0)),
    }
}

fn deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// `buildDisruptedPodMap`: the entries of `status.disruptedPods` still
/// pending (pod present, not yet being deleted, approved less than
/// [`DELETION_TIMEOUT`] ago), and when the earliest of them expires.
pub fn build_disrupted_pod_map(
    pods: &[Arc<Pod>],
    disrupted: Option<&BTreeMap<String, Time>>,
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Timestamp>) {
    let mut result = BTreeMap::new();
    let mut recheck: Option<Timestamp> = None;
    let Some(disrupted) = disrupted else {
        return (result, recheck);
    };
    for pod in pods {
        if deleting(pod) {
            continue;
        }
        let Some(at) = disrupted.get(&pod.name_any()) else {
            continue;
        };
        let expires = at.0 + DELETION_TIMEOUT;
        if expires < now {
            tracing::info!(pod = %pod.name_any(), "pod was expected to be deleted but it wasn't");
            continue;
        }
        recheck = Some(recheck.map_or(expires, |r| r.min(expires)));
        result.insert(pod.name_any(), at.clone());
    }
    (result, recheck)
}

/// `countHealthyPods`: Ready pods that are neither being deleted nor
/// approved for eviction within the last [`DELETION_TIMEOUT`].
pub fn count_healthy_pods(
    pods: &[Arc<Pod>],
    disrupted: &BTreeMap<String, Time>,
    now: Timestamp,
) -> i32 {
    pods.iter()
        .filter(|p| !deleting(p))
        .filter(|p| {
            disrupted
                .get(&p.name_any())
                .is_none_or(|at| at.0 + DELETION_TIMEOUT <= now)
        })
        .filter(|p| is_pod_ready(p))
        .count() as i32
}

/// `meta.SetStatusCondition`: adds or updates the condition of the same
/// type; the transition time moves only when the status changes.
pub fn set_status_condition(conditions: &mut Vec<Condition>, new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        None => conditions.push(new),
        Some(c) => {
            if c.status != new.status {
                c.status = new.status;
                c.last_transition_time = new.last_transition_time;
            }
            c.reason = new.reason;
            c.message = new.message;
            c.observed_generation = new.observed_generation;
        }
    }
}

fn disruption_condition(
    status: &str,
    reason: &str,
    message: String,
    observed: Option<i64>,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: observed.filter(|g| *g != 0),
        last_transition_time: Time(now),
    }
}

/// `UpdateDisruptionAllowedCondition`.
pub fn update_disruption_allowed_condition(status: &mut PodDisruptionBudgetStatus, now: Timestamp) {
    let cond = if status.disruptions_allowed > 0 {
        disruption_condition(
            "True",
            SUFFICIENT_PODS,
            String::new(),
            status.observed_generation,
            now,
        )
    } else {
        disruption_condition(
            "False",
            INSUFFICIENT_PODS,
            String::new(),
            status.observed_generation,
            now,
        )
    };
    set_status_condition(status.conditions.get_or_insert_with(Vec::new), cond);
}

/// The numbers a sync computed for one budget.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub current_healthy: i32,
    pub desired_healthy: i32,
    pub expected_pods: i32,
    pub disrupted_pods: BTreeMap<String, Time>,
}

/// `updatePdbStatus`'s new status: disruptions are allowed only while pods
/// are expected and more are healthy than desired.
pub fn calculate_status(
    pdb: &PodDisruptionBudget,
    observed: Observed,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut allowed = observed.current_healthy - observed.desired_healthy;
    if observed.expected_pods <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let old = pdb.status.clone().unwrap_or_default();
    let mut status = PodDisruptionBudgetStatus {
        current_healthy: observed.current_healthy,
        desired_healthy: observed.desired_healthy,
        expected_pods: observed.expected_pods,
        disruptions_allowed: allowed,
        disrupted_pods: (!observed.disrupted_pods.is_empty()).then_some(observed.disrupted_pods),
        observed_generation: pdb.metadata.generation,
        conditions: old.conditions,
    };
    update_disruption_allowed_condition(&mut status, now);
    status
}

/// `failSafe`: no disruption allowed, and why, when the numbers could not
/// be computed.
pub fn fail_safe_status(
    pdb: &PodDisruptionBudget,
    message: String,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut status = pdb.status.clone().unwrap_or_default();
    status.disruptions_allowed = 0;
    let cond = disruption_condition(
        "False",
        SYNC_FAILED,
        message,
        status.observed_generation,
        now,
    );
    set_status_condition(status.conditions.get_or_insert_with(Vec::new), cond);
    status
}

/// Whether two statuses say the same (empty and absent maps/lists alike).
fn same_status(a: &PodDisruptionBudgetStatus, b: &PodDisruptionBudgetStatus) -> bool {
    let norm = |s: &PodDisruptionBudgetStatus| {
        let mut s = s.clone();
        s.disrupted_pods = s.disrupted_pods.filter(|m| !m.is_empty());
        s.conditions = s.conditions.filter(|c| !c.is_empty());
        s.observed_generation = s.observed_generation.filter(|g| *g != 0);
        s
    };
    norm(a) == norm(b)
}

/// Whether `pod` carries a `DisruptionTarget=True` condition that its
/// deletion never followed; `Some(when)` it becomes stale.
pub fn stale_disruption_deadline(pod: &Pod) -> Option<Timestamp> {
    if deleting(pod) {
        return None;
    }
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let cond = status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "DisruptionTarget")?;
    if cond.status != "True" || cond.reason.as_deref() == Some("TerminationByKubelet") {
        return None;
    }
    Some(
        cond.last_transition_time
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
            + STALE_POD_DISRUPTION_TIMEOUT,
    )
}

// ---- the controller ----

struct Context {
    client: kube::Client,
    pdbs: Informer<PodDisruptionBudget>,
    pods: Informer<Pod>,
    replica_sets: Informer<ReplicaSet>,
    deployments: Informer<Deployment>,
    stateful_sets: Informer<StatefulSet>,
    replication_controllers: Informer<ReplicationController>,
    recorder: Recorder,
}

/// The budgets in the pod's namespace that select it.
fn budgets_selecting(pdbs: &Informer<PodDisruptionBudget>, pod: &Pod) -> Vec<String> {
    pdbs.list_namespace(&pod.namespace().unwrap_or_default())
        .iter()
        .filter(|pdb| selects(pdb, pod))
        .map(|pdb| key_of(pdb.as_ref()))
        .collect()
}

/// Queues every budget in `namespace` when a workload's scale changed
/// (or it came or went): budgets with `maxUnavailable` or percentages
/// read it.
fn on_workload_change<K: crate::informer::Kind>(
    workloads: &Informer<K>,
    pdbs: &Informer<PodDisruptionBudget>,
    queue: &WorkQueue,
    replicas: fn(&K) -> Option<i32>,
) {
    let (pdbs, queue) = (pdbs.clone(), queue.clone());
    workloads.on_change(move |change| {
        let scale_changed = match change {
            Change::Applied {
                old: Some(old),
                new,
            } => replicas(old) != replicas(new),
            _ => true,
        };
        if scale_changed {
            let ns = change.object().meta().namespace.clone().unwrap_or_default();
            for pdb in pdbs.list_namespace(&ns) {
                queue.add(key_of(pdb.as_ref()));
            }
        }
    });
}

/// Runs the DisruptionController until `shutdown`.
pub async fn run(ctx: crate::Context, shutdown: CancellationToken) -> Result<(), Error> {
    let informers = &ctx.informers;
    let reporter = Reporter {
        controller: CONTROLLER_NAME.into(),
        instance: None,
    };
    let c = Arc::new(Context {
        client: ctx.client.clone(),
        pdbs: informers.get(),
        pods: informers.pods(),
        replica_sets: informers.get(),
        deployments: informers.get(),
        stateful_sets: informers.get(),
        replication_controllers: informers.get(),
        recorder: Recorder::new(ctx.client.clone(), reporter),
    });
    let queue = WorkQueue::new("disruption");
    {
        let queue = queue.clone();
        c.pdbs
            .on_change(move |change| queue.add(key_of(change.object().as_ref())));
    }
    {
        // A pod wakes the budgets that select it now and those that did.
        let (queue, pdbs) = (queue.clone(), c.pdbs.clone());
        c.pods.on_change(move |change| {
            let mut keys = budgets_selecting(&pdbs, change.object());
            if let Some(old) = change.old() {
                keys.extend(budgets_selecting(&pdbs, old));
            }
            for key in keys {
                queue.add(key);
            }
        });
    }
    on_workload_change(&c.replica_sets, &c.pdbs, &queue, |o| {
        o.spec.as_ref().and_then(|s| s.replicas)
    });
    on_workload_change(&c.deployments, &c.pdbs, &queue, |o| {
        o.spec.as_ref().and_then(|s| s.replicas)
    });
    on_workload_change(&c.stateful_sets, &c.pdbs, &queue, |o| {
        o.spec.as_ref().and_then(|s| s.replicas)
    });
    on_workload_change(&c.replication_controllers, &c.pdbs, &queue, |o| {
        o.spec.as_ref().and_then(|s| s.replicas)
    });
    let stale = tokio::spawn(clear_stale_disruption_conditions(
        c.client.clone(),
        c.pods.clone(),
        shutdown.child_token(),
    ));
    wait_for_caches(&c).await;
    queue
        .run(2, shutdown, move |key| {
            let c = c.clone();
            async move { reconcile(&key, &c).await.map_err(|e| e.chain()) }
        })
        .await;
    stale.abort();
    Ok(())
}

async fn wait_for_caches(ctx: &Context) {
    futures::join!(
        ctx.pods.wait_synced(),
        ctx.pdbs.wait_synced(),
        ctx.replica_sets.wait_synced(),
        ctx.deployments.wait_synced(),
        ctx.stateful_sets.wait_synced(),
        ctx.replication_controllers.wait_synced(),
    );
}

/// `sync`: recompute one budget's status from the caches; on a failure
/// other than a write conflict, write the fail-safe status.
async fn reconcile(key: &str, ctx: &Context) -> Result<Option<Duration>, Error> {
    let Some(pdb) = ctx.pdbs.get(key) else {
        return Ok(None);
    };
    let span = tracing::debug_span!("sync", pdb = %key);
    let _enter = span.enter();
    match try_sync(ctx, &pdb).await {
        Err(e) if !e.is_conflict() => {
            tracing::warn!(error = %e.chain(), "failed to sync PodDisruptionBudget");
            let status = fail_safe_status(&pdb, e.chain(), Timestamp::now());
            write_status(ctx, &pdb, status).await?;
            Err(e)
        }
        other => other,
    }
}
async fn try_sync(ctx: &Context, pdb: &PodDisruptionBudget) -> Result<Option<Duration>, Error> {
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .list_namespace(&pdb.namespace().unwrap_or_default())
        .into_iter()
        .filter(|p| selects(pdb, p))
        .collect();
    if pods.is_empty() {
        publish(
            ctx,
            pdb,
            EventType::Normal,
            "NoPods",
            "No matching pods found".into(),
        )
        .await;
    }
    let spec = pdb.spec.clone().unwrap_or_default();
    let mut unmanaged = Vec::new();
    let scale = if needs_scale(&spec) {
        match expected_scale(ctx, &pods, &mut unmanaged).await {
            Ok(s) => s,
            Err(e) => {
                publish(
                    ctx,
                    pdb,
                    EventType::Warning,
                    "CalculateExpectedPodCountFailed",
                    format!(
                        "Failed to calculate the number of expected pods: {}",
                        e.chain()
                    ),
                )
                .await;
                return Err(e);
            }
        }
    } else {
        0
    };
    let (expected, desired) = expected_and_desired(&spec, pods.len() as i32, scale)?;
    if !unmanaged.is_empty() {
        tracing::debug!(pods = ?unmanaged, "found unmanaged pods associated with this PDB");
        let selector = spec
            .selector
            .as_ref()
            .map(|s| serde_json::to_string(s).unwrap_or_default())
            .unwrap_or_else(|| "nil".into());
        publish(
            ctx,
            pdb,
            EventType::Warning,
            "UnmanagedPods",
            format!("Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value."),
        )
        .await;
    }
    let now = Timestamp::now();
    let old_disrupted = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref());
    let (disrupted, recheck) = build_disrupted_pod_map(&pods, old_disrupted, now);
    let healthy = count_healthy_pods(&pods, &disrupted, now);
    let status = calculate_status(
        pdb,
        Observed {
            current_healthy: healthy,
            desired_healthy: desired,
            expected_pods: expected,
            disrupted_pods: disrupted,
        },
        now,
    );
    write_status(ctx, pdb, status).await?;
    // Once the earliest approved eviction expires, the pod counts again.
    Ok(recheck.map(|at| {
        Duration::try_from(at.duration_since(now)).unwrap_or_default() + Duration::from_secs(1)
    }))
}

/// Writes `status` through the status subresource unless it says what the
/// stored one says; guarded by the cached resourceVersion.
async fn write_status(
    ctx: &Context,
    pdb: &PodDisruptionBudget,
    status: PodDisruptionBudgetStatus,
) -> Result<(), Error> {
    if pdb
        .status
        .as_ref()
        .is_some_and(|old| same_status(old, &status))
    {
        return Ok(());
    }
    let mut new = pdb.clone();
    new.status = Some(status);
    new.metadata.managed_fields = None;
    let ns = pdb.namespace().unwrap_or_default();
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), &ns);
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    api.replace_status(&pdb.name_any(), &pp, &new)
        .await
        .map_err(|source| Error::WriteStatus {
            key: format!("{ns}/{}", pdb.name_any()),
            source: Box::new(source),
        })?;
    Ok(())
}

async fn publish(
    ctx: &Context,
    pdb: &PodDisruptionBudget,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let reference: ObjectReference = pdb.object_ref(&());
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Sync".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &reference).await {
        tracing::debug!(error = %e, "recording event failed");
    }
}

/// `getExpectedScale`: the summed scale of the controllers of `pods`
/// (each counted once); pods without a controller are listed in
/// `unmanaged` and left out.
async fn expected_scale(
    ctx: &Context,
    pods: &[Arc<Pod>],
    unmanaged: &mut Vec<String>,
) -> Result<i32, Error> {
    let mut scales: HashMap<String, i32> = HashMap::new();
    for pod in pods {
        let Some(cref) = pod
            .owner_references()
            .iter()
            .find(|r| r.controller == Some(true))
        else {
            unmanaged.push(pod.name_any());
            continue;
        };
        if scales.contains_key(&cref.uid) {
            continue;
        }
        let ns = pod.namespace().unwrap_or_default();
        match controller_scale(ctx, &ns, cref).await? {
            Some((uid, scale)) => {
                scales.insert(uid, scale);
            }
            None => {
                return Err(Error::Calculate(format!(
                    "found no controllers for pod {:?}",
                    pod.name_any()
                )))
            }
        }
    }
    Ok(scales.values().sum())
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The uid and scale of the controller `cref` names, tried as upstream's
/// finders are: ReplicationController, Deployment (through its ReplicaSet),
/// ReplicaSet, StatefulSet, then any kind with a `scale` subresource.
async fn controller_scale(
    ctx: &Context,
    ns: &str,
    cref: &OwnerReference,
) -> Result<Option<(String, i32)>, Error> {
    let group = group_of(&cref.api_version);
    let key = |name: &str| format!("{ns}/{name}");
    match (group, cref.kind.as_str()) {
        ("", "ReplicationController") => Ok(ctx
            .replication_controllers
            .get(&key(&cref.name))
            .filter(|rc| rc.metadata.uid.as_deref() == Some(cref.uid.as_str()))
            .map(|rc| {
                (
                    cref.uid.clone(),
                    rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                )
            })),
        ("apps" | "extensions", "ReplicaSet") => {
            let Some(rs) = ctx
                .replica_sets
                .get(&key(&cref.name))
                .filter(|rs| rs.metadata.uid.as_deref() == Some(cref.uid.as_str()))
            else {
                return Ok(None);
            };
            if let Some(dref) = controller_of(&rs.metadata) {
                if dref.kind == "Deployment"
                    && matches!(group_of(&dref.api_version), "apps" | "extensions")
                {
                    if let Some(d) = ctx
                        .deployments
                        .get(&key(&dref.name))
                        .filter(|d| d.metadata.uid.as_deref() == Some(dref.uid.as_str()))
                    {
                        return Ok(Some((
                            dref.uid.clone(),
                            d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                        )));
                    }
                }
            }
            // Not under a (live) Deployment: the ReplicaSet's own scale.
            Ok(Some((
                cref.uid.clone(),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            )))
        }
        ("apps", "StatefulSet") => Ok(ctx
            .stateful_sets
            .get(&key(&cref.name))
            .filter(|ss| ss.metadata.uid.as_deref() == Some(cref.uid.as_str()))
            .map(|ss| {
                (
                    cref.uid.clone(),
                    ss.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                )
            })),
        ("apps" | "extensions", "Deployment") => Ok(ctx
            .deployments
            .get(&key(&cref.name))
            .filter(|d| d.metadata.uid.as_deref() == Some(cref.uid.as_str()))
            .map(|d| {
                (
                    cref.uid.clone(),
                    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                )
            })),
        _ => scale_subresource(ctx, ns, cref).await,
    }
}

/// `getScaleController`: any other kind, through its `scale` subresource.
async fn scale_subresource(
    ctx: &Context,
    ns: &str,
    cref: &OwnerReference,
) -> Result<Option<(String, i32)>, Error> {
    let fail = |source: kube::Error| Error::Scale {
        kind: cref.kind.clone(),
        namespace: ns.to_string(),
        name: cref.name.clone(),
        source: Box::new(source),
    };
    let (group, version) = match cref.api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), cref.api_version.clone()),
    };
    let gvk = kube::api::GroupVersionKind::gvk(&group, &version, &cref.kind);
    let (resource, caps) = kube::discovery::pinned_kind(&ctx.client, &gvk)
        .await
        .map_err(fail)?;
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), ns, &resource);
    match api.get_scale(&cref.name).await {
        Ok(scale) => Ok(
            (scale.metadata.uid.as_deref() == Some(cref.uid.as_str())).then(|| {
                (
                    cref.uid.clone(),
                    scale.spec.and_then(|s| s.replicas).unwrap_or(0),
                )
            }),
        ),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            if caps.subresources.iter().any(|(r, _)| r.plural == "scale") {
                Ok(None)
            } else {
                let gr = if group.is_empty() {
                    resource.plural.clone()
                } else {
                    format!("{}.{group}", resource.plural)
                };
                Err(Error::Calculate(format!(
                    "{gr} does not implement the scale subresource"
                )))
            }
        }
        Err(e) => Err(fail(e)),
    }
}

/// The stale-condition part of upstream's controller: a pod marked
/// `DisruptionTarget=True` (by an eviction whose delete never happened)
/// gets the condition set to False once [`STALE_POD_DISRUPTION_TIMEOUT`]
/// has passed. Scans the pod cache every few seconds.
async fn clear_stale_disruption_conditions(
    client: kube::Client,
    pods: Informer<Pod>,
    shutdown: CancellationToken,
) {
    pods.wait_synced().await;
    loop {
        let now = Timestamp::now();
        for pod in pods.list() {
            if stale_disruption_deadline(&pod).is_some_and(|at| at <= now) {
                let api: Api<Pod> =
                    Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
                // The same condition, False, with no reason or message:
                // guarded by the resourceVersion the decision was made on.
                let patch = serde_json::json!({
                    "metadata": {"resourceVersion": pod.resource_version()},
                    "status": {"conditions": [{
                        "type": "DisruptionTarget",
                        "status": "False",
                        "reason": null,
                        "message": null,
                        "lastTransitionTime": Time(now),
                    }]},
                });
                let pp = PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                match api
                    .patch_status(&pod.name_any(), &pp, &Patch::Strategic(&patch))
                    .await
                {
                    Ok(_) => {
                        tracing::info!(pod = %pod.name_any(), "reset stale DisruptionTarget condition to False")
                    }
                    Err(e) => {
                        tracing::debug!(pod = %pod.name_any(), error = %e, "resetting a stale DisruptionTarget condition failed")
                    }
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        LabelSelector, LabelSelectorRequirement, ObjectMeta,
    };

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn pod(name: &str, ready: bool, deleting: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                deletion_timestamp: deleting.then(|| Time(ts("2025-01-01T00:00:00Z"))),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn spec(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudgetSpec {
        PodDisruptionBudgetSpec {
            min_available: min,
            max_unavailable: max,
            ..Default::default()
        }
    }

    #[test]
    fn scaled_values_round_up() {
        let pct = |s: &str| IntOrString::String(s.into());
        for (v, total, want) in [
            (IntOrString::Int(2), 10, 2),
            (pct("50%"), 3, 2),
            (pct("50%"), 4, 2),
            (pct("10%"), 1, 1),
            (pct("0%"), 7, 0),
            (pct("100%"), 7, 7),
            (pct("34%"), 3, 2),
        ] {
            assert_eq!(scaled_value(&v, total).unwrap(), want, "{v:?} of {total}");
        }
        assert!(scaled_value(&pct("5"), 3).is_err());
        assert!(scaled_value(&pct("x%"), 3).is_err());
    }

    #[test]
    fn expected_and_desired_follow_the_spec() {
        let int = IntOrString::Int;
        let pct = |s: &str| IntOrString::String(s.into());
        // (spec, selected pods, controllers' scale) → (expected, desired)
        for (s, pods, scale, want) in [
            (spec(Some(int(2)), None), 3, 0, (3, 2)),
            (spec(Some(int(5)), None), 3, 10, (3, 5)),
            (spec(Some(pct("50%")), None), 3, 4, (4, 2)),
            (spec(Some(pct("50%")), None), 3, 3, (3, 2)),
            (spec(None, Some(int(1))), 3, 3, (3, 2)),
            (spec(None, Some(int(5))), 3, 3, (3, 0)),
            (spec(None, Some(pct("34%"))), 3, 3, (3, 1)),
            // Bare pods under maxUnavailable: no scale, nothing expected.
            (spec(None, Some(int(1))), 3, 0, (0, 0)),
            (spec(None, None), 3, 0, (0, 0)),
        ] {
            assert!(
                needs_scale(&s)
                    == (s.max_unavailable.is_some()
                        || matches!(s.min_available, Some(IntOrString::String(_))))
            );
            assert_eq!(
                expected_and_desired(&s, pods, scale).unwrap(),
                want,
                "{s:?}"
            );
        }
    }

    #[test]
    fn healthy_pods_and_disrupted_entries() {
        let now = ts("2025-01-01T00:10:00Z");
        let pods = vec![
            pod("ready", true, false),
            pod("unready", false, false),
            pod("deleting", true, true),
            pod("evicted-recently", true, false),
            pod("evicted-long-ago", true, false),
        ];
        let disrupted: BTreeMap<String, Time> = [
            ("evicted-recently", "2025-01-01T00:09:30Z"),
            ("evicted-long-ago", "2025-01-01T00:07:00Z"),
            ("deleting", "2025-01-01T00:09:00Z"),
            ("gone", "2025-01-01T00:09:00Z"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Time(ts(v))))
        .collect();
        let (kept, recheck) = build_disrupted_pod_map(&pods, Some(&disrupted), now);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["evicted-recently"]);
        assert_eq!(recheck, Some(ts("2025-01-01T00:11:30Z")));
        assert_eq!(
            count_healthy_pods(&pods, &kept, now),
            2,
            "ready and evicted-long-ago"
        );
        assert_eq!(
            build_disrupted_pod_map(&pods, None, now),
            (BTreeMap::new(), None)
        );
    }

    fn pdb(generation: i64, status: Option<PodDisruptionBudgetStatus>) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(spec(Some(IntOrString::Int(2)), None)),
            status,
        }
    }

    fn observed(current: i32, desired: i32, expected: i32) -> Observed {
        Observed {
            current_healthy: current,
            desired_healthy: desired,
            expected_pods: expected,
            disrupted_pods: BTreeMap::new(),
        }
    }

    #[test]
    fn status_and_condition() {
        let t0 = ts("2025-01-01T00:00:00Z");
        let s = calculate_status(&pdb(3, None), observed(3, 2, 3), t0);
        assert_eq!((s.disruptions_allowed, s.observed_generation), (1, Some(3)));
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (
                c.type_.as_str(),
                c.status.as_str(),
                c.reason.as_str(),
                c.observed_generation
            ),
            (DISRUPTION_ALLOWED, "True", SUFFICIENT_PODS, Some(3))
        );
        assert_eq!(c.last_transition_time, Time(t0));

        // Same numbers later: the same status, so nothing to write.
        let stored = pdb(3, Some(s.clone()));
        let again = calculate_status(&stored, observed(3, 2, 3), ts("2025-01-01T01:00:00Z"));
        assert!(same_status(&s, &again));

        // Fewer healthy pods: no disruptions, condition flips, time moves.
        let t1 = ts("2025-01-01T02:00:00Z");
        let low = calculate_status(&stored, observed(2, 2, 3), t1);
        assert_eq!(low.disruptions_allowed, 0);
        let c = &low.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", INSUFFICIENT_PODS)
        );
        assert_eq!(c.last_transition_time, Time(t1));
        assert!(!same_status(&s, &low));

        // Nothing expected: nothing allowed, however many are healthy.
        assert_eq!(
            calculate_status(&stored, observed(3, 0, 0), t1).disruptions_allowed,
            0
        );
        // More desired than healthy never goes negative.
        assert_eq!(
            calculate_status(&stored, observed(1, 3, 3), t1).disruptions_allowed,
            0
        );

        let failed = fail_safe_status(&stored, "found no controllers for pod \"x\"".into(), t1);
        assert_eq!(failed.disruptions_allowed, 0);
        let c = &failed.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", SYNC_FAILED)
        );
        assert_eq!(c.message, "found no controllers for pod \"x\"");
    }

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("tier".into(), "a".into()),
        ]
        .into();
        let req = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        };
        let sel = |ml: &[(&str, &str)], me: Vec<LabelSelectorRequirement>| LabelSelector {
            match_labels: (!ml.is_empty()).then(|| {
                ml.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            match_expressions: (!me.is_empty()).then_some(me),
        };
        for (s, want) in [
            (sel(&[], vec![]), true),
            (sel(&[("app", "web")], vec![]), true),
            (sel(&[("app", "db")], vec![]), false),
            (sel(&[], vec![req("tier", "In", &["a", "b"])]), true),
            (sel(&[], vec![req("tier", "NotIn", &["a"])]), false),
            (sel(&[], vec![req("zone", "NotIn", &["a"])]), true),
            (sel(&[], vec![req("app", "Exists", &[])]), true),
            (sel(&[], vec![req("app", "DoesNotExist", &[])]), false),
            (sel(&[], vec![req("app", "Bogus", &[])]), false),
        ] {
            assert_eq!(client::labels::matches(&s, &labels), want, "{s:?}");
        }
        let mut budget = pdb(1, None);
        assert!(
            !selects(&budget, &pod("p", true, false)),
            "no selector selects nothing"
        );
        budget.spec.as_mut().unwrap().selector = Some(sel(&[("app", "web")], vec![]));
        assert!(selects(&budget, &pod("p", true, false)));
        budget.metadata.namespace = Some("other".into());
        assert!(!selects(&budget, &pod("p", true, false)));
    }

    #[test]
    fn stale_disruption_targets() {
        let mut p = (*pod("p", true, false)).clone();
        assert_eq!(stale_disruption_deadline(&p), None);
        p.status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()
            .push(PodCondition {
                type_: "DisruptionTarget".into(),
                status: "True".into(),
                reason: Some("EvictionByEvictionAPI".into()),
                last_transition_time: Some(Time(ts("2025-01-01T00:00:00Z"))),
                ..Default::default()
            });
        assert_eq!(
            stale_disruption_deadline(&p),
            Some(ts("2025-01-01T00:02:00Z"))
        );
        p.metadata.deletion_timestamp = Some(Time(ts("2025-01-01T00:00:01Z")));
        assert_eq!(
            stale_disruption_deadline(&p),
            None,
            "being deleted: not stale"
        );
    }
}
