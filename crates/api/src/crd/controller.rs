//! The CustomResourceDefinition controller: what kube-apiserver's
//! apiextensions controllers (naming, establishing, finalizing) do, in one
//! level-triggered loop over the CRDs.
//!
//! - A live CRD gets the `customresourcecleanup` finalizer, its names checked
//!   against the other CRDs of its group and the built-in kinds
//!   (`NamesAccepted`), `Established`, `status.acceptedNames` and
//!   `status.storedVersions`, and its served versions registered.
//! - A deleting CRD is `Terminating`: its custom objects are deleted, its
//!   resource unregistered, and the finalizer removed so the CRD goes.
//!
//! The decisions are pure functions ([`desired_status`], [`name_conflict`]);
//! only [`sync`] reads and writes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use resources::apiextensions::{self, CLEANUP_FINALIZER};
use resources::registry::Registry;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::object::name;
use crate::rest::{DeleteOptions, ListOptions, Rest, Scope, WriteOptions};

const RESYNC: Duration = Duration::from_secs(5);

fn crd_scope(rest: &Rest) -> Result<Scope, ApiError> {
    rest.scope(
        apiextensions::GROUP,
        "v1",
        "customresourcedefinitions",
        None,
    )
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn condition<'a>(crd: &'a Value, type_: &str) -> Option<&'a Value> {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == type_)
}

fn is_true(crd: &Value, type_: &str) -> bool {
    condition(crd, type_).is_some_and(|c| c["status"] == "True")
}

/// Registers the served versions of every stored CRD that is established
/// (before the API serves requests, so a restart serves them at once).
pub async fn load(rest: &Rest) -> Result<(), ApiError> {
    let scope = crd_scope(rest)?;
    let crds = rest.list(&scope, &ListOptions::default()).await?.items;
    let mut reg = rest.registry.write().unwrap_or_else(|e| e.into_inner());
    for crd in &crds {
        if is_true(crd, "Established") {
            register(&mut reg, crd);
        }
    }
    Ok(())
}

fn register(reg: &mut Registry, crd: &Value) -> (String, String) {
    let names = apiextensions::served_names(crd);
    let group = str_at(crd, "/spec/group").to_string();
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let types = apiextensions::resource_types(crd, names);
    reg.replace_group_resource(&group, &plural, types);
    (group, plural)
}

/// A name of `crd` already used by another CRD of its group or a built-in
/// kind: `(reason, message)` as the naming controller reports it.
pub fn name_conflict(crd: &Value, others: &[Value], reg: &Registry) -> Option<(String, String)> {
    let group = str_at(crd, "/spec/group");
    let names = crd.pointer("/spec/names").cloned().unwrap_or_default();
    let plural = str_at(&names, "/plural");
    let singular = str_at(&names, "/singular");
    let kind = str_at(&names, "/kind");
    let list_kind = str_at(&names, "/listKind");
    let short: Vec<&str> = names
        .get("shortNames")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let me = name(crd);
    let mut used_resources: Vec<String> = Vec::new();
    let mut used_kinds: Vec<String> = Vec::new();
    for other in others {
        if name(other) == me || str_at(other, "/spec/group") != group {
            continue;
        }
        let n = apiextensions::served_names(other);
        for f in ["plural", "singular"] {
            used_resources.push(str_at(n, &format!("/{f}")).to_string());
        }
        used_resources.extend(
            n.get("shortNames")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
        for f in ["kind", "listKind"] {
            used_kinds.push(str_at(n, &format!("/{f}")).to_string());
        }
    }
    for t in reg.all() {
        if t.group == group && t.custom.is_none() {
            used_resources.push(t.resource.clone());
            used_resources.push(t.singular.clone());
            used_resources.extend(t.short_names.iter().cloned());
            used_kinds.push(t.kind.clone());
            used_kinds.push(t.list_kind.clone());
        }
    }
    let used = |list: &[String], n: &str| !n.is_empty() && list.iter().any(|u| u == n);
    if used(&used_resources, plural) {
        return Some((
            "PluralConflict".into(),
            format!("{plural:?} is already in use"),
        ));
    }
    if used(&used_resources, singular) {
        return Some((
            "SingularConflict".into(),
            format!("{singular:?} is already in use"),
        ));
    }
    if let Some(s) = short.iter().find(|s| used(&used_resources, s)) {
        return Some((
            "ShortNamesConflict".into(),
            format!("{s:?} is already in use"),
        ));
    }
    if used(&used_kinds, kind) {
        return Some(("KindConflict".into(), format!("{kind:?} is already in use")));
    }
    if used(&used_kinds, list_kind) {
        return Some((
            "ListKindConflict".into(),
            format!("{list_kind:?} is already in use"),
        ));
    }
    None
}

fn set_condition(
    status: &mut Value,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    if !status.get("conditions").is_some_and(Value::is_array) {
        status["conditions"] = json!([]);
    }
    let Some(conditions) = status["conditions"].as_array_mut() else {
        return;
    };
    match conditions.iter_mut().find(|c| c["type"] == type_) {
        Some(c) => {
            if c["status"] != value {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(value);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        None => conditions.push(json!({
            "type": type_,
            "status": value,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        })),
    }
}

/// The status a live CRD should have, given a name conflict (if any).
pub fn desired_status(crd: &Value, conflict: Option<&(String, String)>, now: &str) -> Value {
    let mut status = crd.get("status").cloned().unwrap_or_else(|| json!({}));
    if !status.is_object() {
        status = json!({});
    }
    match conflict {
        None => {
            status["acceptedNames"] = crd.pointer("/spec/names").cloned().unwrap_or_default();
            set_condition(
                &mut status,
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
                now,
            );
            set_condition(
                &mut status,
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                now,
            );
        }
        Some((reason, message)) => {
            if status.get("acceptedNames").is_none() {
                status["acceptedNames"] = json!({"plural": "", "kind": ""});
            }
            set_condition(&mut status, "NamesAccepted", "False", reason, message, now);
            if !is_true(crd, "Established") {
                set_condition(
                    &mut status,
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted",
                    now,
                );
            }
        }
    }
    let mut stored: Vec<Value> = status
        .get("storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(v) = apiextensions::storage_version(crd) {
        if !stored.contains(&json!(v)) {
            stored.push(json!(v));
        }
    }
    status["storedVersions"] = Value::Array(stored);
    status
}

/// Runs the controller until `shutdown`: a watch on CRDs, plus a periodic
/// resync that retries whatever could not finish (objects still finalizing).
pub async fn run(rest: Arc<Rest>, shutdown: CancellationToken) {
    let mut registered: HashMap<String, (String, String)> = HashMap::new();
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let Ok(scope) = crd_scope(&rest) else {
            return;
        };
        let watch = rest.watch(&scope, &ListOptions::default(), false).await;
        let (initial, _, events) = match watch {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "watching CustomResourceDefinitions failed");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        for ev in &initial {
            sync_logged(&rest, name(&ev.object), &mut registered).await;
        }
        let mut events = Box::pin(events);
        let mut resync = tokio::time::interval(RESYNC);
        resync.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = resync.tick() => {
                    let names: Vec<String> = match rest.list(&scope, &ListOptions::default()).await {
                        Ok(l) => l.items.iter().map(|c| name(c).to_string()).collect(),
                        Err(_) => continue,
                    };
                    for n in names {
                        sync_logged(&rest, &n, &mut registered).await;
                    }
                }
                ev = events.next() => match ev {
                    Some(Ok(ev)) => sync_logged(&rest, name(&ev.object), &mut registered).await,
                    // The watch ended or broke: list and watch again.
                    _ => break,
                },
            }
        }
    }
}

async fn sync_logged(
    rest: &Rest,
    crd_name: &str,
    registered: &mut HashMap<String, (String, String)>,
) {
    let span = tracing::info_span!("crd", name = crd_name);
    let _enter = span.enter();
    if let Err(e) = sync(rest, crd_name, registered).await {
        tracing::warn!(error = %e, crd = crd_name, "reconciling CustomResourceDefinition failed");
    }
}

/// Reconciles one CRD by name.
pub async fn sync(
    rest: &Rest,
    crd_name: &str,
    registered: &mut HashMap<String, (String, String)>,
) -> Result<(), ApiError> {
    let scope = crd_scope(rest)?;
    let crd = match rest.get(&scope, crd_name).await {
        Ok(c) => c,
        Err(ApiError::NotFound { .. }) => {
            if let Some((group, plural)) = registered.remove(crd_name) {
                rest.registry
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove_group_resource(&group, &plural);
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let finalizers: Vec<String> = crd
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let has_finalizer = finalizers.iter().any(|f| f == CLEANUP_FINALIZER);
    let now = crate::object::now_rfc3339();
    if crd.pointer("/metadata/deletionTimestamp").is_some() {
        if !has_finalizer {
            return Ok(());
        }
        return finalize(rest, &scope, &crd, &now, registered).await;
    }
    let crd = if has_finalizer {
        crd
    } else {
        rest.update_with(&scope, crd_name, None, &WriteOptions::default(), |old| {
            let mut n = old.clone();
            let m = crate::object::meta_mut(&mut n);
            m.remove("resourceVersion");
            let mut f = m
                .get("finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if !f.iter().any(|x| x == CLEANUP_FINALIZER) {
                f.push(json!(CLEANUP_FINALIZER));
            }
            m.insert("finalizers".into(), Value::Array(f));
            Ok(n)
        })
        .await?
    };
    let others = rest.list(&scope, &ListOptions::default()).await?.items;
    let conflict = {
        let reg = rest.registry();
        name_conflict(&crd, &others, &reg)
    };
    let status = desired_status(&crd, conflict.as_ref(), &now);
    let crd = if crd.get("status") != Some(&status) {
        rest.update_with(
            &scope,
            crd_name,
            Some("status"),
            &WriteOptions::default(),
            |old| {
                let mut n = old.clone();
                crate::object::meta_mut(&mut n).remove("resourceVersion");
                n["status"] = status.clone();
                Ok(n)
            },
        )
        .await?
    } else {
        crd
    };
    if is_true(&crd, "Established") {
        let mut reg = rest.registry.write().unwrap_or_else(|e| e.into_inner());
        if let Some((group, plural)) = registered.get(crd_name) {
            let names = apiextensions::served_names(&crd);
            if names.get("plural").and_then(Value::as_str) != Some(plural.as_str()) {
                reg.remove_group_resource(group, plural);
            }
        }
        // Re-registering an unchanged CRD would only churn the caches.
        let wanted = apiextensions::resource_types(&crd, apiextensions::served_names(&crd));
        let group = str_at(&crd, "/spec/group");
        let current: Vec<_> = reg
            .all()
            .iter()
            .filter(|t| {
                wanted
                    .first()
                    .is_some_and(|w| t.group == group && t.resource == w.resource)
            })
            .map(|t| (**t).clone())
            .collect();
        if current != wanted {
            let key = register(&mut reg, &crd);
            registered.insert(crd_name.to_string(), key);
        } else if let Some(w) = wanted.first() {
            registered.insert(crd_name.to_string(), (w.group.clone(), w.resource.clone()));
        }
    }
    Ok(())
}

/// A deleting CRD: Terminating, its objects deleted, unregistered, and the
/// finalizer removed (which lets the CRD go).
async fn finalize(
    rest: &Rest,
    scope: &Scope,
    crd: &Value,
    now: &str,
    registered: &mut HashMap<String, (String, String)>,
) -> Result<(), ApiError> {
    let crd_name = name(crd).to_string();
    if !is_true(crd, "Terminating") {
        let mut status = crd.get("status").cloned().unwrap_or_else(|| json!({}));
        set_condition(
            &mut status,
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            now,
        );
        rest.update_with(
            scope,
            &crd_name,
            Some("status"),
            &WriteOptions::default(),
            |old| {
                let mut n = old.clone();
                crate::object::meta_mut(&mut n).remove("resourceVersion");
                n["status"] = status.clone();
                Ok(n)
            },
        )
        .await?;
    }
    // The objects are listed through the storage version (all versions share
    // its storage), registered or not.
    let types = apiextensions::resource_types(crd, apiextensions::served_names(crd));
    let storage = apiextensions::storage_version(crd).unwrap_or_default();
    if let Some(rt) = types
        .iter()
        .find(|t| t.version == storage)
        .or(types.first())
    {
        let items = Scope {
            rt: Arc::new(rt.clone()),
            namespace: None,
        };
        rest.delete_collection(&items, &ListOptions::default(), &DeleteOptions::default())
            .await?;
        let left = rest.list(&items, &ListOptions::default()).await?.items;
        if !left.is_empty() {
            // Objects waiting on their own finalizers: the resync comes back.
            return Ok(());
        }
    }
    if let Some((group, plural)) = registered.remove(&crd_name) {
        rest.registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove_group_resource(&group, &plural);
    } else {
        let group = str_at(crd, "/spec/group").to_string();
        let plural = str_at(apiextensions::served_names(crd), "/plural").to_string();
        rest.registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove_group_resource(&group, &plural);
    }
    match rest
        .update_with(scope, &crd_name, None, &WriteOptions::default(), |old| {
            let mut n = old.clone();
            let m = crate::object::meta_mut(&mut n);
            m.remove("resourceVersion");
            if let Some(f) = m.get_mut("finalizers").and_then(Value::as_array_mut) {
                f.retain(|x| x != CLEANUP_FINALIZER);
            }
            Ok(n)
        })
        .await
    {
        Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(name: &str, plural: &str, kind: &str) -> Value {
        json!({
            "metadata": {"name": format!("{plural}.example.com"), "uid": name},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "listKind": format!("{kind}List")},
                "versions": [{"name": "v1", "served": true, "storage": true}],
            },
        })
    }

    #[test]
    fn names_and_status() {
        let reg = Registry::builtin();
        let a = crd("a", "widgets", "Widget");
        let mut b = crd("b", "gadgets", "Widget");
        b["metadata"]["name"] = json!("gadgets.example.com");
        b["spec"]["names"]["singular"] = json!("gadget");
        let mut a_live = a.clone();
        a_live["status"] = desired_status(&a, None, "t0");
        assert_eq!(name_conflict(&a, &[a_live.clone()], &reg), None);
        let conflict = name_conflict(&b, &[a_live.clone()], &reg).unwrap();
        assert_eq!(conflict.0, "KindConflict");
        let status = desired_status(&b, Some(&conflict), "t1");
        let c = |t: &str| {
            status["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == t)
                .cloned()
                .unwrap()
        };
        assert_eq!(c("NamesAccepted")["status"], "False");
        assert_eq!(c("Established")["status"], "False");
        let s = &a_live["status"];
        assert_eq!(s["storedVersions"], json!(["v1"]));
        assert_eq!(s["acceptedNames"]["plural"], "widgets");
        // Unchanged conditions keep their transition time.
        let again = desired_status(&a_live, None, "t9");
        assert_eq!(&again, s);
        // Built-in names of the same group clash too.
        let mut ing = crd("c", "ingresses", "Ingress");
        ing["spec"]["group"] = json!("networking.k8s.io");
        assert_eq!(name_conflict(&ing, &[], &reg).unwrap().0, "PluralConflict");
    }
}
