//! Pod subresources that act on other state: `binding` (what the scheduler
//! posts) and `eviction` (what `kubectl drain` posts).

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::error::{ApiError, StatusCause};
use crate::object::{meta_str, now_rfc3339};
use crate::rest::{DeleteOptions, ListOptions, Rest, Scope, WriteOptions};

/// `pods/binding`: sets `spec.nodeName` once and records `PodScheduled=True`,
/// in one write (the scheduler's hottest request).
pub async fn bind(rest: &Rest, scope: &Scope, name: &str, binding: &Value) -> Result<(), ApiError> {
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::BadRequest("target.name: Required value".into()))?
        .to_string();
    let uid = binding
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty());
    let opts = WriteOptions::default();
    let now = now_rfc3339();
    rest.update_with(scope, name, Some("binding"), &opts, |old| {
        if let Some(uid) = uid {
            if meta_str(old, "uid") != Some(uid) {
                return Err(ApiError::Conflict {
                    gr: scope.gr(),
                    name: name.to_string(),
                    message: format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta_str(old, "uid").unwrap_or_default()),
                });
            }
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::Conflict {
                gr: scope.gr(),
                name: name.to_string(),
                message: "pod is being deleted, cannot be assigned to a host".into(),
            });
        }
        if let Some(n) = old
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::Conflict {
                gr: scope.gr(),
                name: name.to_string(),
                message: format!("pod {name} is already assigned to node {n:?}"),
            });
        }
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!(node);
        let conds = new["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
        conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
        new["status"]["conditions"] = json!(conds);
        if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        Ok(new)
    })
    .await?;
    Ok(())
}

/// The Eviction versions `pods/eviction` accepts.
const EVICTION_VERSIONS: &[&str] = &["policy/v1", "policy/v1beta1"];

/// Upstream's `EvictionsRetry`: 20 tries, 500 ms apart (10% jitter).
const EVICTION_RETRY_STEPS: usize = 20;
const EVICTION_RETRY_DELAY: Duration = Duration::from_millis(500);

/// `MaxDisruptedPodSize`: more approved-but-unseen evictions than this and
/// the budget refuses further ones until the disruption controller catches up.
const MAX_DISRUPTED_POD_SIZE: usize = 2000;

async fn eviction_backoff() {
    use rand::Rng;
    let jitter = rand::rng().random_range(0.0..0.1);
    tokio::time::sleep(EVICTION_RETRY_DELAY.mul_f64(1.0 + jitter)).await;
}

/// Who the eviction's own writes are recorded as (upstream makes them
/// through its loopback client).
fn apiserver_write() -> WriteOptions {
    WriteOptions {
        field_manager: Some("kube-apiserver".into()),
        ..Default::default()
    }
}

/// `pods/eviction` (what `kubectl drain` posts), as kube-apiserver's
/// EvictionREST: a pod that is finished, pending or already being deleted
/// goes at once; otherwise the one PodDisruptionBudget that selects it must
/// allow a disruption, which the eviction takes (decrementing
/// `status.disruptionsAllowed` and recording the pod in
/// `status.disruptedPods` with a write guarded by the budget's
/// resourceVersion) before the pod is deleted with the eviction's
/// deleteOptions. A refusal is a 429 that changes nothing; clients retry.
/// `query_dry_run` is the request's `dryRun` parameter.
pub async fn evict(
    rest: &Rest,
    scope: &Scope,
    name: &str,
    eviction: &Value,
    query_dry_run: &[String],
) -> Result<(), ApiError> {
    if let Some(av) = eviction.get("apiVersion").and_then(Value::as_str) {
        if !EVICTION_VERSIONS.contains(&av) {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({av}) does not match the expected API version (policy/v1)"
            )));
        }
    }
    if let Some(kind) = eviction.get("kind").and_then(Value::as_str) {
        if kind != "Eviction" {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({kind}) does not match the expected kind (Eviction)"
            )));
        }
    }
    if crate::object::name(eviction) != name {
        return Err(ApiError::BadRequest(
            "name in URL does not match name in Eviction object".into(),
        ));
    }
    if let (Some(ns), Some(body_ns)) = (&scope.namespace, meta_str(eviction, "namespace")) {
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
    }
    let opts = DeleteOptions::from_json(&propagate_dry_run(eviction, query_dry_run)?)?;
    let rv_given = opts.precondition_resource_version.is_some();

    // Pods whose disruption already happened (or cannot count) go at once.
    let mut attempt = 0;
    let pod = loop {
        let pod = rest.get(scope, name).await?;
        if !can_ignore_pdb(&pod) {
            break pod;
        }
        let mut o = opts.clone();
        if should_enforce_resource_version(&pod) && !rv_given {
            // Not racing a pod that turns ready meanwhile.
            o.precondition_resource_version = meta_str(&pod, "resourceVersion").map(str::to_string);
        }
        match add_condition_and_delete(rest, scope, name, o).await {
            Ok(()) => return Ok(()),
            Err(ApiError::Conflict { .. }) if !rv_given && attempt + 1 < EVICTION_RETRY_STEPS => {
                attempt += 1;
                eviction_backoff().await;
            }
            Err(e) => return Err(e),
        }
    };

    let pdb_scope = rest.scope(
        "policy",
        "v1",
        "poddisruptionbudgets",
        scope.namespace.as_deref(),
    )?;
    let mut pdbs = matching_budgets(rest, &pdb_scope, &pod).await?;
    if pdbs.len() > 1 {
        return Err(ApiError::Custom {
            code: StatusCode::INTERNAL_SERVER_ERROR,
            reason: "",
            message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".into(),
            causes: Vec::new(),
            retry_after_seconds: 0,
        });
    }
    let mut pdb_name = String::new();
    let mut unhealthy_pod = false;
    if let Some(mut pdb) = pdbs.pop() {
        pdb_name = crate::object::name(&pdb).to_string();
        if !is_pod_ready(&pod) && unhealthy_pod_can_go(&pdb) {
            // An unready pod does not count towards currentHealthy: deleting
            // it disrupts nothing the budget protects.
            unhealthy_pod = true;
        } else {
            let mut attempt = 0;
            loop {
                match check_and_decrement(rest, &pdb_scope, name, &pdb, opts.dry_run).await {
                    Ok(()) => break,
                    Err(ApiError::Conflict { .. }) if attempt + 1 < EVICTION_RETRY_STEPS => {
                        attempt += 1;
                        eviction_backoff().await;
                        pdb = rest.get(&pdb_scope, &pdb_name).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let mut o = opts.clone();
    if unhealthy_pod {
        // The pod must still be the unready one the decision was made on.
        o.precondition_resource_version = meta_str(&pod, "resourceVersion").map(str::to_string);
    }
    match add_condition_and_delete(rest, scope, name, o).await {
        Err(ApiError::Conflict { .. }) if unhealthy_pod && !rv_given => {
            Err(budget_still_processing(&pdb_name))
        }
        other => other,
    }
}

/// The eviction's deleteOptions with the request's `dryRun` pushed in
/// (`propagateDryRun`); both set and different is an error.
fn propagate_dry_run(eviction: &Value, query: &[String]) -> Result<Value, ApiError> {
    let mut d = eviction
        .get("deleteOptions")
        .filter(|d| d.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let body: Vec<String> = d
        .get("dryRun")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if body.is_empty() {
        if !query.is_empty() {
            d["dryRun"] = json!(query);
        }
    } else if !query.is_empty() && query != body.as_slice() {
        return Err(ApiError::BadRequest(format!(
            "Non-matching dry-run options in request and content: [{}] and [{}]",
            query.join(" "),
            body.join(" ")
        )));
    }
    Ok(d)
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn deleting(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// `canIgnorePDB`: finished, pending and deleting pods are evicted without
/// consulting a budget.
fn can_ignore_pdb(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || deleting(pod)
}

/// `shouldEnforceResourceVersion`: all but finished or deleting pods.
fn should_enforce_resource_version(pod: &Value) -> bool {
    !(matches!(phase(pod), "Succeeded" | "Failed") || deleting(pod))
}

/// `IsPodReady`: a `Ready` condition with status `True`.
pub fn is_pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn status_i64(pdb: &Value, field: &str) -> i64 {
    pdb.pointer(&format!("/status/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Whether an unready pod under `pdb` may go without taking a disruption:
/// always with `unhealthyPodEvictionPolicy: AlwaysAllow`; with the default
/// `IfHealthyBudget` only while the budget is met.
fn unhealthy_pod_can_go(pdb: &Value) -> bool {
    if pdb
        .pointer("/spec/unhealthyPodEvictionPolicy")
        .and_then(Value::as_str)
        == Some("AlwaysAllow")
    {
        return true;
    }
    let desired = status_i64(pdb, "desiredHealthy");
    status_i64(pdb, "currentHealthy") >= desired && desired > 0
}

/// The budgets in the pod's namespace whose selector selects it. A missing
/// or unparsable selector selects nothing; an empty one selects every pod.
async fn matching_budgets(
    rest: &Rest,
    pdb_scope: &Scope,
    pod: &Value,
) -> Result<Vec<Value>, ApiError> {
    let labels = pod.pointer("/metadata/labels");
    let list = rest.list(pdb_scope, &ListOptions::default()).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|pdb| {
            pdb.pointer("/spec/selector")
                .filter(|s| !s.is_null())
                .and_then(|s| crate::selectors::LabelSelector::from_object(s).ok())
                .is_some_and(|s| s.matches(labels))
        })
        .collect())
}

const BUDGET_VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn budget_refusal(cause: String, retry_after_seconds: u32) -> ApiError {
    ApiError::Custom {
        code: StatusCode::TOO_MANY_REQUESTS,
        reason: "TooManyRequests",
        message: BUDGET_VIOLATION.into(),
        causes: vec![StatusCause {
            reason: "DisruptionBudget".into(),
            message: cause,
        }],
        retry_after_seconds,
    }
}

/// `createTooManyRequestsError`: the budget's status is not current.
fn budget_still_processing(pdb_name: &str) -> ApiError {
    budget_refusal(
        format!("The disruption budget {pdb_name} is still being processed by the server."),
        10,
    )
}

fn budget_forbids(pdb_name: &str, message: &str) -> ApiError {
    ApiError::ForbiddenObject {
        gr: crate::error::GroupResource {
            group: "policy".into(),
            resource: "poddisruptionbudget".into(),
        },
        name: pdb_name.to_string(),
        message: message.into(),
    }
}

/// `checkAndDecrement`: refuses unless the budget's status is current and
/// allows a disruption; then takes one and records the pod (not on dry run).
/// The write is guarded by the budget's resourceVersion: a Conflict means
/// someone else changed it and the caller reads it again.
async fn check_and_decrement(
    rest: &Rest,
    pdb_scope: &Scope,
    pod_name: &str,
    pdb: &Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let pdb_name = crate::object::name(pdb);
    let generation = pdb
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if status_i64(pdb, "observedGeneration") < generation {
        return Err(budget_still_processing(pdb_name));
    }
    let allowed = status_i64(pdb, "disruptionsAllowed");
    if allowed < 0 {
        return Err(budget_forbids(
            pdb_name,
            "pdb disruptions allowed is negative",
        ));
    }
    let disrupted = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_POD_SIZE {
        return Err(budget_forbids(
            pdb_name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(budget_refusal(
            format!(
                "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
                status_i64(pdb, "desiredHealthy"),
                status_i64(pdb, "currentHealthy")
            ),
            0,
        ));
    }
    let now = now_rfc3339();
    let mut new = pdb.clone();
    new["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if allowed - 1 == 0 {
        update_disruption_allowed_condition(&mut new, &now);
    }
    if dry_run {
        return Ok(());
    }
    if !new["status"]["disruptedPods"].is_object() {
        new["status"]["disruptedPods"] = json!({});
    }
    new["status"]["disruptedPods"][pod_name] = json!(now);
    // `new` keeps the resourceVersion it was read at: the write is refused
    // with a Conflict if the budget changed since.
    rest.update_with(
        pdb_scope,
        pdb_name,
        Some("status"),
        &apiserver_write(),
        |_| Ok(new.clone()),
    )
    .await?;
    Ok(())
}

/// `UpdateDisruptionAllowedCondition`: `DisruptionAllowed` True with reason
/// `SufficientPods` while disruptions are allowed, else False with
/// `InsufficientPods`; set as `meta.SetStatusCondition` does.
fn update_disruption_allowed_condition(pdb: &mut Value, now: &str) {
    let allowed = status_i64(pdb, "disruptionsAllowed") > 0;
    let observed = status_i64(pdb, "observedGeneration");
    let (status, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let mut conditions = pdb
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match conditions
        .iter_mut()
        .find(|c| c["type"] == "DisruptionAllowed")
    {
        Some(c) => {
            if c["status"] != status {
                c["status"] = json!(status);
                c["lastTransitionTime"] = json!(now);
            }
            c["reason"] = json!(reason);
            c["message"] = json!("");
            if observed > 0 {
                c["observedGeneration"] = json!(observed);
            } else if let Some(m) = c.as_object_mut() {
                m.remove("observedGeneration");
            }
        }
        None => {
            let mut c = json!({
                "type": "DisruptionAllowed",
                "status": status,
                "lastTransitionTime": now,
                "reason": reason,
                "message": "",
            });
            if observed > 0 {
                c["observedGeneration"] = json!(observed);
            }
            conditions.push(c);
        }
    }
    pdb["status"]["conditions"] = Value::Array(conditions);
}

/// `addConditionAndDeletePod`: unless a dry run, marks the pod with
/// `DisruptionTarget=True` (reason `EvictionByEvictionAPI`) after checking
/// the preconditions against the latest pod, then deletes it with `opts`
/// (a resourceVersion precondition moved on past the condition's own write).
async fn add_condition_and_delete(
    rest: &Rest,
    scope: &Scope,
    name: &str,
    mut opts: DeleteOptions,
) -> Result<(), ApiError> {
    if !opts.dry_run {
        let conflict = |message: String| ApiError::Conflict {
            gr: crate::error::GroupResource {
                group: String::new(),
                resource: "Pod".into(),
            },
            name: name.to_string(),
            message,
        };
        let now = now_rfc3339();
        let updated = rest
            .update_with(scope, name, Some("status"), &apiserver_write(), |latest| {
                let uid = meta_str(latest, "uid").unwrap_or_default();
                if let Some(want) = opts.precondition_uid.as_deref().filter(|u| !u.is_empty()) {
                    if want != uid {
                        return Err(conflict(format!("the UID in the precondition ({want}) does not match the UID in record ({uid}). The object might have been deleted and then recreated")));
                    }
                }
                let rv = meta_str(latest, "resourceVersion").unwrap_or_default();
                if let Some(want) = opts
                    .precondition_resource_version
                    .as_deref()
                    .filter(|r| !r.is_empty())
                {
                    if want != rv {
                        return Err(conflict(format!("the ResourceVersion in the precondition ({want}) does not match the ResourceVersion in record ({rv}). The object might have been modified")));
                    }
                }
                let mut new = latest.clone();
                set_pod_condition(
                    &mut new,
                    json!({
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "EvictionByEvictionAPI",
                        "message": "Eviction API: evicting",
                        "lastProbeTime": null,
                        "lastTransitionTime": now,
                    }),
                );
                // Not pinned: a concurrent write re-runs these checks on
                // the newer pod instead of failing.
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove("resourceVersion");
                }
                Ok(new)
            })
            .await?;
        if opts.precondition_resource_version.is_some() {
            opts.precondition_resource_version =
                meta_str(&updated, "resourceVersion").map(str::to_string);
        }
    }
    rest.delete(scope, name, &opts).await?;
    Ok(())
}

/// `UpdatePodCondition`: replaces the condition of the same type, keeping
/// its lastTransitionTime when the status did not change.
fn set_pod_condition(pod: &mut Value, mut cond: Value) {
    let mut conditions = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match conditions.iter_mut().find(|c| c["type"] == cond["type"]) {
        Some(old) => {
            if old["status"] == cond["status"] {
                if let Some(t) = old.get("lastTransitionTime") {
                    cond["lastTransitionTime"] = t.clone();
                }
            }
            *old = cond;
        }
        None => conditions.push(cond),
    }
    pod["status"]["conditions"] = Value::Array(conditions);
}

/// A `metav1.LabelSelector` in its string form (`a=b,c in (d)`), as Scale's
/// `status.selector` carries it.
pub fn selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            parts.push(match e["operator"].as_str().unwrap_or_default() {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_string(),
                "DoesNotExist" => format!("!{key}"),
                _ => continue,
            });
        }
    }
    parts.sort();
    parts.join(",")
}

/// The `autoscaling/v1` Scale of `obj` with the given replica counts and
/// selector (empty: none).
pub fn scale(obj: &Value, spec_replicas: i64, status_replicas: i64, selector: &str) -> Value {
    let m = obj.get("metadata").cloned().unwrap_or_default();
    let mut status = json!({"replicas": status_replicas});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": spec_replicas},
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::rest::test_rest;

    struct Cluster {
        _dir: tempfile::TempDir,
        rest: Rest,
        pods: Scope,
        pdbs: Scope,
    }

    async fn cluster() -> Cluster {
        let (dir, rest) = test_rest().await;
        let pods = rest.scope("", "v1", "pods", Some("default")).unwrap();
        let pdbs = rest
            .scope("policy", "v1", "poddisruptionbudgets", Some("default"))
            .unwrap();
        Cluster {
            _dir: dir,
            rest,
            pods,
            pdbs,
        }
    }

    impl Cluster {
        /// A pod labelled `app: web` in `phase`, Ready or not.
        async fn pod(&self, name: &str, phase: &str, ready: bool) {
            let opts = WriteOptions::default();
            self.rest
                .create(
                    &self.pods,
                    json!({"metadata": {"name": name, "labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
                    &opts,
                )
                .await
                .unwrap();
            let conditions =
                json!([{"type": "Ready", "status": if ready { "True" } else { "False" }}]);
            self.rest
                .update_with(&self.pods, name, Some("status"), &opts, |old| {
                    let mut n = old.clone();
                    n["status"]["phase"] = json!(phase);
                    n["status"]["conditions"] = conditions.clone();
                    Ok(n)
                })
                .await
                .unwrap();
        }

        /// A budget over `app: web` with the status a disruption controller
        /// would have written.
        async fn pdb(&self, name: &str, spec: Value, status: Value) -> Value {
            let opts = WriteOptions::default();
            let mut spec = spec;
            spec["selector"] = json!({"matchLabels": {"app": "web"}});
            self.rest
                .create(
                    &self.pdbs,
                    json!({"metadata": {"name": name}, "spec": spec}),
                    &opts,
                )
                .await
                .unwrap();
            self.rest
                .update_with(&self.pdbs, name, Some("status"), &opts, |old| {
                    let mut n = old.clone();
                    n["status"] = status.clone();
                    Ok(n)
                })
                .await
                .unwrap()
        }

        async fn evict(&self, name: &str, delete_options: Value) -> Result<(), ApiError> {
            let body = json!({"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": name, "namespace": "default"}, "deleteOptions": delete_options});
            evict(&self.rest, &self.pods, name, &body, &[]).await
        }

        async fn exists(&self, name: &str) -> bool {
            self.rest.get(&self.pods, name).await.is_ok()
        }
    }

    fn healthy(allowed: i64, current: i64, desired: i64) -> Value {
        json!({"disruptionsAllowed": allowed, "currentHealthy": current, "desiredHealthy": desired,
            "expectedPods": current, "observedGeneration": 1})
    }

    #[tokio::test]
    async fn evictions_take_from_the_budget_until_it_is_spent() {
        let c = cluster().await;
        for p in ["p1", "p2", "p3"] {
            c.pod(p, "Running", true).await;
        }
        c.pdb("web", json!({"minAvailable": 2}), healthy(1, 3, 2))
            .await;

        // A dry run changes nothing.
        c.evict("p1", json!({"dryRun": ["All"]})).await.unwrap();
        assert!(c.exists("p1").await);
        let pdb = c.rest.get(&c.pdbs, "web").await.unwrap();
        assert_eq!(pdb["status"]["disruptionsAllowed"], 1);

        c.evict("p1", json!({})).await.unwrap();
        assert!(!c.exists("p1").await);
        let pdb = c.rest.get(&c.pdbs, "web").await.unwrap();
        assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
        assert!(pdb["status"]["disruptedPods"]["p1"].is_string());
        let cond = &pdb["status"]["conditions"][0];
        assert_eq!(
            (&cond["type"], &cond["status"], &cond["reason"]),
            (
                &json!("DisruptionAllowed"),
                &json!("False"),
                &json!("InsufficientPods")
            )
        );

        let e = c.evict("p2", json!({})).await.unwrap_err();
        let st = e.status();
        assert_eq!(st["code"], 429);
        assert_eq!(st["reason"], "TooManyRequests");
        assert_eq!(
            st["message"],
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        assert_eq!(
            st["details"]["causes"],
            json!([{"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 3 currently"}])
        );
        assert!(c.exists("p2").await);
        let after = c.rest.get(&c.pdbs, "web").await.unwrap();
        assert_eq!(after, pdb, "a refused eviction changes nothing");
        let p2 = c.rest.get(&c.pods, "p2").await.unwrap();
        assert!(!p2["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "DisruptionTarget"));
    }

    #[tokio::test]
    async fn budgets_not_yet_processed_refuse_with_retry_after() {
        let c = cluster().await;
        c.pod("p1", "Running", true).await;
        let mut status = healthy(1, 1, 0);
        status["observedGeneration"] = json!(0);
        c.pdb("web", json!({"maxUnavailable": 1}), status).await;
        let st = c.evict("p1", json!({})).await.unwrap_err().status();
        assert_eq!(st["code"], 429);
        assert_eq!(st["details"]["retryAfterSeconds"], 10);
        assert_eq!(
            st["details"]["causes"][0]["message"],
            "The disruption budget web is still being processed by the server."
        );
        assert!(c.exists("p1").await);
    }

    #[tokio::test]
    async fn pods_that_cannot_count_go_without_the_budget() {
        let c = cluster().await;
        c.pod("pending", "Pending", false).await;
        c.pod("done", "Succeeded", false).await;
        c.pod("unready", "Running", false).await;
        c.pod("ready", "Running", true).await;
        c.pdb("web", json!({"minAvailable": 5}), healthy(0, 1, 5))
            .await;
        c.evict("pending", json!({})).await.unwrap();
        c.evict("done", json!({})).await.unwrap();
        // IfHealthyBudget, budget not met: an unready pod is protected too.
        assert_eq!(c.evict("unready", json!({})).await.unwrap_err().code(), 429);
        assert!(c.exists("unready").await);
        assert_eq!(c.evict("ready", json!({})).await.unwrap_err().code(), 429);
        c.rest
            .update_with(&c.pdbs, "web", None, &WriteOptions::default(), |old| {
                let mut n = old.clone();
                n["spec"]["unhealthyPodEvictionPolicy"] = json!("AlwaysAllow");
                Ok(n)
            })
            .await
            .unwrap();
        c.evict("unready", json!({})).await.unwrap();
        assert!(!c.exists("unready").await);
        let pdb = c.rest.get(&c.pdbs, "web").await.unwrap();
        assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
        assert_eq!(pdb["status"].get("disruptedPods"), None);
    }

    #[tokio::test]
    async fn unready_pods_go_while_the_budget_is_met() {
        let c = cluster().await;
        c.pod("unready", "Running", false).await;
        c.pdb("web", json!({"minAvailable": 2}), healthy(0, 2, 2))
            .await;
        c.evict("unready", json!({})).await.unwrap();
        assert!(!c.exists("unready").await);
    }

    #[tokio::test]
    async fn several_budgets_or_none() {
        let c = cluster().await;
        c.pod("p1", "Running", true).await;
        c.pod("p2", "Running", true).await;
        c.evict("p1", json!({})).await.unwrap();
        c.pdb("a", json!({"minAvailable": 0}), healthy(1, 1, 0))
            .await;
        c.pdb("b", json!({"minAvailable": 0}), healthy(1, 1, 0))
            .await;
        let st = c.evict("p2", json!({})).await.unwrap_err().status();
        assert_eq!(st["code"], 500);
        assert_eq!(
            st["message"],
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        );
        assert!(c.exists("p2").await);
    }

    #[tokio::test]
    async fn malformed_evictions() {
        let c = cluster().await;
        c.pod("p1", "Running", true).await;
        let bad_name =
            json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}});
        let e = evict(&c.rest, &c.pods, "p1", &bad_name, &[])
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "name in URL does not match name in Eviction object"
        );
        let v1beta1 = json!({"apiVersion": "policy/v1beta1", "kind": "Eviction", "metadata": {"name": "p1"}, "deleteOptions": {"dryRun": ["All"]}});
        let e = evict(&c.rest, &c.pods, "p1", &v1beta1, &["Other".to_string()])
            .await
            .unwrap_err();
        assert_eq!(e.code(), 400);
        evict(&c.rest, &c.pods, "p1", &v1beta1, &[]).await.unwrap();
        assert!(c.exists("p1").await);
        let e = evict(
            &c.rest,
            &c.pods,
            "nope",
            &json!({"metadata": {"name": "nope"}}),
            &[],
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), 404);
    }

    #[test]
    fn disruption_allowed_condition() {
        let mut pdb = json!({"status": {"disruptionsAllowed": 0, "observedGeneration": 3,
            "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "", "observedGeneration": 2, "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
        update_disruption_allowed_condition(&mut pdb, "2025-01-01T00:00:00Z");
        assert_eq!(
            pdb["status"]["conditions"],
            json!([{"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": "", "observedGeneration": 3, "lastTransitionTime": "2025-01-01T00:00:00Z"}])
        );
        // Same status: the transition time stays.
        update_disruption_allowed_condition(&mut pdb, "2026-01-01T00:00:00Z");
        assert_eq!(
            pdb["status"]["conditions"][0]["lastTransitionTime"],
            "2025-01-01T00:00:00Z"
        );
    }

    #[test]
    fn pod_states() {
        let pod = |phase: &str, deleting: bool| {
            let mut p = json!({"status": {"phase": phase}});
            if deleting {
                p["metadata"] = json!({"deletionTimestamp": "2024-01-01T00:00:00Z"});
            }
            p
        };
        for (p, ignore, enforce) in [
            (pod("Pending", false), true, true),
            (pod("Running", false), false, true),
            (pod("Succeeded", false), true, false),
            (pod("Failed", false), true, false),
            (pod("Running", true), true, false),
        ] {
            assert_eq!(can_ignore_pdb(&p), ignore, "{p}");
            assert_eq!(should_enforce_resource_version(&p), enforce, "{p}");
        }
        assert!(is_pod_ready(
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        ));
        assert!(!is_pod_ready(
            &json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
        ));
    }

    #[test]
    fn selector_strings() {
        let s = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "x", "operator": "DoesNotExist"}]});
        assert_eq!(selector_string(&s), "!x,app=web,tier in (a,b)");
    }
}
