//! `metadata.managedFields`: decoding entries into field sets, encoding them
//! back in upstream's order, and the metadata fields nobody owns.

use serde_json::{json, Map, Value};

use super::path::PathElement;
use super::set::Set;

pub(crate) const APPLY: &str = "Apply";
pub(crate) const UPDATE: &str = "Update";

/// One manager's entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub(crate) manager: String,
    pub(crate) operation: String,
    pub(crate) api_version: String,
    pub(crate) time: Option<String>,
    pub(crate) subresource: Option<String>,
    pub(crate) set: Set,
}

impl Entry {
    /// Entries are told apart by manager, operation and subresource.
    pub(crate) fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// Upstream's manager identifier (JSON of the entry without time and
    /// fields; Apply entries without apiVersion). Conflicts sort by it.
    pub(crate) fn identifier(&self) -> String {
        let mut id = format!(
            "{{\"manager\":{},\"operation\":{}",
            Value::String(self.manager.clone()),
            Value::String(self.operation.clone())
        );
        if self.operation != APPLY {
            id.push_str(&format!(
                ",\"apiVersion\":{}",
                Value::String(self.api_version.clone())
            ));
        }
        if let Some(sub) = &self.subresource {
            id.push_str(&format!(",\"subresource\":{}", Value::String(sub.clone())));
        }
        id.push('}');
        id
    }

    fn to_json(&self) -> Value {
        let mut e = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.set.to_fields_v1(),
        });
        if let Some(t) = &self.time {
            e["time"] = Value::String(t.clone());
        }
        if let Some(s) = &self.subresource {
            e["subresource"] = Value::String(s.clone());
        }
        e
    }
}

/// The object's `metadata.managedFields`, if it has the field at all.
pub(crate) fn raw(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("managedFields")
}

/// An explicitly empty list (or one empty entry) asks to reset tracking.
pub(crate) fn is_reset(list: &Value) -> bool {
    match list.as_array() {
        Some(a) if a.is_empty() => true,
        Some(a) if a.len() == 1 => a[0].as_object().is_some_and(Map::is_empty),
        _ => false,
    }
}

/// Decodes `managedFields`; entries with the same identity are merged.
pub(crate) fn decode(list: &Value) -> Result<Vec<Entry>, String> {
    let Value::Array(items) = list else {
        return Err("managedFields must be a list".into());
    };
    let mut out: Vec<Entry> = Vec::new();
    for item in items {
        let field = |k: &str| item.get(k).and_then(Value::as_str);
        let operation = field("operation").unwrap_or_default();
        if operation != APPLY && operation != UPDATE {
            return Err(format!("invalid operation {operation:?}"));
        }
        if let Some(t) = field("fieldsType") {
            if t != "FieldsV1" {
                return Err(format!("invalid fieldsType {t:?}"));
            }
        }
        let set = match item.get("fieldsV1") {
            Some(f) => Set::from_fields_v1(f)?,
            None => Set::new(),
        };
        let entry = Entry {
            manager: field("manager").unwrap_or_default().to_string(),
            operation: operation.to_string(),
            api_version: field("apiVersion").unwrap_or_default().to_string(),
            time: field("time").map(str::to_string),
            subresource: field("subresource")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            set,
        };
        match out.iter_mut().find(|e| {
            e.is(
                &entry.manager,
                &entry.operation,
                entry.subresource.as_deref(),
            )
        }) {
            Some(e) => e.set = e.set.union(&entry.set),
            None => out.push(entry),
        }
    }
    Ok(out)
}

fn seconds(t: Option<&str>) -> i64 {
    t.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second())
        .unwrap_or(0)
}

/// Encodes entries in upstream's order: operation (Apply first), time,
/// manager, apiVersion, subresource. Empty sets are dropped.
pub(crate) fn encode(entries: &[Entry]) -> Vec<Value> {
    let mut sorted: Vec<&Entry> = entries.iter().filter(|e| !e.set.is_empty()).collect();
    sorted.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| seconds(p.time.as_deref()).cmp(&seconds(q.time.as_deref())))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    sorted.into_iter().map(Entry::to_json).collect()
}

/// At most this many Update entries are kept (upstream's default).
const MAX_UPDATE_MANAGERS: usize = 10;
/// The bucket older updates are merged into, one per apiVersion.
const ANCIENT_CHANGES: &str = "ancient-changes";

/// Keeps the number of Update entries at [`MAX_UPDATE_MANAGERS`] by merging
/// the oldest ones, per apiVersion, into an `ancient-changes` entry
/// (upstream's capManagersManager).
pub(crate) fn cap_update_managers(entries: &mut Vec<Entry>) {
    let mut updaters: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].operation == UPDATE)
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|&i, &j| {
        let (p, q) = (&entries[i], &entries[j]);
        seconds(p.time.as_deref())
            .cmp(&seconds(q.time.as_deref()))
            .then_with(|| p.identifier().cmp(&q.identifier()))
    });
    let ids: Vec<(String, Option<String>)> = updaters
        .iter()
        .map(|&i| (entries[i].manager.clone(), entries[i].subresource.clone()))
        .collect();
    let mut first_of_version: Vec<(String, (String, Option<String>))> = Vec::new();
    let mut length = ids.len();
    for (manager, sub) in ids {
        if length <= MAX_UPDATE_MANAGERS {
            break;
        }
        let find = |entries: &[Entry], m: &str, s: Option<&str>| {
            entries.iter().position(|e| e.is(m, UPDATE, s))
        };
        let Some(i) = find(entries, &manager, sub.as_deref()) else {
            continue;
        };
        let version = entries[i].api_version.clone();
        let Some((_, first)) = first_of_version
            .iter()
            .find(|(v, _)| *v == version)
            .cloned()
        else {
            first_of_version.push((version, (manager, sub)));
            continue;
        };
        let bucket = entries
            .iter()
            .position(|e| e.is(ANCIENT_CHANGES, UPDATE, None) && e.api_version == version);
        let bucket = match bucket {
            Some(b) => b,
            None => {
                // The first update of this version becomes the bucket.
                let Some(f) = find(entries, &first.0, first.1.as_deref()) else {
                    continue;
                };
                entries[f].manager = ANCIENT_CHANGES.to_string();
                entries[f].subresource = None;
                f
            }
        };
        let Some(i) = find(entries, &manager, sub.as_deref()) else {
            continue;
        };
        let merged = entries[bucket].set.union(&entries[i].set);
        entries[bucket].set = merged;
        entries[bucket].time = entries[i].time.clone();
        entries.remove(i);
        length -= 1;
    }
}

/// Writes `entries` into `obj.metadata.managedFields` (removing the field
/// when there are none).
pub(crate) fn store(obj: &mut Value, entries: &[Entry]) {
    let list = encode(entries);
    let Some(o) = obj.as_object_mut() else { return };
    if list.is_empty() {
        if let Some(Value::Object(meta)) = o.get_mut("metadata") {
            meta.remove("managedFields");
        }
        return;
    }
    let meta = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// `obj` without `metadata.managedFields`: ownership is never tracked on it.
pub(crate) fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(Value::Object(meta)) = o.get_mut("metadata") {
        meta.remove("managedFields");
    }
    o
}

/// Fields the server sets and nobody owns (upstream's stripMeta), removed
/// exactly (not their children) from every set.
pub(crate) fn stripped_fields() -> Set {
    let mut s = Set::of_fields(["apiVersion", "kind", "metadata"]);
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "clusterName",
        "managedFields",
    ] {
        s.insert(&[
            PathElement::Field("metadata".into()),
            PathElement::Field(f.into()),
        ]);
    }
    s
}
