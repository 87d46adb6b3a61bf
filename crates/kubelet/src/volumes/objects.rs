//! ConfigMaps and Secrets as pods read them (volumes and env vars), through a
//! small cache with a TTL, as upstream's TTL-based configMap/secret managers:
//! pod syncs every few seconds stay cheap, yet an update (or an object that
//! did not exist yet) is seen within the TTL.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use tokio::time::Instant;

/// How long a fetched object (or its absence) is trusted.
pub const DEFAULT_TTL: Duration = Duration::from_secs(20);
/// An entry younger than this counts as fresh for a newly seen pod.
const FRESH: Duration = Duration::from_secs(1);

/// Where ConfigMaps and Secrets come from. `Ok(None)` = not found; `Err` =
/// any other failure, already worded for the user.
pub trait ObjectSource: Send + Sync {
    fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Arc<ConfigMap>>, String>> + Send;
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Arc<Secret>>, String>> + Send;
}

impl<T: ObjectSource> ObjectSource for Arc<T> {
    fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Arc<ConfigMap>>, String>> + Send {
        (**self).config_map(namespace, name)
    }
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Arc<Secret>>, String>> + Send {
        (**self).secret(namespace, name)
    }
}

/// The `NotFound` message the kubelet's object managers produce.
pub fn not_found(kind: &str, name: &str) -> String {
    format!("{kind} \"{name}\" not found")
}

/// The server's message for an API error, else the client error.
pub fn api_error_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        e => e.to_string(),
    }
}

type Key = (String, String);

/// A map of values fetched at most once per TTL. Entries unused for a long
/// time are dropped so the cache does not grow with every object ever read.
pub struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<Key, (Instant, V)>>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value, or the result of `fetch` (cached when `Ok`).
    pub async fn get<E, F>(&self, key: (&str, &str), fetch: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        let now = Instant::now();
        if let Some((at, v)) = lock(&self.entries).get(&owned(key)) {
            if now.duration_since(*at) < self.ttl {
                return Ok(v.clone());
            }
        }
        let v = fetch.await?;
        let mut map = lock(&self.entries);
        if map.len() > 64 {
            let keep = self.ttl * 10;
            map.retain(|_, (at, _)| now.duration_since(*at) < keep);
        }
        map.insert(owned(key), (Instant::now(), v.clone()));
        Ok(v)
    }

    /// Forget one entry so the next `get` fetches again.
    pub fn invalidate(&self, key: (&str, &str)) {
        lock(&self.entries).remove(&owned(key));
    }

    /// Forget one entry unless it was fetched within `fresh` (many pods
    /// starting together then share one read).
    pub fn invalidate_older_than(&self, key: (&str, &str), fresh: Duration) {
        let now = Instant::now();
        lock(&self.entries).retain(|k, (at, _)| {
            !(k.0 == key.0 && k.1 == key.1 && now.duration_since(*at) >= fresh)
        });
    }

    /// Seeds an entry (tests, and callers that already hold the object).
    pub fn insert(&self, key: (&str, &str), v: V) {
        lock(&self.entries).insert(owned(key), (Instant::now(), v));
    }

    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn owned(key: (&str, &str)) -> Key {
    (key.0.to_string(), key.1.to_string())
}

/// A poisoned lock only means another thread panicked mid-update of a cache;
/// the map itself is still usable.
pub(crate) fn lock<K: Eq + Hash, V>(
    m: &Mutex<HashMap<K, V>>,
) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// ConfigMaps and Secrets read through the API with a TTL cache.
pub struct ObjectCache {
    client: kube::Client,
    config_maps: TtlCache<Option<Arc<ConfigMap>>>,
    secrets: TtlCache<Option<Arc<Secret>>>,
}

impl ObjectCache {
    pub fn new(client: kube::Client, ttl: Duration) -> Self {
        ObjectCache {
            client,
            config_maps: TtlCache::new(ttl),
            secrets: TtlCache::new(ttl),
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Drop a cached ConfigMap unless just read: a new pod referencing it
    /// reads it fresh, as upstream's managers do when a pod registers.
    pub fn invalidate_config_map(&self, namespace: &str, name: &str) {
        self.config_maps
            .invalidate_older_than((namespace, name), FRESH);
    }

    pub fn invalidate_secret(&self, namespace: &str, name: &str) {
        self.secrets.invalidate_older_than((namespace, name), FRESH);
    }

    /// Seeds the cache with a ConfigMap (`None`: known missing).
    pub fn insert_config_map(&self, namespace: &str, name: &str, cm: Option<ConfigMap>) {
        self.config_maps.insert((namespace, name), cm.map(Arc::new));
    }

    pub fn insert_secret(&self, namespace: &str, name: &str, secret: Option<Secret>) {
        self.secrets.insert((namespace, name), secret.map(Arc::new));
    }
}

impl ObjectSource for ObjectCache {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<ConfigMap>>, String> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        self.config_maps
            .get((namespace, name), async {
                match api.get_opt(name).await {
                    Ok(v) => Ok(v.map(Arc::new)),
                    Err(e) => Err(api_error_message(&e)),
                }
            })
            .await
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Arc<Secret>>, String> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        self.secrets
            .get((namespace, name), async {
                match api.get_opt(name).await {
                    Ok(v) => Ok(v.map(Arc::new)),
                    Err(e) => Err(api_error_message(&e)),
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn ttl_cache_refetches_after_ttl() {
        let cache: TtlCache<Option<u32>> = TtlCache::new(Duration::from_secs(20));
        let calls = AtomicUsize::new(0);
        let counter = &calls;
        let fetch = |v: Option<u32>| async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(v)
        };
        // A miss (None) is cached too, then replaced once the TTL passed.
        assert_eq!(cache.get(("ns", "a"), fetch(None)).await.unwrap(), None);
        assert_eq!(cache.get(("ns", "a"), fetch(Some(1))).await.unwrap(), None);
        tokio::time::advance(Duration::from_secs(21)).await;
        assert_eq!(
            cache.get(("ns", "a"), fetch(Some(1))).await.unwrap(),
            Some(1)
        );
        cache.invalidate(("ns", "a"));
        assert_eq!(
            cache.get(("ns", "a"), fetch(Some(2))).await.unwrap(),
            Some(2)
        );
        // Errors are not cached.
        let err: Result<Option<u32>, String> = cache
            .get(("ns", "b"), async { Err("boom".to_string()) })
            .await;
        assert!(err.is_err());
        assert_eq!(cache.len(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
