//! Server-side apply and `metadata.managedFields`, as Kubernetes'
//! `fieldmanager` and structured-merge-diff do them. Pure: objects in,
//! objects out.
//!
//! - [`update`] records who changed what on create, update and patch.
//! - [`apply`] merges an applied configuration into the live object, prunes
//!   what the applier stopped applying, and reports conflicts with other
//!   managers.
//!
//! Inside: `path` and `set` are field paths and sets (FieldsV1), `schema`
//! reads list/map semantics from OpenAPI, `typed`, `compare` and `merge`
//! walk values with their schema, `managed` reads and writes the entries.

mod compare;
mod managed;
mod merge;
mod path;
mod schema;
mod set;
mod typed;

#[cfg(test)]
mod tests;

use serde_json::{json, Map, Value};

use compare::compare;
use managed::{Entry, APPLY, UPDATE};
use merge::{merge, remove_items};
use path::{path_string, values_equal};
use schema::Schema;
use set::Set;
use typed::{ensure_named_fields_are_members, to_field_set, validate};

/// Where the schema of the object comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TypeSource<'a> {
    /// A built-in kind, described by the OpenAPI catalog.
    Builtin {
        group: &'a str,
        version: &'a str,
        kind: &'a str,
    },
    /// A custom resource: the version's openAPIV3Schema (self-contained).
    Structural(&'a Value),
}

/// Who is writing, through which endpoint, and when.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Field manager name.
    pub manager: &'a str,
    /// "status", "scale"…, recorded in the entry.
    pub subresource: Option<&'a str>,
    /// e.g. "apps/v1", recorded in the entry.
    pub api_version: &'a str,
    /// RFC 3339, e.g. "2026-11-28T02:00:00Z".
    pub time: &'a str,
    pub types: TypeSource<'a>,
    /// Top-level fields this endpoint does not own (reset fields): e.g.
    /// ["status"] for the main resource of a kind with a status subresource,
    /// ["spec"] (and so on) for /status. Paths under them are never added to
    /// any manager's set by this request and are not compared.
    pub ignored: &'a [&'a str],
}

/// Why an apply was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields the apply would change are owned by other managers.
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration is malformed or does not fit the schema.
    #[error("{0}")]
    Invalid(String),
}

/// One field another manager owns that the apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    /// Like `.spec.replicas` or `.spec.template.spec.containers[name="a"].image`.
    pub field: String,
    /// The owner's operation, "Apply" or "Update": upstream names the
    /// version only for updaters.
    pub operation: String,
    /// The owner's subresource, if it wrote through one.
    pub subresource: Option<String>,
}

impl Conflict {
    /// Upstream's `printManager`: `"m"`, `"m" with subresource "status"`,
    /// and ` using apps/v1` for updaters.
    fn owner(&self) -> String {
        let mut s = Value::String(self.manager.clone()).to_string();
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {}", Value::String(sub.clone())));
        }
        if self.operation == UPDATE {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// Upstream's message: `Apply failed with 1 conflict: conflict with "m"
/// using apps/v1: .spec.replicas`, or with several, one `conflicts with
/// <owner>:` line per owner followed by `- <field>` lines.
pub fn conflict_message(c: &[Conflict]) -> String {
    if let [one] = c {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.owner(),
            one.field
        );
    }
    // Conflicts come grouped by owner (see `apply`); keep that order.
    let mut lines: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for conflict in c {
        let owner = conflict.owner();
        if current.as_ref() != Some(&owner) {
            lines.push(format!("conflicts with {owner}:"));
            current = Some(owner);
        }
        lines.push(format!("- {}", conflict.field));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        c.len(),
        lines.join("\n")
    )
}

/// `(message, field)` of each Status cause (type "FieldManagerConflict").
pub fn conflict_causes(c: &[Conflict]) -> Vec<(String, String)> {
    c.iter()
        .map(|c| (format!("conflict with {}", c.owner()), c.field.clone()))
        .collect()
}

/// Records an Update/Create by `req.manager` (operation "Update") in
/// `new.metadata.managedFields`. `old` is None on create.
///
/// The base is `new`'s own managedFields when it carries a valid non-empty
/// list (a client writing them), nothing when it carries `[]` (a reset), and
/// `old`'s otherwise (clients that drop the field must not wipe it). Fields
/// added or changed become this manager's and are taken from everyone else;
/// removed fields leave every set; empty entries are dropped.
pub fn update(old: Option<&Value>, new: &mut Value, req: &Request) -> Result<(), String> {
    if !new.is_object() {
        return Err("the object must be a JSON object".into());
    }
    let schema = Schema::root(&req.types);
    let old_entries = || {
        old.and_then(managed::raw)
            .and_then(|l| managed::decode(l).ok())
            .unwrap_or_default()
    };
    let mut entries = match managed::raw(new) {
        Some(list) if managed::is_reset(list) => Vec::new(),
        Some(list) => match managed::decode(list) {
            Ok(e) if !e.is_empty() => e,
            _ => old_entries(),
        },
        None => old_entries(),
    };

    let old_v = old
        .map(managed::without_managed_fields)
        .unwrap_or_else(|| json!({}));
    let new_v = managed::without_managed_fields(new);
    let ignored = Set::of_fields(req.ignored.iter().copied());
    let strip = managed::stripped_fields();
    let cmp = compare(&old_v, &new_v, &schema).exclude(&ignored);
    let changed = cmp.modified.union(&cmp.added);

    // As upstream, the operation is its own manager: everyone (this
    // manager's earlier entry included) loses what changed or went away,
    // then the entry gains what this operation changed.
    for e in &mut entries {
        e.set = e
            .set
            .difference(&changed)
            .difference(&cmp.removed)
            .difference(&strip);
    }
    let op_set = changed.difference(&strip);
    if !op_set.is_empty() {
        let mine = entries
            .iter_mut()
            .find(|e| e.is(req.manager, UPDATE, req.subresource));
        match mine {
            Some(e) => {
                e.set = e.set.union(&op_set);
                e.api_version = req.api_version.to_string();
                e.time = Some(req.time.to_string());
            }
            None => entries.push(Entry {
                manager: req.manager.to_string(),
                operation: UPDATE.to_string(),
                api_version: req.api_version.to_string(),
                time: Some(req.time.to_string()),
                subresource: req.subresource.map(str::to_string),
                set: op_set,
            }),
        }
    }
    entries.retain(|e| !e.set.is_empty());
    managed::cap_update_managers(&mut entries);
    managed::store(new, &entries);
    Ok(())
}

/// Server-side apply of `config` by `req.manager` onto `live` (None: the
/// object is created from the config). Returns the resulting object with its
/// managedFields (operation "Apply"); a no-op apply returns `live` unchanged.
/// Without `force`, fields the apply would add or change that another
/// manager owns are conflicts; with it, their ownership moves to the applier.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    req: &Request,
    force: bool,
) -> Result<Value, ApplyError> {
    check_config(config, req)?;
    let config = without_nulls(config);
    let schema = Schema::root(&req.types);
    let typed_error = |errs: Vec<String>| {
        let detail = if let [one] = errs.as_slice() {
            one.clone()
        } else {
            format!("errors:\n  {}", errs.join("\n  "))
        };
        ApplyError::Invalid(format!(
            "failed to create typed patch object ({}): {detail}",
            object_gvknn(&config)
        ))
    };
    // Typing errors are checked up front on create; otherwise after the
    // no-op test below, which a configuration that does not fit its schema
    // cannot pass (its set or merge would differ from what was recorded).
    if live.is_none() {
        let errs = validate(&config, &schema);
        if !errs.is_empty() {
            return Err(typed_error(errs));
        }
    }

    let live_v = live
        .map(managed::without_managed_fields)
        .unwrap_or_else(|| json!({}));
    let mut entries: Vec<Entry> = live
        .and_then(managed::raw)
        .and_then(|l| managed::decode(l).ok())
        .unwrap_or_default();
    let before = entries.clone();
    let ignored = Set::of_fields(req.ignored.iter().copied());
    let strip = managed::stripped_fields();

    let merged = merge(Some(&live_v), Some(&config), &schema).unwrap_or_else(|| json!({}));
    let applied = to_field_set(&config, &schema).recursive_difference(&ignored);
    let me = match entries
        .iter()
        .position(|e| e.is(req.manager, APPLY, req.subresource))
    {
        Some(i) => i,
        None => {
            entries.push(Entry {
                manager: req.manager.to_string(),
                operation: APPLY.to_string(),
                api_version: req.api_version.to_string(),
                time: None,
                subresource: req.subresource.map(str::to_string),
                set: Set::new(),
            });
            entries.len() - 1
        }
    };
    let last = std::mem::replace(&mut entries[me].set, applied);
    entries[me].api_version = req.api_version.to_string();
    // The common re-apply: the same fields as last time, all already holding
    // the applied values. Nothing to prune, change or take from anyone.
    if let Some(live) = live {
        let same_entry = before.get(me).is_some_and(|b| {
            // Recorded sets never hold the server-owned metadata.
            b.api_version == req.api_version && b.set == entries[me].set.difference(&strip)
        });
        if same_entry && values_equal(&merged, &live_v) {
            return Ok(live.clone());
        }
        let errs = validate(&config, &schema);
        if !errs.is_empty() {
            return Err(typed_error(errs));
        }
    }
    let mut merged = prune(merged, &entries, &last, &schema);

    let cmp = compare(&live_v, &merged, &schema).exclude(&ignored);
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts: Vec<(String, Conflict)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if i == me {
            continue;
        }
        for p in e.set.intersection(&changed).paths() {
            conflicts.push((
                e.identifier(),
                Conflict {
                    manager: e.manager.clone(),
                    api_version: e.api_version.clone(),
                    field: path_string(&p),
                    operation: e.operation.clone(),
                    subresource: e.subresource.clone(),
                },
            ));
        }
    }
    if !force && !conflicts.is_empty() {
        // Grouped by owner as upstream sorts them; paths keep set order.
        conflicts.sort_by(|a, b| a.0.cmp(&b.0));
        return Err(ApplyError::Conflicts(
            conflicts.into_iter().map(|(_, c)| c).collect(),
        ));
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if i != me {
            e.set = e.set.difference(&changed).difference(&cmp.removed);
        }
        e.set = e.set.difference(&strip);
    }

    if let Some(live) = live {
        // This endpoint does not write its reset fields: keep live's.
        restore_fields(&mut merged, &live_v, req.ignored);
        let unchanged = values_equal(&merged, &live_v) && same_sets(&entries, &before);
        if unchanged {
            return Ok(live.clone());
        }
    }
    entries[me].time = Some(req.time.to_string());
    entries.retain(|e| !e.set.is_empty());
    managed::store(&mut merged, &entries);
    Ok(merged)
}

/// Whether every conflict is with a field that client-side apply set and
/// that still holds the value it set (per the live object's
/// `kubectl.kubernetes.io/last-applied-configuration`). kubectl's server-side
/// apply may then take those fields over without `--force-conflicts`, so
/// switching from client-side to server-side apply does not conflict with
/// itself (upstream's lastAppliedManager).
pub fn last_applied_allows(live: &Value, conflicts: &[Conflict], req: &Request) -> bool {
    let Some(last) = live
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return false;
    };
    let schema = Schema::root(&req.types);
    let live_v = managed::without_managed_fields(live);
    let cmp = compare(&last, &live_v, &schema);
    let allowed: std::collections::HashSet<String> = to_field_set(&last, &schema)
        .difference(&cmp.modified)
        .difference(&cmp.removed)
        .paths()
        .iter()
        .map(|p| path_string(p))
        .collect();
    !conflicts.is_empty() && conflicts.iter().all(|c| allowed.contains(&c.field))
}

/// What upstream checks before typing an applied configuration.
fn check_config(config: &Value, req: &Request) -> Result<(), ApplyError> {
    let invalid = |m: String| Err(ApplyError::Invalid(m));
    let Value::Object(obj) = config else {
        return invalid("the apply configuration must be an object".into());
    };
    let compact = || config.to_string();
    let api_version = obj.get("apiVersion").and_then(Value::as_str);
    let kind = obj.get("kind").and_then(Value::as_str);
    match (api_version, kind) {
        (None, _) | (Some(""), _) => {
            return invalid(format!("Object 'apiVersion' is missing in '{}'", compact()))
        }
        (_, None) | (_, Some("")) => {
            return invalid(format!("Object 'Kind' is missing in '{}'", compact()))
        }
        (Some(av), _) if av != req.api_version => {
            return invalid(format!(
                "Incorrect version specified in apply patch. Specified patch version: {av}, \
                 expected: {}",
                req.api_version
            ))
        }
        _ => {}
    }
    if managed::raw(config).is_some_and(|m| !m.is_null()) {
        return invalid("metadata.managedFields must be nil".into());
    }
    Ok(())
}

/// `ns/name; group/version, Kind=kind`, as upstream names a typed object.
fn object_gvknn(obj: &Value) -> String {
    let meta = |k: &str| {
        obj.get("metadata")
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let av = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (group, version) = av.split_once('/').unwrap_or(("", av));
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    format!(
        "{}/{}; {group}/{version}, Kind={kind}",
        meta("namespace"),
        meta("name")
    )
}

/// A `null` in an applied configuration is an absent value. Borrowed when
/// there is none (the usual case).
fn without_nulls(v: &Value) -> std::borrow::Cow<'_, Value> {
    fn has_null(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Object(m) => m.values().any(has_null),
            Value::Array(a) => a.iter().any(has_null),
            _ => false,
        }
    }
    if has_null(v) {
        std::borrow::Cow::Owned(drop_nulls(v))
    } else {
        std::borrow::Cow::Borrowed(v)
    }
}

fn drop_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), drop_nulls(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(drop_nulls).collect()),
        v => v.clone(),
    }
}

/// Removes from `merged` what the applier applied last time and no longer
/// applies, unless someone (the applier's new set included) still owns it
/// (upstream `Updater.prune`, with its add-back passes).
fn prune(merged: Value, entries: &[Entry], last: &Set, s: &Schema) -> Value {
    if last.is_empty() {
        return merged;
    }
    let named = |set: &Set| ensure_named_fields_are_members(set, s);
    let remove = |set: &Set| remove_items(&merged, set, s).unwrap_or_else(|| json!({}));
    let last = named(last);
    let managed = named(&entries.iter().fold(Set::new(), |acc, e| acc.union(&e.set)));
    let merged_set = named(&to_field_set(&merged, s));

    let pruned = remove(&last);
    // Add back anything still owned.
    let pruned_set = named(&to_field_set(&pruned, s));
    let pruned = remove(&merged_set.difference(&pruned_set.union(&managed)));
    // Remove only what the applier itself owned (not dangling fields).
    let pruned_set = named(&to_field_set(&pruned, s));
    remove(&merged_set.difference(&pruned_set).intersection(&last))
}

/// Sets `names` in `obj` to their values in `from` (removing them when
/// `from` has none).
fn restore_fields(obj: &mut Value, from: &Value, names: &[&str]) {
    let Some(o) = obj.as_object_mut() else { return };
    for name in names {
        match from.get(*name) {
            Some(v) => {
                o.insert(name.to_string(), v.clone());
            }
            None => {
                o.remove(*name);
            }
        }
    }
}

/// The same entries with the same sets and versions, times aside.
fn same_sets(a: &[Entry], b: &[Entry]) -> bool {
    let key = |e: &&Entry| e.identifier();
    let mut a: Vec<&Entry> = a.iter().filter(|e| !e.set.is_empty()).collect();
    let mut b: Vec<&Entry> = b.iter().filter(|e| !e.set.is_empty()).collect();
    a.sort_by_key(key);
    b.sort_by_key(key);
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| {
            x.identifier() == y.identifier() && x.set == y.set && x.api_version == y.api_version
        })
}
