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

#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    component: String,
    instance: String,
    permits: Arc<Semaphore>,
    /// Object uid → its last event.
    last: Arc<Mutex<HashMap<String, LastEvent>>>,
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
        }
    }

    /// Forgets what was recorded for an object (it was deleted, or its
    /// story ended), so the series map does not grow without bound.
    pub fn forget(&self, uid: &str) {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
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
