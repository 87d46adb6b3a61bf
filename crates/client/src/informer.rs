//! Shared informers: one list+watch and one cached copy per resource type for
//! every controller in the process, as client-go's `SharedInformerFactory`
//! gives kube-controller-manager.
//!
//! A controller asks [`Informers`] for the type it needs, registers a handler
//! with [`Informer::on_change`] (called in order, on the informer's task, for
//! every add, update and delete, with the old object on updates) and reads
//! the cache with [`Informer::get`], [`Informer::list`] and
//! [`Informer::by_index`]. A handler registered after the first list is
//! replayed the cache as adds, so start order does not matter.
//!
//! Objects are cached behind `Arc`, without `managedFields` (no controller
//! reads them), and a relist after a broken watch reports what disappeared
//! meanwhile as deletes.

use std::any::{Any, TypeId};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The owner reference with `controller: true`, if any (`GetControllerOf`).
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// One change seen by an informer.
pub enum Change<K> {
    /// Added (`old` is `None`) or updated, or replayed after a relist.
    Applied { old: Option<Arc<K>>, new: Arc<K> },
    /// Deleted: the last state the cache had.
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The object as it now is (the last state for a delete).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Applied { new, .. } => new,
            Change::Deleted(old) => old,
        }
    }

    /// The state before the change, when there was one in the cache.
    pub fn old(&self) -> Option<&Arc<K>> {
        match self {
            Change::Applied { old, .. } => old.as_ref(),
            Change::Deleted(old) => Some(old),
        }
    }
}

/// What every cached type needs.
pub trait Kind:
    Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
}
impl<K> Kind for K where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
}

type Handler<K> = Arc<dyn Fn(&Change<K>) + Send + Sync>;
type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// `namespace/name`, or `name` for cluster-scoped objects: the cache key and
/// the key controllers queue (client-go's `MetaNamespaceKeyFunc`).
pub fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// Splits a key from [`key_of`] into (namespace, name); the namespace is
/// empty for cluster-scoped objects.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

struct State<K> {
    objects: HashMap<String, Arc<K>>,
    /// index name → index value → object keys.
    indexes: HashMap<&'static str, HashMap<String, BTreeSet<String>>>,
}

struct Inner<K> {
    state: RwLock<State<K>>,
    handlers: RwLock<Vec<Handler<K>>>,
    indexers: RwLock<Vec<(&'static str, IndexFn<K>)>>,
    /// Serializes handler registration against event delivery, so a new
    /// handler sees the replay and then every later change, exactly once.
    deliver: Mutex<()>,
    synced: watch::Sender<bool>,
}

/// A shared cache of one resource type. Cheap to clone.
pub struct Informer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Kind> Informer<K> {
    fn new() -> Informer<K> {
        Informer {
            inner: Arc::new(Inner {
                state: RwLock::new(State {
                    objects: HashMap::new(),
                    indexes: HashMap::new(),
                }),
                handlers: RwLock::new(Vec::new()),
                indexers: RwLock::new(Vec::new()),
                deliver: Mutex::new(()),
                synced: watch::channel(false).0,
            }),
        }
    }

    /// Calls `handler` for every change from now on; if the first list is
    /// done, first for every cached object as an add.
    pub fn on_change(&self, handler: impl Fn(&Change<K>) + Send + Sync + 'static) {
        let handler: Handler<K> = Arc::new(handler);
        let _deliver = self.inner.deliver.lock().unwrap_or_else(|e| e.into_inner());
        for obj in self.list() {
            handler(&Change::Applied {
                old: None,
                new: obj,
            });
        }
        self.inner
            .handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(handler);
    }

    /// Adds an index: `by_index(name, value)` then finds the objects for
    /// which `f` returns `value`. Register indexes before the informer runs.
    pub fn add_index(
        &self,
        name: &'static str,
        f: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) {
        let f: IndexFn<K> = Arc::new(f);
        // Lock order as in `store`: indexers, then state.
        let mut indexers = self
            .inner
            .indexers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let mut state = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        let mut index: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (key, obj) in &state.objects {
            for v in f(obj) {
                index.entry(v).or_default().insert(key.clone());
            }
        }
        state.indexes.insert(name, index);
        indexers.push((name, f));
    }

    /// Whether an index of that name exists.
    pub fn has_index(&self, name: &str) -> bool {
        self.inner
            .indexers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(n, _)| *n == name)
    }

    /// The cached object with this key ([`key_of`]).
    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        let state = self.inner.state.read().unwrap_or_else(|e| e.into_inner());
        state.objects.get(key).cloned()
    }

    /// The key of the cached object that controls `meta`'s object: its
    /// controller owner reference names this kind, and the uid matches the
    /// cached one (`resolveControllerRef`). Owners are in the same namespace.
    pub fn controller_key(&self, meta: &ObjectMeta) -> Option<String> {
        let r = controller_of(meta)?;
        if r.kind != K::kind(&()) {
            return None;
        }
        let key = match meta.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => format!("{ns}/{}", r.name),
            _ => r.name.clone(),
        };
        let owner = self.get(&key)?;
        (owner.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(key)
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<K>> {
        let state = self.inner.state.read().unwrap_or_else(|e| e.into_inner());
        state.objects.values().cloned().collect()
    }

    /// The cached objects in one namespace (uses the built-in `namespace` index).
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.by_index(NAMESPACE_INDEX, namespace)
    }

    /// The objects in `namespace` that the owner with this uid controls, or
    /// that no one controls: what a controller may claim.
    pub fn owned_or_orphaned(&self, namespace: &str, owner_uid: &str) -> Vec<Arc<K>> {
        self.list_namespace(namespace)
            .into_iter()
            .filter(|o| controller_of(o.meta()).is_none_or(|r| r.uid == owner_uid))
            .collect()
    }

    /// The cached objects whose index `name` has `value`.
    pub fn by_index(&self, name: &str, value: &str) -> Vec<Arc<K>> {
        let state = self.inner.state.read().unwrap_or_else(|e| e.into_inner());
        let Some(keys) = state.indexes.get(name).and_then(|i| i.get(value)) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| state.objects.get(k).cloned())
            .collect()
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        let state = self.inner.state.read().unwrap_or_else(|e| e.into_inner());
        state.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the first list has been cached.
    pub fn has_synced(&self) -> bool {
        *self.inner.synced.borrow()
    }

    /// Waits until the first list has been cached.
    pub async fn wait_synced(&self) {
        let mut rx = self.inner.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Stores `obj` under `key` and updates the indexes; returns the old one.
    fn store(&self, key: &str, obj: Option<Arc<K>>) -> Option<Arc<K>> {
        let indexers = self
            .inner
            .indexers
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut state = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        let old = match &obj {
            Some(o) => state.objects.insert(key.to_string(), o.clone()),
            None => state.objects.remove(key),
        };
        for (name, f) in indexers.iter() {
            let before = old.as_deref().map(|o| f(o)).unwrap_or_default();
            let after = obj.as_deref().map(|o| f(o)).unwrap_or_default();
            if before == after {
                continue;
            }
            let index = state.indexes.entry(name).or_default();
            for v in before {
                if let Some(keys) = index.get_mut(&v) {
                    keys.remove(key);
                    if keys.is_empty() {
                        index.remove(&v);
                    }
                }
            }
            for v in after {
                index.entry(v).or_default().insert(key.to_string());
            }
        }
        old
    }

    fn notify(&self, change: Change<K>) {
        let handlers: Vec<Handler<K>> = self
            .inner
            .handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for h in handlers {
            h(&change);
        }
    }

    fn apply(&self, mut obj: K) {
        obj.meta_mut().managed_fields = None;
        let key = key_of(&obj);
        let new = Arc::new(obj);
        let _deliver = self.inner.deliver.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.store(&key, Some(new.clone()));
        self.notify(Change::Applied { old, new });
    }

    fn delete(&self, key: &str) {
        let _deliver = self.inner.deliver.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = self.store(key, None) {
            self.notify(Change::Deleted(old));
        }
    }

    /// Lists and watches `api` into the cache until `shutdown`, relisting
    /// (kube-runtime's watcher, with backoff) whenever the watch breaks.
    async fn run(self, api: Api<K>, shutdown: CancellationToken) {
        // Below the client's 60 s read timeout, so a quiet watch ends cleanly.
        let config = watcher::Config::default().timeout(50).any_semantic();
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        // Keys seen during a relist; what the cache holds beyond them went
        // away while the watch was broken.
        let mut relisted: Option<BTreeSet<String>> = None;
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = events.next() => e,
            };
            match event {
                None => return,
                Some(Err(e)) => {
                    tracing::debug!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
                }
                Some(Ok(Event::Init)) => relisted = Some(BTreeSet::new()),
                Some(Ok(Event::InitApply(obj))) => {
                    if let Some(seen) = relisted.as_mut() {
                        seen.insert(key_of(&obj));
                    }
                    self.apply(obj);
                }
                Some(Ok(Event::InitDone)) => {
                    if let Some(seen) = relisted.take() {
                        let gone: Vec<String> = {
                            let state = self.inner.state.read().unwrap_or_else(|e| e.into_inner());
                            state
                                .objects
                                .keys()
                                .filter(|k| !seen.contains(*k))
                                .cloned()
                                .collect()
                        };
                        for key in gone {
                            self.delete(&key);
                        }
                    }
                    self.inner.synced.send_replace(true);
                }
                Some(Ok(Event::Apply(obj))) => self.apply(obj),
                Some(Ok(Event::Delete(obj))) => self.delete(&key_of(&obj)),
            }
        }
    }
}

/// The index every informer has: namespace → objects.
pub const NAMESPACE_INDEX: &str = "namespace";

/// The index [`Informers::pods`] has: node name → pods bound there.
pub const NODE_INDEX: &str = "node";

/// The label naming the Service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The index [`Informers::endpoint_slices`] has: `ns/service` → its slices.
pub const SERVICE_INDEX: &str = "service-name";

/// `ns/<kubernetes.io/service-name>`: the key of the Service a slice
/// belongs to.
pub fn service_key_of(slice: &k8s_openapi::api::discovery::v1::EndpointSlice) -> Option<String> {
    let name = slice.labels().get(SERVICE_NAME_LABEL)?;
    Some(format!("{}/{name}", slice.namespace().unwrap_or_default()))
}

/// The index every informer has: controller owner's uid → objects it controls
/// (the `ownerReferences` entry with `controller: true`).
pub const CONTROLLER_INDEX: &str = "controller";

/// The process-wide set of informers. Cheap to clone; an informer is created
/// on first use and starts watching at once if [`Informers::start`] ran.
#[derive(Clone)]
pub struct Informers {
    client: kube::Client,
    inner: Arc<Mutex<Registry>>,
}

struct Registry {
    by_type: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    /// Set by `start`: informers made later start on their own.
    running: Option<CancellationToken>,
    /// Informers made before `start`, waiting for it.
    pending: Vec<Box<dyn FnOnce(CancellationToken) + Send>>,
}

impl Informers {
    pub fn new(client: kube::Client) -> Informers {
        Informers {
            client,
            inner: Arc::new(Mutex::new(Registry {
                by_type: HashMap::new(),
                running: None,
                pending: Vec::new(),
            })),
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The informer of `K` across all namespaces (or cluster-scoped).
    pub fn get<K>(&self) -> Informer<K>
    where
        K: Kind,
    {
        let mut reg = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = reg.by_type.get(&TypeId::of::<K>()) {
            return i
                .downcast_ref::<Informer<K>>()
                .expect("informer registry holds its own type")
                .clone();
        }
        let informer = Informer::<K>::new();
        informer.add_index(NAMESPACE_INDEX, |o: &K| {
            vec![o.namespace().unwrap_or_default()]
        });
        informer.add_index(CONTROLLER_INDEX, |o: &K| {
            controller_of(o.meta())
                .map(|r| r.uid.clone())
                .into_iter()
                .collect()
        });
        reg.by_type
            .insert(TypeId::of::<K>(), Box::new(informer.clone()));
        let api: Api<K> = Api::all(self.client.clone());
        let run = {
            let informer = informer.clone();
            move |shutdown: CancellationToken| {
                tokio::spawn(informer.run(api, shutdown));
            }
        };
        match &reg.running {
            Some(shutdown) => run(shutdown.clone()),
            None => reg.pending.push(Box::new(run)),
        }
        informer
    }

    /// The EndpointSlice informer, with the [`SERVICE_INDEX`] index.
    pub fn endpoint_slices(&self) -> Informer<k8s_openapi::api::discovery::v1::EndpointSlice> {
        let slices = self.get::<k8s_openapi::api::discovery::v1::EndpointSlice>();
        if !slices.has_index(SERVICE_INDEX) {
            slices.add_index(SERVICE_INDEX, |s| service_key_of(s).into_iter().collect());
        }
        slices
    }

    /// The pod informer, with the [`NODE_INDEX`] index.
    pub fn pods(&self) -> Informer<k8s_openapi::api::core::v1::Pod> {
        let pods = self.get::<k8s_openapi::api::core::v1::Pod>();
        if !pods.has_index(NODE_INDEX) {
            pods.add_index(NODE_INDEX, |p| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .into_iter()
                    .collect()
            });
        }
        pods
    }

    /// Starts every informer made so far, and any made later, until `shutdown`.
    pub fn start(&self, shutdown: CancellationToken) {
        let mut reg = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        reg.running = Some(shutdown.clone());
        for run in reg.pending.drain(..) {
            run(shutdown.clone());
        }
    }
}
