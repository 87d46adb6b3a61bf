//! What the schema says about a value, in structured-merge-diff's terms:
//! scalar, struct, map (granular or atomic), list (atomic, set or
//! associative) or "deduced" from the value itself.

use serde_json::{Map, Value};

use super::TypeSource;
use crate::openapi::schemas;

/// A schema node: a property (extensions sit beside its `$ref`) or a
/// definition. `None` is the deduced (untyped) schema.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schema<'a> {
    node: Option<&'a Value>,
    /// Built-in catalog: `$ref`s resolve through it, and a few defaults
    /// the generated schemas lack are known (`protocol: TCP`).
    builtin: bool,
    /// The root of a custom resource: its `metadata` is ObjectMeta even when
    /// the CRD schema says only `type: object`, as upstream injects it.
    crd_root: bool,
}

thread_local! {
    /// Built-in schema nodes by address, to the definition their `$ref`s
    /// lead to (`None`: the node itself says what it is).
    static RESOLVED: std::cell::RefCell<std::collections::HashMap<usize, Option<&'static Value>>> =
        Default::default();
}

#[derive(Clone, Debug)]
pub(crate) enum Ty<'a> {
    Scalar,
    Struct {
        fields: &'a Map<String, Value>,
        rest: Schema<'a>,
        atomic: bool,
    },
    Map {
        elem: Schema<'a>,
        atomic: bool,
    },
    List {
        elem: Schema<'a>,
        rel: ListRel,
    },
    /// No type information: maps are granular, lists atomic, scalars leaves.
    Deduced,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ListRel {
    Atomic,
    Set,
    /// Associative, keyed by these fields.
    Map(Vec<String>),
}

impl<'a> Schema<'a> {
    pub(crate) fn root(types: &TypeSource<'a>) -> Self {
        match *types {
            TypeSource::Builtin {
                group,
                version,
                kind,
            } => Schema {
                // A kind the catalog does not know is tracked as deduced.
                node: schemas::schema_for(group, version, kind),
                builtin: true,
                crd_root: false,
            },
            TypeSource::Structural(s) => Schema {
                node: Some(s),
                builtin: false,
                crd_root: true,
            },
        }
    }

    pub(crate) fn is_builtin(&self) -> bool {
        self.builtin
    }

    pub(crate) fn deduced(&self) -> Schema<'a> {
        Schema {
            node: None,
            builtin: self.builtin,
            crd_root: false,
        }
    }

    fn at(&self, node: &'a Value) -> Schema<'a> {
        Schema {
            node: Some(node),
            builtin: self.builtin,
            crd_root: false,
        }
    }

    /// The node with `$ref` and single-entry `allOf` wrappers followed.
    fn resolved(&self) -> Option<&'a Value> {
        let s = self.node?;
        if !self.builtin {
            return Some(s);
        }
        // Built-in nodes all live in the static catalog, and every walk
        // resolves the same nodes again: remember each by its address.
        let key = s as *const Value as usize;
        let known = RESOLVED.with(|c| c.borrow().get(&key).copied());
        let target = match known {
            Some(t) => t,
            None => {
                let t = schemas::referenced(s).map(|(_, def)| def);
                RESOLVED.with(|c| c.borrow_mut().insert(key, t));
                t
            }
        };
        Some(target.unwrap_or(s))
    }

    /// An extension (`x-kubernetes-...`), on the property first, then on the
    /// definition it refers to.
    fn ext(&self, name: &str) -> Option<&'a Value> {
        self.node
            .and_then(|n| n.get(name))
            .or_else(|| self.resolved().and_then(|d| d.get(name)))
    }

    fn ext_str(&self, name: &str) -> Option<&'a str> {
        self.ext(name).and_then(Value::as_str)
    }

    /// The JSON type the schema declares for a scalar, if any.
    pub(crate) fn scalar_type(&self) -> Option<&'a str> {
        if self.ext("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            return None;
        }
        self.resolved()?.get("type")?.as_str()
    }

    pub(crate) fn ty(&self) -> Ty<'a> {
        let Some(d) = self.resolved() else {
            return Ty::Deduced;
        };
        if self.ext("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            return Ty::Scalar;
        }
        let atomic_map = self.ext_str("x-kubernetes-map-type") == Some("atomic");
        let rest = match d.get("additionalProperties") {
            Some(ap @ Value::Object(_)) => self.at(ap),
            _ => self.deduced(),
        };
        if let Some(Value::Object(fields)) = d.get("properties") {
            if !fields.is_empty() {
                return Ty::Struct {
                    fields,
                    rest,
                    atomic: atomic_map,
                };
            }
        }
        let ty = d.get("type").and_then(Value::as_str);
        if matches!(d.get("additionalProperties"), Some(Value::Object(_))) {
            return Ty::Map {
                elem: rest,
                atomic: atomic_map,
            };
        }
        match ty {
            Some("object") => Ty::Map {
                elem: self.deduced(),
                atomic: atomic_map,
            },
            Some("array") => Ty::List {
                elem: d.get("items").map(|i| self.at(i)).unwrap_or(self.deduced()),
                rel: self.list_rel(),
            },
            Some(_) => Ty::Scalar,
            None => Ty::Deduced,
        }
    }

    /// Associative if `list-type: map`, or (no list-type) a merge strategy
    /// with a merge key; a set if `list-type: set` or merge without a key.
    fn list_rel(&self) -> ListRel {
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        match self.ext_str("x-kubernetes-list-type") {
            Some("map") => ListRel::Map(strings(self.ext("x-kubernetes-list-map-keys"))),
            Some("set") => ListRel::Set,
            Some(_) => ListRel::Atomic,
            None => {
                let merge = self
                    .ext_str("patch-strategy")
                    .is_some_and(|s| s.split(',').any(|p| p == "merge"));
                match (merge, self.ext_str("x-kubernetes-patch-merge-key")) {
                    (true, Some(key)) => ListRel::Map(vec![key.to_string()]),
                    (true, None) => ListRel::Set,
                    _ => ListRel::Atomic,
                }
            }
        }
    }

    /// The type to use for `v`: a deduced schema takes the value's shape.
    pub(crate) fn ty_for(&self, v: &Value) -> Ty<'a> {
        match self.ty() {
            Ty::Deduced => match v {
                Value::Object(_) => Ty::Map {
                    elem: self.deduced(),
                    atomic: false,
                },
                Value::Array(_) => Ty::List {
                    elem: self.deduced(),
                    rel: ListRel::Atomic,
                },
                _ => Ty::Scalar,
            },
            t => t,
        }
    }

    /// The schema of field `name` of a struct or map typed `ty`, and whether
    /// it is a named struct field (those are not members on their own).
    pub(crate) fn child(&self, ty: &Ty<'a>, name: &str) -> (Schema<'a>, bool) {
        if self.crd_root && name == "metadata" {
            if let Some(meta) = schemas::definition(schemas::OBJECT_META) {
                return (
                    Schema {
                        node: Some(meta),
                        builtin: true,
                        crd_root: false,
                    },
                    true,
                );
            }
        }
        match ty {
            Ty::Struct { fields, rest, .. } => match fields.get(name) {
                Some(f) => (self.at(f), true),
                None => (*rest, false),
            },
            Ty::Map { elem, .. } => (*elem, false),
            _ => (self.deduced(), false),
        }
    }

    /// Whether a struct lists `name` as required.
    pub(crate) fn requires(&self, name: &str) -> bool {
        self.resolved()
            .and_then(|d| d.get("required"))
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|f| f == name))
    }

    /// The default of a list-map key field, used when an item omits it.
    pub(crate) fn key_default(&self, key: &str) -> Option<Value> {
        if let Ty::Struct { fields, .. } = self.ty() {
            if let Some(f) = fields.get(key) {
                let field = self.at(f);
                let default = f
                    .get("default")
                    .or_else(|| field.resolved().and_then(|d| d.get("default")));
                if let Some(d) = default {
                    return Some(d.clone());
                }
            }
        }
        // Kubernetes' published schemas default every port `protocol` key
        // to TCP; the generated catalog does not carry `default`s.
        (self.builtin && key == "protocol").then(|| Value::String("TCP".into()))
    }
}
