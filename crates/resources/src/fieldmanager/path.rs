//! Path elements: how one step from a value to a child is named, ordered,
//! printed (`.spec.containers[name="a"]`) and written as a FieldsV1 key
//! (`f:spec`, `k:{"name":"a"}`, `v:"x"`, `i:0`).

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// One step into a value.
#[derive(Clone, Debug)]
pub(crate) enum PathElement {
    /// A field of a struct or a key of a map.
    Field(String),
    /// An item of an associative list, by its key fields (sorted by name).
    Key(Vec<(String, Value)>),
    /// An item of a set, by its value.
    Value(Value),
    /// An item of a list by position (only read back from clients).
    Index(usize),
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The FieldsV1 key: `f:name`, `k:{..}`, `v:<json>` or `i:N`.
    pub(crate) fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                // Written by hand so the key fields keep their sorted order.
                let body: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}:{}", json(&Value::String(k.clone())), json(v)))
                    .collect();
                format!("k:{{{}}}", body.join(","))
            }
            PathElement::Value(v) => format!("v:{}", json(v)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Reads a FieldsV1 key. `Ok(None)`: an unknown kind of element, which
    /// upstream skips so newer encodings do not break older readers.
    pub(crate) fn decode(s: &str) -> Result<Option<PathElement>, String> {
        let Some((kind, rest)) = s.split_once(':') else {
            return Err(format!("missing colon: {s}"));
        };
        Ok(Some(match kind {
            "f" => PathElement::Field(rest.to_string()),
            "v" => PathElement::Value(
                serde_json::from_str(rest).map_err(|e| format!("parsing {s:?}: {e}"))?,
            ),
            "k" => {
                let map: serde_json::Map<String, Value> =
                    serde_json::from_str(rest).map_err(|e| format!("parsing {s:?}: {e}"))?;
                // serde_json's map iterates in key order: already sorted.
                PathElement::Key(map.into_iter().collect())
            }
            "i" => PathElement::Index(rest.parse().map_err(|e| format!("parsing {s:?}: {e}"))?),
            _ => return Ok(None),
        }))
    }
}

fn json(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Upstream's order of values: numbers, strings, booleans, lists, maps, null.
pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let c = compare_values(i, j);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((ki, vi), (kj, vj)) in x.iter().zip(y) {
                let c = ki.cmp(kj).then_with(|| compare_values(vi, vj));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Value equality as upstream sees it (`1` equals `1.0`).
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    compare_values(a, b) == Ordering::Equal
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    let c = ka.cmp(kb).then_with(|| compare_values(va, vb));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", json(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", json(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path as upstream prints it: `.spec.containers[name="a"].image`.
pub(crate) fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}
