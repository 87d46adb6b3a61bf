//! Walks over a value and its schema: list items to path elements, the
//! field set of a value, and validation of an applied configuration.
//!
//! Live objects are read leniently (a value that does not fit its schema is
//! one leaf); only the applied configuration is validated.

use std::collections::BTreeSet;

use serde_json::Value;

use super::path::{path_string, PathElement};
use super::schema::{ListRel, Schema, Ty};
use super::set::Set;

/// The path element of one item of a non-atomic list.
pub(crate) fn item_pe(rel: &ListRel, elem: &Schema, item: &Value) -> Result<PathElement, String> {
    match rel {
        ListRel::Map(keys) => {
            let obj = match item {
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into())
                }
                Value::Object(o) => o,
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut fields: Vec<(String, Value)> = Vec::new();
            for k in keys {
                if let Some(v) = obj.get(k) {
                    fields.push((k.clone(), v.clone()));
                } else if let Some(d) = elem.key_default(k) {
                    fields.push((k.clone(), d));
                }
                // Otherwise the key is left out: an item without it is a
                // different item.
            }
            if !keys.is_empty() && fields.is_empty() {
                return Err(format!(
                    "associative list with keys has an element that omits all key fields {keys:?} \
                     (and doesn't have default values for any key fields)"
                ));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        ListRel::Set | ListRel::Atomic => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            v => Ok(PathElement::Value(v.clone())),
        },
    }
}

/// Path elements of every item, or `None` if one cannot be named (the list
/// is then handled as one leaf).
pub(crate) fn item_pes(rel: &ListRel, elem: &Schema, items: &[Value]) -> Option<Vec<PathElement>> {
    items.iter().map(|i| item_pe(rel, elem, i).ok()).collect()
}

fn is_empty_map(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.is_empty())
}

/// The fields `v` sets (upstream `ToFieldSet`): leaves, atomic values, list
/// items, map entries, and empty or null struct fields.
pub(crate) fn to_field_set(v: &Value, s: &Schema) -> Set {
    let mut set = Set::new();
    walk_set(v, s, &mut Vec::new(), &mut set);
    set
}

fn walk_set(v: &Value, s: &Schema, path: &mut Vec<PathElement>, set: &mut Set) {
    match s.ty_for(v) {
        Ty::Scalar | Ty::Deduced => set.insert(path),
        Ty::List { rel, elem } => {
            let Value::Array(items) = v else {
                set.insert(path);
                return;
            };
            if rel == ListRel::Atomic {
                set.insert(path);
                return;
            }
            let Some(pes) = item_pes(&rel, &elem, items) else {
                set.insert(path);
                return;
            };
            // Items whose key repeats are owned as a whole, not field by field.
            let mut seen = BTreeSet::new();
            let mut dups = BTreeSet::new();
            for pe in &pes {
                if !seen.insert(pe) {
                    dups.insert(pe);
                }
            }
            for (item, pe) in items.iter().zip(&pes) {
                path.push(pe.clone());
                if !dups.contains(pe) {
                    walk_set(item, &elem, path, set);
                }
                set.insert(path);
                path.pop();
            }
        }
        ty @ (Ty::Struct { .. } | Ty::Map { .. }) => {
            let atomic = matches!(
                ty,
                Ty::Struct { atomic: true, .. } | Ty::Map { atomic: true, .. }
            );
            let Value::Object(map) = v else {
                set.insert(path);
                return;
            };
            if atomic {
                set.insert(path);
                return;
            }
            for (k, child) in map {
                let (cs, named) = s.child(&ty, k);
                path.push(PathElement::Field(k.clone()));
                walk_set(child, &cs, path, set);
                if child.is_null() || is_empty_map(child) || !named {
                    set.insert(path);
                }
                path.pop();
            }
        }
    }
}

/// Adds named struct fields that have owned children as members, so that
/// removing a set also removes the structs it leaves behind
/// (upstream `EnsureNamedFieldsAreMembers`).
pub(crate) fn ensure_named_fields_are_members(set: &Set, s: &Schema) -> Set {
    let ty = s.ty();
    let mut out = set.map_children(|pe, child| {
        let cs = match (pe, &ty) {
            (PathElement::Field(name), Ty::Struct { .. } | Ty::Map { .. }) => s.child(&ty, name).0,
            (PathElement::Key(_), Ty::List { elem, .. }) => *elem,
            _ => s.deduced(),
        };
        ensure_named_fields_are_members(child, &cs)
    });
    for (pe, _) in set.children() {
        if let (PathElement::Field(name), Ty::Struct { fields, .. }) = (pe, &ty) {
            if fields.contains_key(name) {
                out.add_member(pe.clone());
            }
        }
    }
    out
}

/// Checks an applied configuration against its schema; errors read like
/// upstream's (`.spec.replicas: expected numeric (int or float), got string`).
pub(crate) fn validate(v: &Value, s: &Schema) -> Vec<String> {
    let mut errs = Vec::new();
    walk_validate(v, s, &mut Vec::new(), &mut errs);
    errs
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn walk_validate(v: &Value, s: &Schema, path: &mut Vec<PathElement>, errs: &mut Vec<String>) {
    fn fail(errs: &mut Vec<String>, path: &[PathElement], msg: String) {
        let p = path_string(path);
        errs.push(if p.is_empty() {
            msg
        } else {
            format!("{p}: {msg}")
        });
    }
    if v.is_null() {
        return;
    }
    match s.ty_for(v) {
        Ty::Deduced => {}
        Ty::Scalar => {
            let ok = match s.scalar_type() {
                Some("integer" | "number") => v.is_number(),
                Some("string") => v.is_string(),
                Some("boolean") => v.is_boolean(),
                _ => !v.is_object() && !v.is_array(),
            };
            if !ok {
                let msg = match s.scalar_type() {
                    Some("integer" | "number") => {
                        format!("expected numeric (int or float), got {}", go_type(v))
                    }
                    Some("string") => format!("expected string, got {v}"),
                    Some("boolean") => format!("expected boolean, got {v}"),
                    _ => format!("expected any scalar, got {v}"),
                };
                fail(errs, path, msg);
            }
        }
        Ty::List { rel, elem } => {
            let Value::Array(items) = v else {
                fail(errs, path, format!("expected list, got {v}"));
                return;
            };
            if rel == ListRel::Atomic {
                return;
            }
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                match item_pe(&rel, &elem, item) {
                    Err(e) => fail(errs, path, format!("element {i}: {e}")),
                    Ok(pe) => {
                        if !seen.insert(pe.clone()) {
                            fail(errs, path, format!("duplicate entries for key {pe}"));
                            continue;
                        }
                        path.push(pe);
                        walk_validate(item, &elem, path, errs);
                        path.pop();
                    }
                }
            }
        }
        ty @ (Ty::Struct { .. } | Ty::Map { .. }) => {
            let Value::Object(map) = v else {
                fail(errs, path, format!("expected map, got {v}"));
                return;
            };
            if matches!(
                ty,
                Ty::Struct { atomic: true, .. } | Ty::Map { atomic: true, .. }
            ) {
                return;
            }
            // Built-in kinds have closed schemas; custom resources may carry
            // fields their schema prunes or preserves.
            let closed = s.is_builtin() && matches!(ty, Ty::Struct { .. });
            for (k, child) in map {
                let (cs, named) = s.child(&ty, k);
                path.push(PathElement::Field(k.clone()));
                if closed && !named && !has_additional(&ty) {
                    let p = path_string(path);
                    errs.push(format!("{p}: field not declared in schema"));
                } else {
                    walk_validate(child, &cs, path, errs);
                }
                path.pop();
            }
        }
    }
}

fn has_additional(ty: &Ty) -> bool {
    matches!(ty, Ty::Struct { rest, .. } if !matches!(rest.ty(), Ty::Deduced))
}
