//! Merge an applied configuration into a live object, and remove a set of
//! fields from a value (upstream `TypedValue.Merge` and `RemoveItems`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use super::path::PathElement;
use super::schema::{ListRel, Schema, Ty};
use super::set::Set;
use super::typed::{item_pe, item_pes};

fn same_kind(a: &Value, b: &Value) -> bool {
    a.is_null()
        || b.is_null()
        || matches!(
            (a, b),
            (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
        )
        || !(a.is_object() || a.is_array() || b.is_object() || b.is_array())
}

fn as_list(v: Option<&Value>) -> &[Value] {
    match v {
        Some(Value::Array(a)) => a,
        _ => &[],
    }
}

fn as_map(v: Option<&Value>) -> Option<&Map<String, Value>> {
    match v {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// `lhs` (live) with `rhs` (config) merged in: structs and granular maps
/// field by field, associative lists and sets item by item, anything atomic
/// replaced. `rhs` must have been validated.
pub(crate) fn merge(l: Option<&Value>, r: Option<&Value>, s: &Schema) -> Option<Value> {
    let keep_rhs = || r.or(l).cloned();
    if let (Some(a), Some(b)) = (l, r) {
        if !same_kind(a, b) {
            return keep_rhs();
        }
    }
    let probe = [r, l]
        .into_iter()
        .flatten()
        .find(|v| !v.is_null())
        .or(r)
        .or(l)?;
    let ty = s.ty_for(probe);
    match &ty {
        Ty::Scalar | Ty::Deduced => keep_rhs(),
        Ty::List { rel, elem } => {
            let (la, ra) = (as_list(l), as_list(r));
            if *rel == ListRel::Atomic || (la.is_empty() && ra.is_empty()) {
                return keep_rhs();
            }
            let (Some(lp), Some(rp)) = (item_pes(rel, elem, la), item_pes(rel, elem, ra)) else {
                return keep_rhs();
            };
            let out = merge_items(la, &lp, ra, &rp, elem);
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Ty::Struct { atomic, .. } | Ty::Map { atomic, .. } => {
            let (lm, rm) = (as_map(l), as_map(r));
            let empty = |m: Option<&Map<String, Value>>| m.is_none_or(Map::is_empty);
            if *atomic || (empty(lm) && empty(rm)) {
                return keep_rhs();
            }
            let keys: BTreeSet<&String> = lm
                .into_iter()
                .flat_map(Map::keys)
                .chain(rm.into_iter().flat_map(Map::keys))
                .collect();
            let mut out = Map::new();
            for k in keys {
                let (cs, _) = s.child(&ty, k);
                if let Some(v) = merge(lm.and_then(|m| m.get(k)), rm.and_then(|m| m.get(k)), &cs) {
                    out.insert(k.clone(), v);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
    }
}

/// Upstream's list order: live items stay where they are, config items
/// shared with live follow the config's order, new config items are
/// inserted where the config has them relative to shared ones.
fn merge_items(
    la: &[Value],
    lp: &[PathElement],
    ra: &[Value],
    rp: &[PathElement],
    elem: &Schema,
) -> Vec<Value> {
    // A key that repeats in live is not merged into (`None`).
    let mut observed_l: BTreeMap<&PathElement, Option<&Value>> = BTreeMap::new();
    for (pe, v) in lp.iter().zip(la) {
        observed_l
            .entry(pe)
            .and_modify(|e| *e = None)
            .or_insert(Some(v));
    }
    let observed_r: BTreeMap<&PathElement, &Value> = rp.iter().zip(ra).collect();
    let mut shared: VecDeque<&PathElement> =
        rp.iter().filter(|pe| observed_l.contains_key(pe)).collect();
    let mut next_shared = shared.pop_front();
    let mut merged_r: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::new();
    let item = |l: Option<&Value>, r: Option<&Value>, out: &mut Vec<Value>| {
        if let Some(v) = merge(l, r, elem) {
            out.push(v);
        }
    };
    let (mut li, mut ri) = (0, 0);
    while li < lp.len() || ri < rp.len() {
        if li < lp.len() && ri < rp.len() {
            let pe = &lp[li];
            if *pe == rp[ri] {
                merged_r.insert(pe);
                item(observed_l[pe], Some(observed_r[pe]), &mut out);
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if observed_r.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                // A shared item, but not the next one in config order.
                li += 1;
                continue;
            }
        }
        if li < lp.len() {
            let pe = &lp[li];
            if !observed_r.contains_key(pe) {
                item(Some(&la[li]), None, &mut out);
                li += 1;
                continue;
            } else if merged_r.contains(pe) {
                li += 1;
            }
        }
        if ri < rp.len() {
            let pe = &rp[ri];
            merged_r.insert(pe);
            let l = observed_l.get(pe).copied().flatten();
            item(l, Some(observed_r[pe]), &mut out);
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    out
}

/// `v` without the fields in `remove` (a member removes its whole subtree).
/// `None` when nothing is left; the caller then drops the field.
pub(crate) fn remove_items(v: &Value, remove: &Set, s: &Schema) -> Option<Value> {
    let ty = s.ty_for(v);
    match (&ty, v) {
        (Ty::List { rel, elem }, Value::Array(items)) if *rel != ListRel::Atomic => {
            if items.is_empty() {
                return Some(v.clone());
            }
            let mut out = Vec::new();
            for it in items {
                let Ok(pe) = item_pe(rel, elem, it) else {
                    out.push(it.clone());
                    continue;
                };
                if remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                let sub = remove.with_prefix(&pe);
                if sub.is_empty() {
                    out.push(it.clone());
                } else if let Some(kept) = remove_items(it, &sub, elem) {
                    out.push(kept);
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        (Ty::Struct { atomic: false, .. } | Ty::Map { atomic: false, .. }, Value::Object(m)) => {
            if m.is_empty() {
                return Some(v.clone());
            }
            let mut out = Map::new();
            for (k, child) in m {
                let pe = PathElement::Field(k.clone());
                if remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                let sub = remove.with_prefix(&pe);
                if sub.is_empty() {
                    out.insert(k.clone(), child.clone());
                } else if let Some(kept) = remove_items(child, &sub, &s.child(&ty, k).0) {
                    out.insert(k.clone(), kept);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        _ => Some(v.clone()),
    }
}
