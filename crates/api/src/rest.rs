//! Generic REST storage: create/get/list/update/patch/delete/watch for every
//! kind in the registry, on objects in their JSON form. No HTTP here: the
//! handlers in `handlers.rs` are thin adapters over these functions.

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use resources::registry::{Registry, ResourceType};
use serde_json::{json, Value};
use store::{EventType, KeyValue, Revision, Storage};

use crate::admission;
use crate::allocator::ServiceAllocator;
use crate::error::{ApiError, GroupResource};
use crate::object::{self, meta_mut, meta_str};
use crate::selectors::{FieldSelector, LabelSelector};

/// Where a request points: a resource type and, for namespaced kinds, a namespace.
#[derive(Clone, Debug)]
pub struct Scope {
    pub rt: Arc<ResourceType>,
    /// `None` for cluster-scoped kinds, or for lists across all namespaces.
    pub namespace: Option<String>,
}

impl Scope {
    pub fn gr(&self) -> GroupResource {
        GroupResource {
            group: self.rt.group.clone(),
            resource: self.rt.resource.clone(),
        }
    }

    fn prefix(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("/registry/{}/{}/", self.rt.storage_group_resource, ns),
            None => format!("/registry/{}/", self.rt.storage_group_resource),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{}", self.prefix(), name)
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::NotFound {
            gr: self.gr(),
            name: name.to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    #[default]
    Strict,
    Warn,
    Ignore,
}

#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    /// Who makes the change, recorded in `metadata.managedFields`; `None`
    /// leaves the record as it is.
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    /// Set by server-side apply, which computes managedFields itself.
    pub applying: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub label_selector: LabelSelector,
    pub field_selector: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// From a `metav1.DeleteOptions` body (query parameters already merged
    /// in), with kube-apiserver's checks.
    pub fn from_json(v: &Value) -> Result<Self, ApiError> {
        let propagation = v
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(p) = &propagation {
            if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
                return Err(ApiError::BadRequest(format!(
                    "propagationPolicy: Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                )));
            }
        }
        let orphan = v.get("orphanDependents").and_then(Value::as_bool);
        let propagation = propagation.or(match orphan {
            Some(true) => Some("Orphan".into()),
            Some(false) => Some("Background".into()),
            None => None,
        });
        let grace = v.get("gracePeriodSeconds").and_then(Value::as_i64);
        if grace.is_some_and(|g| g < 0) {
            return Err(ApiError::BadRequest(
                "gracePeriodSeconds: Invalid value: must be >= 0".into(),
            ));
        }
        Ok(DeleteOptions {
            grace_period_seconds: grace,
            propagation_policy: propagation,
            precondition_uid: v
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string),
            precondition_resource_version: v
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string),
            dry_run: v
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == "All")),
        })
    }
}

pub struct ListResult<T = Value> {
    pub items: Vec<T>,
    pub resource_version: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// What a delete did: the object is gone, or it is waiting on finalizers or a
/// grace period (and carries a deletionTimestamp).
pub enum Deleted {
    Gone(Value),
    Pending(Value),
}

/// A watch event as the API streams it.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub event_type: &'static str,
    pub object: Value,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub service_cidr: crate::allocator::Cidr,
    pub node_port_range: (u16, u16),
}

/// The API's state: storage, the registry of served kinds, allocators.
pub struct Rest {
    pub storage: Arc<dyn Storage>,
    pub registry: RwLock<Registry>,
    pub services: ServiceAllocator,
    pub namespaces: crate::admission::NamespaceCache,
    pub priority_classes: crate::admission::PriorityClassCache,
}

const MAX_GENERATE_ATTEMPTS: usize = 8;

impl Rest {
    pub fn new(storage: Arc<dyn Storage>, cfg: &Config) -> Self {
        Rest {
            storage,
            registry: RwLock::new(Registry::builtin()),
            services: ServiceAllocator::new(cfg.service_cidr.clone(), cfg.node_port_range),
            namespaces: Default::default(),
            priority_classes: Default::default(),
        }
    }

    pub fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The scope of a served `group/version/resource`, in `namespace`.
    pub fn scope(
        &self,
        group: &str,
        version: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Result<Scope, ApiError> {
        let rt = self
            .registry()
            .get(group, version, resource)
            .cloned()
            .ok_or(ApiError::NoSuchResource)?;
        Ok(Scope {
            rt,
            namespace: namespace.map(str::to_string),
        })
    }

    /// Fills the allocators from what is stored (after a restart).
    pub async fn load_allocations(&self) -> Result<(), ApiError> {
        let scope = self.scope("", "v1", "services", None)?;
        let list = self.list(&scope, &ListOptions::default()).await?;
        for svc in &list.items {
            self.services.observe(svc);
        }
        Ok(())
    }

    /// The stored object in the version `rt` serves, with its resourceVersion.
    pub fn decode(rt: &ResourceType, kv: &KeyValue) -> Result<Value, ApiError> {
        let mut v = Self::decode_raw(kv)?;
        if rt.custom.is_some() {
            crate::crd::serve_version(rt, &mut v);
        } else if !Self::serves_stored_form(rt) {
            v = resources::conversion::convert(v, &rt.api_version()).map_err(ApiError::internal)?;
        }
        Ok(v)
    }

    /// Whether stored bytes can be served as they are (no version conversion).
    pub fn serves_stored_form(rt: &ResourceType) -> bool {
        rt.custom.is_none() && resources::conversion::storage_version(&rt.group, &rt.kind).is_none()
    }

    /// Appends the stored object to `out` with its resourceVersion spliced
    /// into `metadata`, without parsing it (lists of thousands of objects).
    pub fn write_stored(out: &mut Vec<u8>, kv: &KeyValue) -> Result<(), ApiError> {
        let Some(at) = object::top_level_metadata_start(&kv.value) else {
            let v = Self::decode_raw(kv)?;
            serde_json::to_writer(&mut *out, &v).map_err(ApiError::internal)?;
            return Ok(());
        };
        out.extend_from_slice(&kv.value[..at]);
        out.extend_from_slice(b"\"resourceVersion\":\"");
        out.extend_from_slice(kv.mod_revision.to_string().as_bytes());
        out.push(b'"');
        if kv.value.get(at) != Some(&b'}') {
            out.push(b',');
        }
        out.extend_from_slice(&kv.value[at..]);
        Ok(())
    }

    fn decode_raw(kv: &KeyValue) -> Result<Value, ApiError> {
        let mut v: Value = serde_json::from_slice(&kv.value).map_err(ApiError::internal)?;
        meta_mut(&mut v).insert(
            "resourceVersion".into(),
            Value::String(kv.mod_revision.to_string()),
        );
        Ok(v)
    }

    /// The object as stored: in its storage version, without resourceVersion.
    fn encode(rt: &ResourceType, obj: &Value) -> Result<Bytes, ApiError> {
        let mut o = obj.clone();
        meta_mut(&mut o).remove("resourceVersion");
        crate::crd::store_version(rt, &mut o);
        if let Some((group, version)) = resources::conversion::storage_version(&rt.group, &rt.kind)
        {
            let to = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            o = resources::conversion::convert(o, &to).map_err(ApiError::BadRequest)?;
        }
        serde_json::to_vec(&o)
            .map(Bytes::from)
            .map_err(ApiError::internal)
    }

    pub async fn get(&self, scope: &Scope, name: &str) -> Result<Value, ApiError> {
        let (kv, _) = self.storage.get(&scope.key(name)).await?;
        match kv {
            Some(kv) => Self::decode(&scope.rt, &kv),
            None => Err(scope.not_found(name)),
        }
    }

    async fn get_kv(&self, scope: &Scope, name: &str) -> Result<KeyValue, ApiError> {
        match self.storage.get(&scope.key(name)).await?.0 {
            Some(kv) => Ok(kv),
            None => Err(scope.not_found(name)),
        }
    }

    // ---- create ----

    pub async fn create(
        &self,
        scope: &Scope,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let rt = &scope.rt;
        check_type_meta(rt, &mut obj)?;
        if let (Some(ns), Some(body_ns)) = (&scope.namespace, meta_str(&obj, "namespace")) {
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
        }
        if rt.namespaced {
            let ns = scope
                .namespace
                .clone()
                .ok_or_else(|| ApiError::BadRequest("a namespace is required".into()))?;
            meta_mut(&mut obj).insert("namespace".into(), json!(ns));
            admission::check_namespace_accepts(self, &ns, rt, &obj).await?;
        } else {
            meta_mut(&mut obj).remove("namespace");
        }
        admission::admit_create(self, rt, &mut obj).await?;
        let generate = meta_str(&obj, "name").is_none_or(str::is_empty)
            && meta_str(&obj, "generateName").is_some_and(|g| !g.is_empty());
        if !generate && meta_str(&obj, "name").is_none_or(str::is_empty) {
            return Err(ApiError::Invalid {
                kind: rt.kind.clone(),
                group: rt.group.clone(),
                name: String::new(),
                causes: vec![resources::validation::FieldError {
                    error_type: resources::validation::ErrorType::Required,
                    field: "metadata.name".into(),
                    bad_value: None,
                    detail: "name or generateName is required".into(),
                }],
            });
        }
        prepare_for_create(rt, &mut obj);
        for attempt in 0..MAX_GENERATE_ATTEMPTS {
            let mut candidate = obj.clone();
            if generate {
                let base = meta_str(&candidate, "generateName").unwrap_or_default();
                let base = if base.len() > 58 { &base[..58] } else { base };
                let name = format!("{base}{}", object::random_suffix(5));
                meta_mut(&mut candidate).insert("name".into(), json!(name));
            }
            crate::crd::apply_defaults(rt, &mut candidate);
            track_update(rt, None, opts, None, &mut candidate)?;
            self.validate(rt, &candidate, None)?;
            admission::validate_write(self, rt, None, &candidate, true).await?;
            let allocation = if rt.group.is_empty() && rt.kind == "Service" {
                Some(
                    self.services
                        .allocate(&mut candidate, None, opts.dry_run)
                        .map_err(|causes| ApiError::Invalid {
                            kind: rt.kind.clone(),
                            group: String::new(),
                            name: object::name(&candidate).to_string(),
                            causes,
                        })?,
                )
            } else {
                None
            };
            if opts.dry_run {
                // Dry run: nothing stored, but the name must be free.
                let name = object::name(&candidate).to_string();
                if self.storage.get(&scope.key(&name)).await?.0.is_some() {
                    return Err(ApiError::AlreadyExists {
                        gr: scope.gr(),
                        name,
                    });
                }
                return Ok(candidate);
            }
            let name = object::name(&candidate).to_string();
            match self
                .storage
                .create(&scope.key(&name), Self::encode(rt, &candidate)?)
                .await
            {
                Ok(kv) => {
                    // The object as written, plus its resourceVersion: no
                    // need to parse back what was just serialized.
                    meta_mut(&mut candidate)
                        .insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
                    return Ok(candidate);
                }
                Err(e) => {
                    if let Some(a) = allocation {
                        self.services.release(&a);
                    }
                    match e {
                        store::Error::AlreadyExists { .. }
                            if generate && attempt + 1 < MAX_GENERATE_ATTEMPTS => {}
                        store::Error::AlreadyExists { .. } => {
                            return Err(ApiError::AlreadyExists {
                                gr: scope.gr(),
                                name,
                            })
                        }
                        other => return Err(other.into()),
                    }
                }
            }
        }
        Err(ApiError::internal("could not generate a unique name"))
    }

    fn validate(
        &self,
        rt: &ResourceType,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let mut causes =
            resources::validation::validate(&rt.group, &rt.kind, rt.namespaced, obj, old);
        causes.extend(crate::crd::validate(rt, obj, old));
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid {
                kind: rt.kind.clone(),
                group: rt.group.clone(),
                name: object::name(obj).to_string(),
                causes,
            })
        }
    }

    // ---- list ----

    /// Lists objects in the version the scope serves.
    pub async fn list(&self, scope: &Scope, opts: &ListOptions) -> Result<ListResult, ApiError> {
        let raw = self.list_kvs(scope, opts).await?;
        Ok(ListResult {
            items: raw
                .items
                .iter()
                .map(|kv| Self::decode(&scope.rt, kv))
                .collect::<Result<_, _>>()?,
            resource_version: raw.resource_version,
            continue_token: raw.continue_token,
            remaining: raw.remaining,
        })
    }

    /// Lists stored objects as the store holds them; selectors are applied
    /// here, but matching items are not kept decoded (lists can be large).
    pub async fn list_kvs(
        &self,
        scope: &Scope,
        opts: &ListOptions,
    ) -> Result<ListResult<KeyValue>, ApiError> {
        opts.field_selector
            .check_supported(&scope.rt.group, &scope.rt.kind)
            .map_err(ApiError::BadRequest)?;
        let prefix = scope.prefix();
        let (mut start_after, mut at_revision) = (None::<String>, None::<Revision>);
        if let Some(token) = opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            let (rv, start) = decode_continue(token)?;
            at_revision = Some(rv);
            start_after = Some(format!("{prefix}{start}"));
        } else if let Some(rv) = opts.resource_version.as_deref().filter(|s| !s.is_empty()) {
            let n = parse_rv(rv)?;
            match opts.resource_version_match.as_deref() {
                Some("Exact") => at_revision = Some(n),
                Some("NotOlderThan") | None | Some("") => {
                    let cur = self.storage.current_revision();
                    if n > cur {
                        return Err(ApiError::Timeout(format!(
                            "Too large resource version: {n}, current: {cur}"
                        )));
                    }
                }
                Some(other) => {
                    return Err(ApiError::BadRequest(format!(
                        "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                    )))
                }
            }
        }
        if let Some(name) = opts.field_selector.pinned_name() {
            // A list pinned to one name in one namespace is a get (kubectl's
            // informers ask this way).
            let single = scope.namespace.is_some() || !scope.rt.namespaced;
            if single && start_after.is_none() && at_revision.is_none() {
                let (kv, rev) = self.storage.get(&scope.key(name)).await?;
                let mut items = Vec::new();
                if let Some(kv) = kv {
                    if self.matches(&Self::decode(&scope.rt, &kv)?, opts) {
                        items.push(kv);
                    }
                }
                return Ok(ListResult {
                    items,
                    resource_version: rev,
                    continue_token: None,
                    remaining: None,
                });
            }
        }
        let filtering = !opts.label_selector.is_empty() || !opts.field_selector.is_empty();
        let mut items = Vec::new();
        loop {
            let want = opts.limit.map(|l| l.saturating_sub(items.len()));
            let page = self
                .storage
                .list(
                    &prefix,
                    start_after.as_deref(),
                    want.map(|w| w.max(1)),
                    at_revision,
                )
                .await?;
            at_revision = Some(page.revision);
            let last_key = page.kvs.last().map(|kv| kv.key.clone());
            for kv in page.kvs {
                if !filtering || self.matches(&Self::decode(&scope.rt, &kv)?, opts) {
                    items.push(kv);
                }
            }
            let full = opts.limit.is_some_and(|l| items.len() >= l);
            if !page.more {
                return Ok(ListResult {
                    items,
                    resource_version: page.revision,
                    continue_token: None,
                    remaining: None,
                });
            }
            start_after = last_key;
            if full {
                let start = start_after
                    .as_deref()
                    .and_then(|k| k.strip_prefix(&prefix))
                    .unwrap_or_default();
                return Ok(ListResult {
                    items,
                    resource_version: page.revision,
                    continue_token: Some(encode_continue(page.revision, start)),
                    remaining: (!filtering).then_some(page.remaining),
                });
            }
        }
    }

    fn matches(&self, obj: &Value, opts: &ListOptions) -> bool {
        opts.label_selector
            .matches(obj.get("metadata").and_then(|m| m.get("labels")))
            && opts.field_selector.matches(obj)
    }

    // ---- update and patch ----

    /// Read-modify-write with optimistic concurrency. `mutate` gets the
    /// current object and returns the desired one; the write is retried on a
    /// conflict unless the caller pinned a resourceVersion.
    pub async fn update_with<F>(
        &self,
        scope: &Scope,
        name: &str,
        subresource: Option<&str>,
        opts: &WriteOptions,
        mut mutate: F,
    ) -> Result<Value, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError> + Send,
    {
        let rt = scope.rt.clone();
        loop {
            let kv = self.get_kv(scope, name).await?;
            let old = Self::decode(&rt, &kv)?;
            let mut new = mutate(&old)?;
            check_type_meta(&rt, &mut new)?;
            if object::name(&new) != name {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    object::name(&new)
                )));
            }
            // A resourceVersion in the result (sent by the client, or kept
            // from the object a patch applied to) must be the current one.
            // After a lost race the next round reads afresh: a patch that did
            // not pin a version then applies again, a pinned one conflicts.
            if let Some(rv) = meta_str(&new, "resourceVersion").filter(|s| !s.is_empty()) {
                if rv != kv.mod_revision.to_string() {
                    return Err(conflict(scope, name));
                }
            }
            let mut new = merge_for_update(&rt, subresource, &old, new);
            admission::admit_update(&rt, subresource, &old, &mut new);
            // Unchanged (a no-op apply, a repeated PUT): what is stored was
            // defaulted and validated when written; answer without a write.
            meta_mut(&mut new).insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
            if new == old {
                return Ok(new);
            }
            if subresource == Some("binding") {
                // `pods/binding` checked its target itself; like upstream's
                // assignPod it writes past pod-update validation (which
                // forbids changing spec.nodeName) and leaves managedFields.
            } else if subresource == Some("status") {
                track_update(&rt, subresource, opts, Some(&old), &mut new)?;
                let mut causes = resources::validation::validate_status_update(
                    &rt.group,
                    &rt.kind,
                    rt.namespaced,
                    &new,
                    &old,
                );
                causes.extend(crate::crd::validate(&rt, &new, Some(&old)));
                if !causes.is_empty() {
                    return Err(ApiError::Invalid {
                        kind: rt.kind.clone(),
                        group: rt.group.clone(),
                        name: name.to_string(),
                        causes,
                    });
                }
            } else {
                crate::crd::apply_defaults(&rt, &mut new);
                if rt.group.is_empty() && rt.kind == "Service" {
                    self.services
                        .allocate(&mut new, Some(&old), opts.dry_run)
                        .map_err(|causes| ApiError::Invalid {
                            kind: rt.kind.clone(),
                            group: String::new(),
                            name: name.to_string(),
                            causes,
                        })?;
                }
                track_update(&rt, subresource, opts, Some(&old), &mut new)?;
                self.validate(&rt, &new, Some(&old))?;
                admission::validate_write(self, &rt, subresource, &new, false).await?;
            }
            bump_generation(&rt, &old, &mut new);
            if new == old || opts.dry_run {
                return Ok(new);
            }
            let empty = |p: &str| {
                new.pointer(p)
                    .and_then(Value::as_array)
                    .is_none_or(|f| f.is_empty())
            };
            // A deleting object goes once its finalizers are gone (for a
            // namespace, also the `spec.finalizers` its controller clears).
            let finalized = new.pointer("/metadata/deletionTimestamp").is_some()
                && empty("/metadata/finalizers")
                && (!(rt.group.is_empty() && rt.kind == "Namespace") || empty("/spec/finalizers"));
            let result = if finalized {
                self.storage
                    .delete(&scope.key(name), Some(kv.mod_revision))
                    .await
            } else {
                self.storage
                    .update(&scope.key(name), Self::encode(&rt, &new)?, kv.mod_revision)
                    .await
            };
            // The answer is the object written, at its new revision: no need
            // to parse back what was just serialized.
            let result = result.map(|kv| {
                meta_mut(&mut new)
                    .insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
                new
            });
            match result {
                Ok(o) => {
                    if finalized {
                        self.after_delete(&rt, &o);
                    } else if rt.group.is_empty() && rt.kind == "Service" {
                        self.services.release_changed(&old, &o);
                    }
                    return Ok(o);
                }
                Err(store::Error::Conflict { .. }) => continue,
                Err(store::Error::NotFound { .. }) => return Err(scope.not_found(name)),
                Err(e) => return Err(e.into()),
            }
        }
    }

    // ---- delete ----

    pub async fn delete(
        &self,
        scope: &Scope,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let rt = scope.rt.clone();
        admission::check_delete(&rt, name)?;
        loop {
            let kv = self.get_kv(scope, name).await?;
            let obj = Self::decode(&rt, &kv)?;
            if let Some(uid) = &opts.precondition_uid {
                let have = meta_str(&obj, "uid").unwrap_or_default();
                if uid != have {
                    return Err(ApiError::Conflict {
                        gr: scope.gr(),
                        name: name.to_string(),
                        message: format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"),
                    });
                }
            }
            if let Some(rv) = &opts.precondition_resource_version {
                let have = kv.mod_revision.to_string();
                if *rv != have {
                    return Err(ApiError::Conflict {
                        gr: scope.gr(),
                        name: name.to_string(),
                        message: format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {have}"),
                    });
                }
            }
            let mut pending = obj.clone();
            let mut graceful = false;
            let m = meta_mut(&mut pending);
            let mut finalizers: Vec<Value> = m
                .get("finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let policy_finalizer = match opts.propagation_policy.as_deref() {
                Some("Foreground") => Some("foregroundDeletion"),
                Some("Orphan") => Some("orphan"),
                _ => None,
            };
            if let Some(f) = policy_finalizer {
                if !finalizers.iter().any(|x| x == f) {
                    finalizers.push(json!(f));
                }
            }
            if rt.group.is_empty() && rt.kind == "Namespace" && !finalizers.is_empty() {
                // handled by the finalizer path below
            }
            let already_deleting = m.contains_key("deletionTimestamp");
            if let Some(grace) = pod_grace_period(&rt, &obj, opts) {
                graceful = true;
                if !already_deleting
                    || m.get("deletionGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .is_some_and(|g| grace < g)
                {
                    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                    m.insert("deletionTimestamp".into(), json!(object::format_time(at)));
                    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                }
            }
            let namespace_finalizing = rt.group.is_empty()
                && rt.kind == "Namespace"
                && pending
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty());
            if !finalizers.is_empty() || graceful || namespace_finalizing {
                let m = meta_mut(&mut pending);
                if !m.contains_key("deletionTimestamp") {
                    m.insert("deletionTimestamp".into(), json!(object::now_rfc3339()));
                    m.insert("deletionGracePeriodSeconds".into(), json!(0));
                }
                if !finalizers.is_empty() {
                    m.insert("finalizers".into(), Value::Array(finalizers));
                }
                if namespace_finalizing {
                    pending["status"]["phase"] = json!("Terminating");
                }
                if pending == obj || opts.dry_run {
                    return Ok(Deleted::Pending(pending));
                }
                match self
                    .storage
                    .update(
                        &scope.key(name),
                        Self::encode(&rt, &pending)?,
                        kv.mod_revision,
                    )
                    .await
                {
                    Ok(kv) => return Ok(Deleted::Pending(Self::decode(&rt, &kv)?)),
                    Err(store::Error::Conflict { .. }) => continue,
                    Err(store::Error::NotFound { .. }) => return Err(scope.not_found(name)),
                    Err(e) => return Err(e.into()),
                }
            }
            if opts.dry_run {
                return Ok(Deleted::Gone(obj));
            }
            match self
                .storage
                .delete(&scope.key(name), Some(kv.mod_revision))
                .await
            {
                Ok(kv) => {
                    let mut gone = obj;
                    meta_mut(&mut gone)
                        .insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
                    self.after_delete(&rt, &gone);
                    return Ok(Deleted::Gone(gone));
                }
                Err(store::Error::Conflict { .. }) => continue,
                Err(store::Error::NotFound { .. }) => return Err(scope.not_found(name)),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn after_delete(&self, rt: &ResourceType, obj: &Value) {
        if rt.group.is_empty() && rt.kind == "Service" {
            self.services.release_object(obj);
        }
    }

    /// Deletes every object a list would return.
    pub async fn delete_collection(
        &self,
        scope: &Scope,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let items = self.list(scope, list).await?.items;
        let mut out = Vec::new();
        // What may not be deleted one by one (the built-in PriorityClasses)
        // is left out of a collection delete rather than failing it.
        let items = items
            .into_iter()
            .filter(|i| admission::check_delete(&scope.rt, object::name(i)).is_ok());
        for item in items {
            let s = Scope {
                rt: scope.rt.clone(),
                namespace: meta_str(&item, "namespace").map(str::to_string),
            };
            match self.delete(&s, object::name(&item), opts).await {
                Ok(Deleted::Gone(o)) | Ok(Deleted::Pending(o)) => out.push(o),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    // ---- watch ----

    /// Events for `scope` after `after` (or, with `initial`, the current
    /// objects as ADDED first), filtered by the selectors.
    pub async fn watch(
        &self,
        scope: &Scope,
        opts: &ListOptions,
        send_initial: bool,
    ) -> Result<
        (
            Vec<WatchEvent>,
            Revision,
            impl Stream<Item = Result<WatchEvent, ApiError>> + Send + 'static,
        ),
        ApiError,
    > {
        opts.field_selector
            .check_supported(&scope.rt.group, &scope.rt.kind)
            .map_err(ApiError::BadRequest)?;
        let mut initial = Vec::new();
        let from = match opts
            .resource_version
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "0")
        {
            Some(rv) if !send_initial => parse_rv(rv)?,
            _ => {
                let list = self
                    .list(
                        scope,
                        &ListOptions {
                            label_selector: opts.label_selector.clone(),
                            field_selector: opts.field_selector.clone(),
                            ..Default::default()
                        },
                    )
                    .await?;
                initial = list
                    .items
                    .into_iter()
                    .map(|object| WatchEvent {
                        event_type: "ADDED",
                        object,
                    })
                    .collect();
                list.resource_version
            }
        };
        let stream = self.storage.watch(&scope.prefix(), from).await?;
        let label = opts.label_selector.clone();
        let field = opts.field_selector.clone();
        let filtering = !label.is_empty() || !field.is_empty();
        let rt = scope.rt.clone();
        let matches = move |o: &Value| {
            label.matches(o.get("metadata").and_then(|m| m.get("labels"))) && field.matches(o)
        };
        let events = stream.filter_map(move |ev| {
            let out = match ev {
                Err(e) => Some(Err(ApiError::from(e))),
                Ok(ev) => translate_event(&rt, &ev, filtering, &matches).transpose(),
            };
            futures::future::ready(out)
        });
        Ok((initial, from, events))
    }
}

fn translate_event(
    rt: &ResourceType,
    ev: &store::Event,
    filtering: bool,
    matches: &impl Fn(&Value) -> bool,
) -> Result<Option<WatchEvent>, ApiError> {
    let cur = Rest::decode(rt, &ev.kv)?;
    if !filtering {
        let t = match ev.event_type {
            EventType::Created => "ADDED",
            EventType::Updated => "MODIFIED",
            EventType::Deleted => "DELETED",
        };
        return Ok(Some(WatchEvent {
            event_type: t,
            object: cur,
        }));
    }
    let now = ev.event_type != EventType::Deleted && matches(&cur);
    let before = match &ev.prev {
        Some(p) => matches(&Rest::decode(rt, p)?),
        None => false,
    };
    let t = match (before, now, ev.event_type) {
        (_, _, EventType::Deleted) if matches(&cur) => "DELETED",
        (_, _, EventType::Deleted) => return Ok(None),
        (false, true, _) => "ADDED",
        (true, true, _) => "MODIFIED",
        (true, false, _) => "DELETED",
        (false, false, _) => return Ok(None),
    };
    Ok(Some(WatchEvent {
        event_type: t,
        object: cur,
    }))
}

fn conflict(scope: &Scope, name: &str) -> ApiError {
    ApiError::Conflict {
        gr: scope.gr(),
        name: name.to_string(),
        message: "the object has been modified; please apply your changes to the latest version and try again".into(),
    }
}

pub fn parse_rv(rv: &str) -> Result<Revision, ApiError> {
    rv.parse::<Revision>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))
}

/// Continue tokens as kube-apiserver makes them: base64 of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after prefix>"}`.
fn encode_continue(rv: Revision, start: &str) -> String {
    use base64::Engine;
    let body = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(body.to_string())
}

fn decode_continue(token: &str) -> Result<(Revision, String), ApiError> {
    use base64::Engine;
    let bad = || {
        ApiError::BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into())
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad());
    }
    let rv = v["rv"].as_i64().ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((rv, start.to_string()))
}

/// Sets and checks `apiVersion`/`kind` against the resource addressed.
fn check_type_meta(rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
    let Some(o) = obj.as_object_mut() else {
        return Err(ApiError::BadRequest(
            "the body of the request is not a JSON object".into(),
        ));
    };
    let want_av = rt.api_version();
    match o.get("apiVersion").and_then(Value::as_str) {
        Some(av) if av != want_av => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )))
        }
        _ => {}
    }
    match o.get("kind").and_then(Value::as_str) {
        Some(k) if k != rt.kind => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )))
        }
        _ => {}
    }
    o.insert("apiVersion".into(), json!(want_av));
    o.insert("kind".into(), json!(rt.kind));
    if !o.get("metadata").is_none_or(Value::is_object) {
        return Err(ApiError::BadRequest("metadata must be an object".into()));
    }
    Ok(())
}

/// Kinds whose `metadata.generation` counts spec changes.
fn tracks_generation(rt: &ResourceType) -> bool {
    rt.custom.is_some()
        || !matches!(
            (rt.group.as_str(), rt.kind.as_str()),
            (
                "",
                "Namespace"
                    | "Node"
                    | "Service"
                    | "PersistentVolume"
                    | "PersistentVolumeClaim"
                    | "ResourceQuota"
            )
        ) && (rt.has_status || rt.group.contains('.') && !rt.group.ends_with(".k8s.io"))
}

/// Server-owned fields on create: uid, timestamps, generation, initial status.
fn prepare_for_create(rt: &ResourceType, obj: &mut Value) {
    let m = meta_mut(obj);
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(object::now_rfc3339()));
    m.remove("resourceVersion");
    m.remove("deletionTimestamp");
    m.remove("deletionGracePeriodSeconds");
    m.remove("selfLink");
    if tracks_generation(rt) {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
    if rt.has_status && !(rt.group.is_empty() && rt.kind == "Node") {
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            obj["status"] = json!({"phase": "Pending", "qosClass": qos_class(obj)});
        }
        ("", "Namespace") => {
            obj["status"] = json!({"phase": "Active"});
        }
        _ => {}
    }
}

/// The pod's QoS class from its containers' requests and limits.
fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod.pointer(&format!("/spec/{k}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(res));
            let r = req.and_then(|r| r.get(res)).or(l);
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed && !containers.is_empty() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Keeps what an update may not change: server-owned metadata, and the part
/// (spec or status) the addressed endpoint does not own.
/// The top-level fields a write through `subresource` does not own: the
/// main resource leaves `status` to `/status`, which leaves `spec` alone.
pub fn reset_fields(rt: &ResourceType, subresource: Option<&str>) -> &'static [&'static str] {
    match subresource {
        Some("status") => &["spec"],
        _ if rt.has_status => &["status"],
        _ => &[],
    }
}

/// The schema the field manager walks for objects of `rt`.
pub fn field_types(rt: &ResourceType) -> resources::fieldmanager::TypeSource<'_> {
    // A custom resource without a schema is tracked untyped, as a kind the
    // catalog does not know.
    match rt.custom.as_ref().and_then(|c| c.schema.as_ref()) {
        Some(schema) => resources::fieldmanager::TypeSource::Structural(schema),
        None => resources::fieldmanager::TypeSource::Builtin {
            group: &rt.group,
            version: &rt.version,
            kind: &rt.kind,
        },
    }
}

/// Records an update by the request's field manager in
/// `metadata.managedFields` (server-side apply computes its own record).
fn track_update(
    rt: &ResourceType,
    subresource: Option<&str>,
    opts: &WriteOptions,
    old: Option<&Value>,
    new: &mut Value,
) -> Result<(), ApiError> {
    let Some(manager) = opts.field_manager.as_deref().filter(|_| !opts.applying) else {
        return Ok(());
    };
    let time = object::now_rfc3339();
    let api_version = rt.api_version();
    let req = resources::fieldmanager::Request {
        manager,
        subresource: subresource.filter(|s| *s != "finalize"),
        api_version: &api_version,
        time: &time,
        types: field_types(rt),
        ignored: reset_fields(rt, subresource),
    };
    resources::fieldmanager::update(old, new, &req).map_err(ApiError::BadRequest)
}

fn merge_for_update(
    rt: &ResourceType,
    subresource: Option<&str>,
    old: &Value,
    new: Value,
) -> Value {
    let mut out = match subresource {
        Some("binding") => new,
        Some("status") => {
            let mut o = old.clone();
            // Who wrote the status is recorded on the object.
            if let Some(m) = new.pointer("/metadata/managedFields") {
                o["metadata"]["managedFields"] = m.clone();
            }
            match new.get("status") {
                Some(s) => o["status"] = s.clone(),
                None => {
                    if let Some(m) = o.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            o
        }
        _ => {
            let mut n = new;
            if rt.has_status && !(rt.group.is_empty() && rt.kind == "Namespace") {
                match old.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Some(m) = n.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            if rt.group.is_empty() && rt.kind == "Namespace" {
                n["status"] = old
                    .get("status")
                    .cloned()
                    .unwrap_or(json!({"phase": "Active"}));
            }
            n
        }
    };
    let old_meta = old.get("metadata").cloned().unwrap_or_default();
    let m = meta_mut(&mut out);
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(f) {
            Some(v) => {
                m.insert(f.into(), v.clone());
            }
            None => {
                m.remove(f);
            }
        }
    }
    if !m.contains_key("namespace") {
        if let Some(ns) = old_meta.get("namespace") {
            m.insert("namespace".into(), ns.clone());
        }
    }
    // A writer that does not know managedFields does not erase them.
    if !m.contains_key("managedFields") {
        if let Some(mf) = old_meta.get("managedFields") {
            m.insert("managedFields".into(), mf.clone());
        }
    }
    // A deleting object may lose finalizers but not gain new ones.
    out
}

fn bump_generation(rt: &ResourceType, old: &Value, new: &mut Value) {
    if !tracks_generation(rt) {
        return;
    }
    if crate::crd::spec_changed(rt, old, new) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(new).insert("generation".into(), json!(g + 1));
    }
}

/// For pods, the grace period a delete waits for the kubelet, or `None` when
/// the pod can go at once (unscheduled, finished, or a zero grace period).
fn pod_grace_period(rt: &ResourceType, pod: &Value, opts: &DeleteOptions) -> Option<i64> {
    if !(rt.group.is_empty() && rt.kind == "Pod") {
        return None;
    }
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if node.is_empty() || phase == "Succeeded" || phase == "Failed" {
        return None;
    }
    let grace = opts.grace_period_seconds.unwrap_or_else(|| {
        pod.pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30)
    });
    (grace > 0).then_some(grace)
}

/// An API over a fresh SQLite store in a temporary directory, with the
/// `default` namespace and the built-in PriorityClasses, for in-process tests.
#[cfg(test)]
pub(crate) async fn test_rest() -> (tempfile::TempDir, Rest) {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = store::sqlite::SqliteStore::open(&dir.path().join("state.db")).expect("store");
    let rest = Rest::new(
        storage,
        &Config {
            service_cidr: crate::allocator::Cidr::parse("10.43.0.0/16").expect("cidr"),
            node_port_range: (30000, 32767),
        },
    );
    let ns = rest
        .scope("", "v1", "namespaces", None)
        .expect("namespaces");
    rest.create(
        &ns,
        json!({"metadata": {"name": "default"}}),
        &WriteOptions::default(),
    )
    .await
    .expect("default namespace");
    let pcs = rest
        .scope("scheduling.k8s.io", "v1", "priorityclasses", None)
        .expect("priority classes");
    for (name, value, description) in crate::admission::SYSTEM_PRIORITY_CLASSES {
        rest.create(
            &pcs,
            json!({"metadata": {"name": name}, "value": value, "description": description}),
            &WriteOptions::default(),
        )
        .await
        .expect("built-in priority class");
    }
    (dir, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_get_their_resource_version() {
        for (stored, want) in [
            (
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#,
                json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"7"}}),
            ),
            (
                r#"{"data":{"metadata":"{"},"metadata":{}}"#,
                json!({"data":{"metadata":"{"},"metadata":{"resourceVersion":"7"}}),
            ),
            (
                r#"{"kind":"X"}"#,
                json!({"kind":"X","metadata":{"resourceVersion":"7"}}),
            ),
        ] {
            let kv = KeyValue {
                key: "k".into(),
                value: Bytes::from(stored),
                create_revision: 7,
                mod_revision: 7,
            };
            let mut out = Vec::new();
            Rest::write_stored(&mut out, &kv).unwrap();
            let got: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "web-3");
        assert_eq!(decode_continue(&t).unwrap(), (42, "web-3".to_string()));
        assert!(decode_continue("garbage").is_err());
    }

    #[test]
    fn qos() {
        let p = |c: Value| json!({"spec": {"containers": [c]}});
        assert_eq!(qos_class(&p(json!({"name": "a"}))), "BestEffort");
        assert_eq!(
            qos_class(&p(
                json!({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}})
            )),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&p(json!({"resources": {"requests": {"cpu": "1"}}}))),
            "Burstable"
        );
    }
}
