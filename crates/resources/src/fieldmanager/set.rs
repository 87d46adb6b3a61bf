//! Field sets: a tree of path elements where some nodes are members, with
//! upstream's set algebra and the FieldsV1 encoding.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path::PathElement;

/// A set of field paths. `children` never holds an empty set, so two equal
/// sets are structurally equal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Set {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub(crate) fn new() -> Self {
        Set::default()
    }

    /// A set of top-level fields (e.g. the ignored `status`).
    pub(crate) fn of_fields<'s>(names: impl IntoIterator<Item = &'s str>) -> Self {
        let mut s = Set::new();
        for n in names {
            s.insert(&[PathElement::Field(n.to_string())]);
        }
        s
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds `path` (not its parents). The empty path (the whole object) is
    /// never tracked.
    pub(crate) fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub(crate) fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The subset below `pe`, with `pe` taken off.
    pub(crate) fn with_prefix(&self, pe: &PathElement) -> Set {
        self.children.get(pe).cloned().unwrap_or_default()
    }

    pub(crate) fn children(&self) -> impl Iterator<Item = (&PathElement, &Set)> {
        self.children.iter()
    }

    pub(crate) fn add_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    pub(crate) fn map_children(&self, mut f: impl FnMut(&PathElement, &Set) -> Set) -> Set {
        let mut out = Set {
            members: self.members.clone(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            let c = f(pe, child);
            if !c.is_empty() {
                out.children.insert(pe.clone(), c);
            }
        }
        out
    }

    pub(crate) fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    pub(crate) fn intersection(&self, other: &Set) -> Set {
        let mut out = Set {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let i = child.intersection(theirs);
                if !i.is_empty() {
                    out.children.insert(pe.clone(), i);
                }
            }
        }
        out
    }

    /// Members of `self` not in `other`; a parent member of `other` does not
    /// take away its children (upstream's `Difference`).
    pub(crate) fn difference(&self, other: &Set) -> Set {
        let mut out = Set {
            members: self.members.difference(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            let d = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    /// Like [`Set::difference`], but a member of `other` also removes
    /// everything below it (upstream's `RecursiveDifference`).
    pub(crate) fn recursive_difference(&self, other: &Set) -> Set {
        let mut out = Set {
            members: self.members.difference(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let d = match other.children.get(pe) {
                Some(theirs) => child.recursive_difference(theirs),
                None => child.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    /// Every member path, in upstream's iteration order (a node's members,
    /// then its children).
    pub(crate) fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(p);
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The FieldsV1 object: one key per element; `".": {}` marks a member
    /// that also has children.
    pub(crate) fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        for m in &self.members {
            if !self.children.contains_key(m) {
                out.insert(m.encode(), Value::Object(Map::new()));
            }
        }
        for (pe, child) in &self.children {
            let mut inner = match child.to_fields_v1() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            if self.members.contains(pe) {
                inner.insert(".".to_string(), Value::Object(Map::new()));
            }
            out.insert(pe.encode(), Value::Object(inner));
        }
        Value::Object(out)
    }

    /// Reads a FieldsV1 object. Unknown element kinds are skipped.
    pub(crate) fn from_fields_v1(v: &Value) -> Result<Set, String> {
        let Value::Object(map) = v else {
            return Err("FieldsV1 must be a JSON object".into());
        };
        let mut out = Set::new();
        for (key, child) in map {
            if key == "." {
                continue;
            }
            let Some(pe) = PathElement::decode(key)? else {
                continue;
            };
            let Value::Object(inner) = child else {
                return Err(format!("FieldsV1 entry {key:?} must be a JSON object"));
            };
            let grandchildren = Set::from_fields_v1(child)?;
            if inner.contains_key(".") || grandchildren.is_empty() {
                out.members.insert(pe.clone());
            }
            if !grandchildren.is_empty() {
                out.children.insert(pe, grandchildren);
            }
        }
        Ok(out)
    }
}
