//! Admission checks that every write passes (NamespaceLifecycle for now).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, GroupResource};
use crate::rest::{ListOptions, Rest, Scope};

/// Namespaces as last seen by a watch: name → terminating. Like upstream's
/// NamespaceLifecycle plugin, a miss falls back to a read from storage, so a
/// namespace created a moment ago is never refused.
#[derive(Default)]
pub struct NamespaceCache {
    known: RwLock<HashMap<String, bool>>,
}

impl NamespaceCache {
    fn get(&self, ns: &str) -> Option<bool> {
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(ns)
            .copied()
    }

    fn set(&self, ns: &str, terminating: Option<bool>) {
        let mut m = self.known.write().unwrap_or_else(|e| e.into_inner());
        match terminating {
            Some(t) => {
                m.insert(ns.to_string(), t);
            }
            None => {
                m.remove(ns);
            }
        }
    }
}

fn terminating(ns: &Value) -> bool {
    ns.pointer("/metadata/deletionTimestamp").is_some()
        || ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
}

fn namespaces(rest: &Rest) -> Result<Scope, ApiError> {
    rest.scope("", "v1", "namespaces", None)
}

/// Keeps the cache current until `shutdown`: list, then watch; relist on error.
pub async fn run_namespace_cache(rest: Arc<Rest>, shutdown: CancellationToken) {
    let Ok(scope) = namespaces(&rest) else { return };
    loop {
        let result: Result<(), ApiError> = async {
            let (initial, _, events) = rest.watch(&scope, &ListOptions::default(), true).await?;
            for ev in initial {
                rest.namespaces.set(
                    crate::object::name(&ev.object),
                    Some(terminating(&ev.object)),
                );
            }
            let mut events = Box::pin(events);
            while let Some(ev) = events.next().await {
                let ev = ev?;
                let name = crate::object::name(&ev.object).to_string();
                let state = (ev.event_type != "DELETED").then(|| terminating(&ev.object));
                rest.namespaces.set(&name, state);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "namespace watch restarting");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
    }
}

/// NamespaceLifecycle: objects can only be created in a namespace that
/// exists and is not being deleted.
pub async fn check_namespace_accepts(rest: &Rest, ns: &str) -> Result<(), ApiError> {
    let is_terminating = match rest.namespaces.get(ns) {
        Some(t) => t,
        None => match rest.get(&namespaces(rest)?, ns).await {
            Ok(obj) => terminating(&obj),
            Err(ApiError::NotFound { .. }) => {
                return Err(ApiError::NotFound {
                    gr: GroupResource {
                        group: String::new(),
                        resource: "namespaces".into(),
                    },
                    name: ns.to_string(),
                })
            }
            Err(e) => return Err(e),
        },
    };
    if is_terminating {
        return Err(ApiError::Forbidden(format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        )));
    }
    Ok(())
}
