//! Compare two values of one type: which fields were added, removed or
//! modified (upstream `TypedValue.Compare`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::path::{values_equal, PathElement};
use super::schema::{ListRel, Schema, Ty};
use super::set::Set;
use super::typed::item_pes;

#[derive(Clone, Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: Set,
    pub(crate) removed: Set,
    pub(crate) modified: Set,
}

impl Comparison {
    /// Drops `fields` and everything below them (upstream `ExcludeFields`).
    pub(crate) fn exclude(self, fields: &Set) -> Comparison {
        Comparison {
            added: self.added.recursive_difference(fields),
            removed: self.removed.recursive_difference(fields),
            modified: self.modified.recursive_difference(fields),
        }
    }
}

pub(crate) fn compare(lhs: &Value, rhs: &Value, s: &Schema) -> Comparison {
    let mut c = Comparison::default();
    walk(Some(lhs), Some(rhs), s, false, &mut Vec::new(), &mut c);
    c
}

fn kind(v: &Value) -> u8 {
    match v {
        Value::Object(_) => 1,
        Value::Array(_) => 2,
        Value::Null => 3,
        _ => 0,
    }
}

fn leaf(l: Option<&Value>, r: Option<&Value>, path: &[PathElement], c: &mut Comparison) {
    match (l, r) {
        (None, _) => c.added.insert(path),
        (_, None) => c.removed.insert(path),
        (Some(a), Some(b)) if !values_equal(a, b) => c.modified.insert(path),
        _ => {}
    }
}

fn as_map(v: Option<&Value>) -> Option<Option<&Map<String, Value>>> {
    match v {
        None | Some(Value::Null) => Some(None),
        Some(Value::Object(m)) => Some(Some(m)),
        Some(_) => None,
    }
}

fn as_list(v: Option<&Value>) -> Option<&[Value]> {
    match v {
        None | Some(Value::Null) => Some(&[]),
        Some(Value::Array(a)) => Some(a),
        Some(_) => None,
    }
}

fn walk(
    l: Option<&Value>,
    r: Option<&Value>,
    s: &Schema,
    always_present: bool,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) {
    if let (Some(a), Some(b)) = (l, r) {
        if kind(a) != kind(b) && !a.is_null() && !b.is_null() {
            return leaf(l, r, path, c);
        }
    }
    let probe = [r, l]
        .into_iter()
        .flatten()
        .find(|v| !v.is_null())
        .or(r)
        .or(l);
    let Some(probe) = probe else { return };
    let ty = s.ty_for(probe);
    match &ty {
        Ty::Scalar | Ty::Deduced => return leaf(l, r, path, c),
        Ty::List { rel, elem } => {
            let (Some(la), Some(ra)) = (as_list(l), as_list(r)) else {
                return leaf(l, r, path, c);
            };
            if *rel == ListRel::Atomic || (la.is_empty() && ra.is_empty()) {
                return leaf(l, r, path, c);
            }
            let (Some(lp), Some(rp)) = (item_pes(rel, elem, la), item_pes(rel, elem, ra)) else {
                return leaf(l, r, path, c);
            };
            list_items(la, &lp, ra, &rp, elem, path, c);
        }
        Ty::Struct { atomic, .. } | Ty::Map { atomic, .. } => {
            let (Some(lm), Some(rm)) = (as_map(l), as_map(r)) else {
                return leaf(l, r, path, c);
            };
            let empty = |m: Option<&Map<String, Value>>| m.is_none_or(Map::is_empty);
            if *atomic || (empty(lm) && empty(rm)) {
                return leaf(l, r, path, c);
            }
            let mut keys: Vec<&String> = lm.into_iter().flat_map(Map::keys).collect();
            keys.extend(rm.into_iter().flat_map(Map::keys));
            keys.sort();
            keys.dedup();
            for k in keys {
                let (cs, named) = s.child(&ty, k);
                // Built-in kinds are Go structs upstream: an empty object
                // already has its value structs and its required
                // (non-omitempty) fields, so those are never added or
                // removed themselves.
                let present = s.is_builtin()
                    && named
                    && (matches!(cs.ty(), Ty::Struct { .. }) || s.requires(k));
                path.push(PathElement::Field(k.clone()));
                walk(
                    lm.and_then(|m| m.get(k)),
                    rm.and_then(|m| m.get(k)),
                    &cs,
                    present,
                    path,
                    c,
                );
                path.pop();
            }
        }
    }
    if always_present {
        return;
    }
    match (l, r) {
        (None, _) => c.added.insert(path),
        (_, None) => c.removed.insert(path),
        _ => {}
    }
}

/// Items are matched by path element; a key that repeats on one side is
/// compared as a whole.
fn list_items(
    la: &[Value],
    lp: &[PathElement],
    ra: &[Value],
    rp: &[PathElement],
    elem: &Schema,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) {
    let mut order: Vec<&PathElement> = Vec::new();
    let mut lv: BTreeMap<&PathElement, Vec<&Value>> = BTreeMap::new();
    let mut rv: BTreeMap<&PathElement, Vec<&Value>> = BTreeMap::new();
    for (pe, v) in lp.iter().zip(la) {
        let e = lv.entry(pe).or_default();
        if e.is_empty() {
            order.push(pe);
        }
        e.push(v);
    }
    for (pe, v) in rp.iter().zip(ra) {
        let e = rv.entry(pe).or_default();
        if e.is_empty() && !lv.contains_key(pe) {
            order.push(pe);
        }
        e.push(v);
    }
    for pe in order {
        let ls = lv.get(pe).map(Vec::as_slice).unwrap_or(&[]);
        let rs = rv.get(pe).map(Vec::as_slice).unwrap_or(&[]);
        path.push(pe.clone());
        match (ls.len(), rs.len()) {
            (0..=1, 0..=1) => walk(
                ls.first().copied(),
                rs.first().copied(),
                elem,
                false,
                path,
                c,
            ),
            (2.., 2..) => {
                let same =
                    ls.len() == rs.len() && ls.iter().zip(rs).all(|(a, b)| values_equal(a, b));
                if !same {
                    c.modified.insert(path);
                }
            }
            (2.., _) => {
                if let Some(r) = rs.first() {
                    walk(None, Some(r), elem, false, path, c);
                }
                c.removed.insert(path);
            }
            (_, _) => {
                if let Some(l) = ls.first() {
                    walk(Some(l), None, elem, false, path, c);
                }
                c.added.insert(path);
            }
        }
        path.pop();
    }
}
