//! Recording Kubernetes Events (`core/v1`) on the objects a component acts
//! on, so `kubectl describe` shows them. Like client-go's recorder, writes
//! happen in the background (a component never waits on its events), with
//! bounded concurrency, and a repeat of the same reason and message on the
//! same object bumps `count` on the existing Event instead of adding one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use tokio::sync::Semaphore;

/// At most this many event writes in flight; the rest wait their turn.
const MAX_IN_FLIGHT: usize = 16;

/// client-go's spam filter: per object, a burst of 25 events, then one per
/// five minutes; the rest are dropped (a controller creating 10,000 pods
/// records 25 SuccessfulCreate events, not 10,000).
const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL_PER_SEC: f64 = 1.0 / 300.0;

#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    component: String,
    instance: String,
    permits: Arc<Semaphore>,
    /// Object uid → its last event.
    last: Arc<Mutex<HashMap<String, LastEvent>>>,
    /// Object uid → its spam-filter bucket.
    spam: Arc<Mutex<HashMap<String, Bucket>>>,
}

/// A token bucket: `tokens` left as of `at`.
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

impl Bucket {
    /// Takes a token if one is left after refilling.
    fn take(&mut self, now: std::time::Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * SPAM_REFILL_PER_SEC;
        self.tokens = (self.tokens + refill).min(SPAM_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The last event recorded on an object: a repeat bumps its count.
struct LastEvent {
    reason: String,
    message: String,
    name: String,
    count: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl Recorder {
    pub fn new(client: kube::Client, component: &str, instance: &str) -> Recorder {
        Recorder {
            client,
            component: component.to_string(),
            instance: instance.to_string(),
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            last: Default::default(),
            spam: Default::default(),
        }
    }

    /// Forgets what was recorded for an object (it was deleted, or its
    /// story ended), so the series map does not grow without bound.
    pub fn forget(&self, uid: &str) {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
        self.spam
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }

    /// Whether the spam filter lets one more event on this object through.
    fn allowed(&self, uid: &str) -> bool {
        let now = std::time::Instant::now();
        self.spam
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(uid.to_string())
            .or_insert(Bucket {
                tokens: SPAM_BURST,
                at: now,
            })
            .take(now)
    }

    /// Records an event on `object` in the background.
    pub fn record(
        &self,
        object: ObjectReference,
        kind: EventType,
        reason: &str,
        action: &str,
        message: String,
    ) {
        let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
        let uid = object.uid.clone().unwrap_or_default();
        if !uid.is_empty() && !self.allowed(&uid) {
            return;
        }
        let now = jiff::Timestamp::now();
        // A repeat of the object's last event becomes a count bump.
        let (name, repeat) = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            match last.get_mut(&uid) {
                Some(e) if e.reason == reason && e.message == message => {
                    e.count += 1;
                    (e.name.clone(), Some(e.count))
                }
                _ => {
                    let object_name = object.name.as_deref().unwrap_or_default();
                    let name = format!("{object_name}.{:x}", now.as_nanosecond() as u64);
                    if !uid.is_empty() {
                        let e = LastEvent {
                            reason: reason.into(),
                            message: message.clone(),
                            name: name.clone(),
                            count: 1,
                        };
                        last.insert(uid.clone(), e);
                    }
                    (name, None)
                }
            }
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let permits = self.permits.clone();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: object,
            reason: Some(reason.to_string()),
            message: Some(message),
            type_: Some(format!("{kind:?}")),
            action: Some(action.to_string()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.instance.clone()),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            count: Some(1),
            ..Default::default()
        };
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            let result = match repeat {
                Some(count) => {
                    let patch = serde_json::json!({"count": count, "lastTimestamp": Time(now)});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|_| ())
                }
                None => api.create(&PostParams::default(), &event).await.map(|_| ()),
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "recording an event failed");
            }
        });
    }
}

/// A reference to a namespaced object for `involvedObject`.
pub fn reference<K: kube::Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    let meta = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn spam_filter_allows_a_burst_then_one_per_five_minutes() {
        let t0 = Instant::now();
        let mut b = Bucket {
            tokens: SPAM_BURST,
            at: t0,
        };
        let allowed = (0..100).filter(|_| b.take(t0)).count();
        assert_eq!(allowed, 25);
        assert!(!b.take(t0 + Duration::from_secs(299)));
        assert!(b.take(t0 + Duration::from_secs(301)));
        assert!(!b.take(t0 + Duration::from_secs(302)));
    }
}
