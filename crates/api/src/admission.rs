//! Admission checks that writes pass, as kube-apiserver's plugins of the
//! same names: NamespaceLifecycle (objects only in namespaces that exist and
//! are not terminating) and Priority (pods get their `spec.priority` from
//! their PriorityClass; only one class may be the global default; the
//! built-in classes cannot be deleted) and DefaultTolerationSeconds (new
//! pods tolerate the not-ready and unreachable NoExecute taints for 300 s
//! unless they say otherwise).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use resources::registry::ResourceType;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, GroupResource};
use crate::rest::{ListOptions, Rest, Scope};

/// Namespaces as last seen by a watch: name → terminating. Like upstream's
/// NamespaceLifecycle plugin, a miss falls back to a read from storage, so a
/// namespace created a moment ago is never refused.
#[derive(Default)]
pub struct NamespaceCache {
    known: RwLock<HashMap<String, bool>>,
}

impl NamespaceCache {
    fn get(&self, ns: &str) -> Option<bool> {
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(ns)
            .copied()
    }

    fn set(&self, ns: &str, terminating: Option<bool>) {
        let mut m = self.known.write().unwrap_or_else(|e| e.into_inner());
        match terminating {
            Some(t) => {
                m.insert(ns.to_string(), t);
            }
            None => {
                m.remove(ns);
            }
        }
    }
}

fn terminating(ns: &Value) -> bool {
    ns.pointer("/metadata/deletionTimestamp").is_some()
        || ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
}

fn namespaces(rest: &Rest) -> Result<Scope, ApiError> {
    rest.scope("", "v1", "namespaces", None)
}

/// Keeps the cache current until `shutdown`: list, then watch; relist on error.
pub async fn run_namespace_cache(rest: Arc<Rest>, shutdown: CancellationToken) {
    let Ok(scope) = namespaces(&rest) else { return };
    loop {
        let result: Result<(), ApiError> = async {
            let (initial, _, events) = rest.watch(&scope, &ListOptions::default(), true).await?;
            for ev in initial {
                rest.namespaces.set(
                    crate::object::name(&ev.object),
                    Some(terminating(&ev.object)),
                );
            }
            let mut events = Box::pin(events);
            while let Some(ev) = events.next().await {
                let ev = ev?;
                let name = crate::object::name(&ev.object).to_string();
                let state = (ev.event_type != "DELETED").then(|| terminating(&ev.object));
                rest.namespaces.set(&name, state);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "namespace watch restarting");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
    }
}

/// NamespaceLifecycle: objects can only be created in a namespace that
/// exists and is not being deleted.
pub async fn check_namespace_accepts(
    rest: &Rest,
    ns: &str,
    rt: &ResourceType,
    obj: &Value,
) -> Result<(), ApiError> {
    let is_terminating = match rest.namespaces.get(ns) {
        Some(t) => t,
        None => match rest.get(&namespaces(rest)?, ns).await {
            Ok(obj) => terminating(&obj),
            Err(ApiError::NotFound { .. }) => {
                return Err(ApiError::NotFound {
                    gr: GroupResource {
                        group: String::new(),
                        resource: "namespaces".into(),
                    },
                    name: ns.to_string(),
                })
            }
            Err(e) => return Err(e),
        },
    };
    if is_terminating {
        return Err(ApiError::NamespaceTerminating {
            gr: GroupResource {
                group: rt.group.clone(),
                resource: rt.resource.clone(),
            },
            name: admission_name(obj).to_string(),
            namespace: ns.to_string(),
        });
    }
    Ok(())
}

// ---- Priority ----

/// The classes every cluster has, as kube-apiserver's bootstrap creates them
/// (`scheduling.SystemPriorityClasses()`): name, value, description.
pub const SYSTEM_PRIORITY_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// `scheduling.DefaultPriorityWhenNoDefaultClassExists`.
const DEFAULT_PRIORITY: i64 = 0;

/// What Priority admission needs of a PriorityClass.
#[derive(Clone, Debug, PartialEq)]
struct PriorityClassInfo {
    value: i64,
    preemption_policy: Option<String>,
    global_default: bool,
}

impl PriorityClassInfo {
    fn of(pc: &Value) -> Self {
        PriorityClassInfo {
            value: pc.get("value").and_then(Value::as_i64).unwrap_or(0),
            preemption_policy: pc
                .get("preemptionPolicy")
                .and_then(Value::as_str)
                .map(str::to_string),
            global_default: pc.get("globalDefault").and_then(Value::as_bool) == Some(true),
        }
    }
}

/// PriorityClasses as last seen by a watch (upstream's plugin reads an
/// informer's lister). Until the first list arrives, and for a name the
/// watch has not shown yet, storage is read instead.
#[derive(Default)]
pub struct PriorityClassCache {
    classes: RwLock<Option<HashMap<String, PriorityClassInfo>>>,
}

impl PriorityClassCache {
    fn snapshot(&self) -> Option<HashMap<String, PriorityClassInfo>> {
        self.classes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn get(&self, name: &str) -> Option<PriorityClassInfo> {
        self.classes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|m| m.get(name).cloned())
    }

    fn replace(&self, all: HashMap<String, PriorityClassInfo>) {
        *self.classes.write().unwrap_or_else(|e| e.into_inner()) = Some(all);
    }

    fn set(&self, name: &str, info: Option<PriorityClassInfo>) {
        let mut guard = self.classes.write().unwrap_or_else(|e| e.into_inner());
        let Some(m) = guard.as_mut() else { return };
        match info {
            Some(i) => {
                m.insert(name.to_string(), i);
            }
            None => {
                m.remove(name);
            }
        }
    }
}

fn priority_classes(rest: &Rest) -> Result<Scope, ApiError> {
    rest.scope("scheduling.k8s.io", "v1", "priorityclasses", None)
}

/// Keeps the PriorityClass cache current until `shutdown`.
pub async fn run_priority_class_cache(rest: Arc<Rest>, shutdown: CancellationToken) {
    let Ok(scope) = priority_classes(&rest) else {
        return;
    };
    loop {
        let result: Result<(), ApiError> = async {
            let (initial, _, events) = rest.watch(&scope, &ListOptions::default(), true).await?;
            rest.priority_classes.replace(
                initial
                    .iter()
                    .map(|ev| {
                        (
                            crate::object::name(&ev.object).to_string(),
                            PriorityClassInfo::of(&ev.object),
                        )
                    })
                    .collect(),
            );
            let mut events = Box::pin(events);
            while let Some(ev) = events.next().await {
                let ev = ev?;
                let info = (ev.event_type != "DELETED").then(|| PriorityClassInfo::of(&ev.object));
                rest.priority_classes
                    .set(crate::object::name(&ev.object), info);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "priority class watch restarting");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
    }
}

/// Every PriorityClass: from the cache once it is filled, else from storage.
async fn all_priority_classes(rest: &Rest) -> Result<HashMap<String, PriorityClassInfo>, ApiError> {
    if let Some(all) = rest.priority_classes.snapshot() {
        return Ok(all);
    }
    let list = rest
        .list(&priority_classes(rest)?, &ListOptions::default())
        .await?;
    Ok(list
        .items
        .iter()
        .map(|pc| {
            (
                crate::object::name(pc).to_string(),
                PriorityClassInfo::of(pc),
            )
        })
        .collect())
}

async fn priority_class(rest: &Rest, name: &str) -> Result<Option<PriorityClassInfo>, ApiError> {
    if let Some(info) = rest.priority_classes.get(name) {
        return Ok(Some(info));
    }
    match rest.get(&priority_classes(rest)?, name).await {
        Ok(pc) => Ok(Some(PriorityClassInfo::of(&pc))),
        Err(ApiError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The global default class; after a race left several, the one with the
/// lowest value, as upstream picks.
fn default_class(all: &HashMap<String, PriorityClassInfo>) -> Option<(&str, &PriorityClassInfo)> {
    all.iter()
        .filter(|(_, i)| i.global_default)
        .min_by(|(an, a), (bn, b)| a.value.cmp(&b.value).then_with(|| an.cmp(bn)))
        .map(|(n, i)| (n.as_str(), i))
}

fn is_kind(rt: &ResourceType, group: &str, kind: &str) -> bool {
    rt.custom.is_none() && rt.group == group && rt.kind == kind
}

fn forbidden(rt: &ResourceType, name: &str, message: String) -> ApiError {
    ApiError::ForbiddenObject {
        gr: GroupResource {
            group: rt.group.clone(),
            resource: rt.resource.clone(),
        },
        name: name.to_string(),
        message,
    }
}

/// The name admission reports for an object not yet named: its
/// generateName, as upstream's `extractResourceName`.
fn admission_name(obj: &Value) -> &str {
    match crate::object::name(obj) {
        "" => crate::object::meta_str(obj, "generateName").unwrap_or_default(),
        n => n,
    }
}

/// Mutating admission on create (before defaults and validation are final):
/// Priority resolves a pod's priority from its class.
pub async fn admit_create(rest: &Rest, rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
    if is_kind(rt, "", "Pod") {
        admit_pod_priority(rest, rt, obj).await?;
        admit_default_toleration_seconds(obj);
    }
    Ok(())
}

/// `--default-not-ready-toleration-seconds` and
/// `--default-unreachable-toleration-seconds`.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// DefaultTolerationSeconds: a pod that does not tolerate the
/// `node.kubernetes.io/not-ready` or `unreachable` NoExecute taints gets a
/// toleration of each for [`DEFAULT_TOLERATION_SECONDS`], so that a node
/// going away evicts its pods after five minutes, not at once.
fn admit_default_toleration_seconds(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if tolerations.is_null() {
        *tolerations = json!([]);
    }
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = list.iter().any(|t| {
            let field = |f: &str| t.get(f).and_then(Value::as_str).unwrap_or_default();
            (field("key") == key || field("key").is_empty())
                && (field("effect") == "NoExecute" || field("effect").is_empty())
        });
        if !tolerated {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            }));
        }
    }
}

/// Priority admission of a new pod: `priorityClassName` → `spec.priority`
/// and `spec.preemptionPolicy`; no class name → the global default class,
/// or priority 0. A priority or policy the pod sets itself must agree.
async fn admit_pod_priority(
    rest: &Rest,
    rt: &ResourceType,
    pod: &mut Value,
) -> Result<(), ApiError> {
    let name = admission_name(pod).to_string();
    let class_name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (class_name, priority, policy) = if class_name.is_empty() {
        let all = all_priority_classes(rest).await?;
        match default_class(&all) {
            Some((n, info)) => (n.to_string(), info.value, info.preemption_policy.clone()),
            None => (
                String::new(),
                DEFAULT_PRIORITY,
                Some("PreemptLowerPriority".to_string()),
            ),
        }
    } else {
        match priority_class(rest, &class_name).await? {
            Some(info) => (class_name, info.value, info.preemption_policy),
            None => {
                return Err(forbidden(
                    rt,
                    &name,
                    format!("no PriorityClass with name {class_name} was found"),
                ))
            }
        }
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        // No spec: validation reports what is missing.
        return Ok(());
    };
    if !class_name.is_empty() {
        spec.insert("priorityClassName".into(), json!(class_name));
    }
    if let Some(given) = spec.get("priority").filter(|p| !p.is_null()) {
        if given.as_i64() != Some(priority) {
            return Err(forbidden(
                rt,
                &name,
                format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"),
            ));
        }
    }
    spec.insert("priority".into(), json!(priority));
    if let Some(policy) = policy {
        if let Some(given) = spec.get("preemptionPolicy").filter(|p| !p.is_null()) {
            if given.as_str() != Some(policy.as_str()) {
                let given = given
                    .as_str()
                    .map_or_else(|| given.to_string(), str::to_string);
                return Err(forbidden(
                    rt,
                    &name,
                    format!("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"),
                ));
            }
        }
        spec.insert("preemptionPolicy".into(), json!(policy));
    }
    Ok(())
}

/// Mutating admission on update: a pod keeps the priority admission gave it
/// when the update leaves it out (a PUT of the original manifest).
pub fn admit_update(rt: &ResourceType, subresource: Option<&str>, old: &Value, new: &mut Value) {
    if subresource.is_some() || !is_kind(rt, "", "Pod") {
        return;
    }
    let Some(old_spec) = old.get("spec").and_then(Value::as_object) else {
        return;
    };
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for key in ["priority", "preemptionPolicy"] {
        if spec.get(key).is_none_or(Value::is_null) {
            if let Some(v) = old_spec.get(key).filter(|v| !v.is_null()) {
                spec.insert(key.into(), v.clone());
            }
        }
    }
}

/// Validating admission on create and update, after validation: only one
/// PriorityClass may be the global default.
pub async fn validate_write(
    rest: &Rest,
    rt: &ResourceType,
    subresource: Option<&str>,
    obj: &Value,
    creating: bool,
) -> Result<(), ApiError> {
    if subresource.is_some() || !is_kind(rt, "scheduling.k8s.io", "PriorityClass") {
        return Ok(());
    }
    if obj.get("globalDefault").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let name = crate::object::name(obj);
    let all = all_priority_classes(rest).await?;
    if let Some((current, _)) = default_class(&all) {
        if creating || current != name {
            return Err(forbidden(
                rt,
                name,
                format!("PriorityClass {current} is already marked as default. Only one default can exist"),
            ));
        }
    }
    Ok(())
}

/// Whether `name` of `rt` may be deleted: the built-in PriorityClasses may not.
pub fn check_delete(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    if is_kind(rt, "scheduling.k8s.io", "PriorityClass") && is_system_priority_class(name) {
        return Err(forbidden(
            rt,
            name,
            "this is a system priority class and cannot be deleted".into(),
        ));
    }
    Ok(())
}

pub fn is_system_priority_class(name: &str) -> bool {
    SYSTEM_PRIORITY_CLASSES.iter().any(|(n, _, _)| *n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(value: i64, default: bool) -> PriorityClassInfo {
        PriorityClassInfo {
            value,
            preemption_policy: Some("PreemptLowerPriority".into()),
            global_default: default,
        }
    }

    #[test]
    fn the_default_class_is_the_lowest_marked_one() {
        let mut all = HashMap::new();
        all.insert(
            "system-node-critical".to_string(),
            info(2_000_001_000, false),
        );
        assert_eq!(default_class(&all), None);
        all.insert("b".to_string(), info(100, true));
        all.insert("a".to_string(), info(50, true));
        assert_eq!(default_class(&all).map(|(n, _)| n), Some("a"));
    }

    #[test]
    fn updates_keep_the_admitted_priority() {
        let registry = resources::registry::Registry::builtin();
        let pods = registry
            .get("", "v1", "pods")
            .expect("pods are served")
            .clone();
        let old = json!({"spec": {"priority": 2_000_000_000, "preemptionPolicy": "PreemptLowerPriority", "priorityClassName": "system-cluster-critical"}});
        let mut new = json!({"spec": {"priorityClassName": "system-cluster-critical"}});
        admit_update(&pods, None, &old, &mut new);
        assert_eq!(new["spec"]["priority"], 2_000_000_000);
        assert_eq!(new["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        let mut changed = json!({"spec": {"priority": 5}});
        admit_update(&pods, None, &old, &mut changed);
        assert_eq!(
            changed["spec"]["priority"], 5,
            "a change is left for validation to refuse"
        );
    }

    #[test]
    fn built_in_classes_cannot_be_deleted() {
        let registry = resources::registry::Registry::builtin();
        let pcs = registry
            .get("scheduling.k8s.io", "v1", "priorityclasses")
            .expect("priority classes are served")
            .clone();
        let e = check_delete(&pcs, "system-node-critical").unwrap_err();
        assert_eq!(e.status()["message"], "priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this is a system priority class and cannot be deleted");
        assert!(check_delete(&pcs, "high").is_ok());
    }

    #[test]
    fn pods_get_default_toleration_seconds() {
        let mut p = pod("p", json!({}));
        admit_default_toleration_seconds(&mut p);
        assert_eq!(
            p["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ])
        );
        // A pod's own toleration of one taint is kept; the other is added.
        let own = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5});
        let mut p = pod("p", json!({"tolerations": [own.clone()]}));
        admit_default_toleration_seconds(&mut p);
        let list = p["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0], own);
        assert_eq!(list[1]["key"], "node.kubernetes.io/not-ready");
        // Tolerating everything (empty key, any effect) needs nothing added.
        let mut p = pod("p", json!({"tolerations": [{"operator": "Exists"}]}));
        admit_default_toleration_seconds(&mut p);
        assert_eq!(p["spec"]["tolerations"].as_array().unwrap().len(), 1);
        // A NoSchedule toleration of the key does not count.
        let mut p = pod(
            "p",
            json!({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}]}),
        );
        admit_default_toleration_seconds(&mut p);
        assert_eq!(p["spec"]["tolerations"].as_array().unwrap().len(), 3);
    }

    fn pod(name: &str, spec_extra: Value) -> Value {
        let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
        for (k, v) in spec_extra.as_object().cloned().unwrap_or_default() {
            spec[k] = v;
        }
        json!({"metadata": {"name": name}, "spec": spec})
    }

    #[tokio::test]
    async fn pods_get_the_priority_of_their_class() {
        let (_dir, rest) = crate::rest::test_rest().await;
        let pods = rest.scope("", "v1", "pods", Some("default")).unwrap();
        let opts = crate::rest::WriteOptions::default();

        let p = rest
            .create(
                &pods,
                pod(
                    "crit",
                    json!({"priorityClassName": "system-cluster-critical"}),
                ),
                &opts,
            )
            .await
            .unwrap();
        assert_eq!(p["spec"]["priority"], 2_000_000_000);
        assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");

        let p = rest
            .create(&pods, pod("plain", json!({})), &opts)
            .await
            .unwrap();
        assert_eq!(p["spec"]["priority"], 0);
        assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(p["spec"].get("priorityClassName"), None);

        let e = rest
            .create(
                &pods,
                pod("lost", json!({"priorityClassName": "foo"})),
                &opts,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), 403);
        assert_eq!(
            e.to_string(),
            "pods \"lost\" is forbidden: no PriorityClass with name foo was found"
        );
        assert!(matches!(
            rest.get(&pods, "lost").await,
            Err(ApiError::NotFound { .. })
        ));

        let e = rest
            .create(
                &pods,
                pod(
                    "own",
                    json!({"priorityClassName": "system-cluster-critical", "priority": 7}),
                ),
                &opts,
            )
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "pods \"own\" is forbidden: the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 2000000000 from the given PriorityClass name");
        // The same value as the class computes is accepted.
        rest.create(
            &pods,
            pod(
                "same",
                json!({"priorityClassName": "system-node-critical", "priority": 2_000_001_000}),
            ),
            &opts,
        )
        .await
        .unwrap();

        let e = rest
            .create(
                &pods,
                pod("never", json!({"preemptionPolicy": "Never"})),
                &opts,
            )
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "pods \"never\" is forbidden: the string value of PreemptionPolicy (Never) must not be provided in pod spec; priority admission controller computed PreemptLowerPriority from the given PriorityClass name");

        // A generated name is not known yet: the generateName stands in.
        let mut g = pod("", json!({"priorityClassName": "foo"}));
        g["metadata"] = json!({"generateName": "web-"});
        let e = rest.create(&pods, g, &opts).await.unwrap_err();
        assert!(
            e.to_string().starts_with("pods \"web-\" is forbidden"),
            "{e}"
        );

        // An update that leaves the priority out keeps it.
        let updated = rest
            .update_with(&pods, "crit", None, &opts, |old| {
                let mut n = old.clone();
                n["spec"].as_object_mut().unwrap().remove("priority");
                n["metadata"]["labels"] = json!({"a": "b"});
                Ok(n)
            })
            .await
            .unwrap();
        assert_eq!(updated["spec"]["priority"], 2_000_000_000);
    }

    #[tokio::test]
    async fn one_global_default_class() {
        let (_dir, rest) = crate::rest::test_rest().await;
        let pcs = priority_classes(&rest).unwrap();
        let pods = rest.scope("", "v1", "pods", Some("default")).unwrap();
        let opts = crate::rest::WriteOptions::default();
        rest.create(
            &pcs,
            json!({"metadata": {"name": "low"}, "value": 10}),
            &opts,
        )
        .await
        .unwrap();
        rest.create(
            &pcs,
            json!({"metadata": {"name": "def"}, "value": 100, "globalDefault": true, "preemptionPolicy": "Never"}),
            &opts,
        )
        .await
        .unwrap();
        let e = rest
            .create(
                &pcs,
                json!({"metadata": {"name": "def2"}, "value": 5, "globalDefault": true}),
                &opts,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), 403);
        assert_eq!(e.to_string(), "priorityclasses.scheduling.k8s.io \"def2\" is forbidden: PriorityClass def is already marked as default. Only one default can exist");
        let e = rest
            .update_with(&pcs, "low", None, &opts, |old| {
                let mut n = old.clone();
                n["globalDefault"] = json!(true);
                Ok(n)
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), 403);
        // The default itself may be updated.
        rest.update_with(&pcs, "def", None, &opts, |old| {
            let mut n = old.clone();
            n["description"] = json!("the default");
            Ok(n)
        })
        .await
        .unwrap();

        let p = rest
            .create(&pods, pod("p", json!({})), &opts)
            .await
            .unwrap();
        assert_eq!(p["spec"]["priorityClassName"], "def");
        assert_eq!(p["spec"]["priority"], 100);
        assert_eq!(p["spec"]["preemptionPolicy"], "Never");

        let Err(e) = rest
            .delete(&pcs, "system-node-critical", &Default::default())
            .await
        else {
            panic!("a built-in class was deleted");
        };
        assert_eq!(e.code(), 403);
        let gone = rest
            .delete_collection(&pcs, &ListOptions::default(), &Default::default())
            .await
            .unwrap();
        let mut names: Vec<&str> = gone.iter().map(crate::object::name).collect();
        names.sort();
        assert_eq!(names, ["def", "low"]);
        let left = rest
            .list(&pcs, &ListOptions::default())
            .await
            .unwrap()
            .items;
        assert_eq!(left.len(), 2, "the built-ins stay");
    }
}
