//! NamespaceController (`pkg/controller/namespace/deletion`): empties a
//! namespace being deleted, then removes its `kubernetes` finalizer through
//! `/finalize` so the API can remove it.
//!
//! Every namespaced resource the API serves (built-ins and custom
//! resources, found by discovery) is deleted with DELETE collection where
//! supported, else one by one; the namespace is finalized once nothing is
//! left. Its status carries upstream's deletion conditions meanwhile.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{verbs, Discovery, Scope};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::informer::{key_of, Informer};
use crate::workqueue::WorkQueue;
use crate::Context;

/// The finalizer this controller owns (`spec.finalizers`).
pub const FINALIZER: &str = "kubernetes";
const WORKERS: usize = 2;
/// How soon to look again while content remains.
const RECHECK: Duration = Duration::from_secs(2);

struct Controller {
    client: kube::Client,
    namespaces: Informer<Namespace>,
}

/// Runs the namespace controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        namespaces: ctx.informers.get(),
    });
    let queue = WorkQueue::new("namespace");
    {
        let q = queue.clone();
        c.namespaces.on_change(move |ch| {
            if ch.object().metadata.deletion_timestamp.is_some() {
                q.add(key_of(ch.object().as_ref()));
            }
        });
    }
    c.namespaces.wait_synced().await;
    queue
        .run(WORKERS, shutdown, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    Ok(())
}

/// What one pass over a namespace's content found.
#[derive(Default)]
struct Pass {
    /// `resource.group` → objects still there.
    remaining: Vec<(String, usize)>,
    /// Finalizers still held by remaining objects.
    finalizers: Vec<String>,
    failures: Vec<String>,
}

impl Controller {
    async fn sync(&self, name: &str) -> anyhow::Result<Option<Duration>> {
        let Some(ns) = self.namespaces.get(name) else {
            return Ok(None);
        };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(None);
        }
        let finalizers: Vec<String> = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.clone())
            .unwrap_or_default();
        if !finalizers.iter().any(|f| f == FINALIZER) {
            return Ok(None);
        }
        let discovery = match Discovery::new(self.client.clone()).run().await {
            Ok(d) => d,
            Err(e) => {
                self.set_conditions(&ns, &Pass::default(), Some(e.to_string()))
                    .await?;
                return Err(e.into());
            }
        };
        let pass = self.delete_content(name, &discovery).await;
        self.set_conditions(&ns, &pass, None).await?;
        if !pass.failures.is_empty() {
            anyhow::bail!(
                "deleting content of namespace {name}: {}",
                pass.failures.join("; ")
            );
        }
        if !pass.remaining.is_empty() {
            return Ok(Some(RECHECK));
        }
        self.finalize(&ns, finalizers).await?;
        Ok(None)
    }

    /// Deletes everything in the namespace and reports what remains.
    async fn delete_content(&self, ns: &str, discovery: &Discovery) -> Pass {
        let mut pass = Pass::default();
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                if !matches!(caps.scope, Scope::Namespaced)
                    || !caps.supports_operation(verbs::LIST)
                    || !caps.supports_operation(verbs::DELETE)
                {
                    continue;
                }
                let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
                let gr = if ar.group.is_empty() {
                    ar.plural.clone()
                } else {
                    format!("{}.{}", ar.plural, ar.group)
                };
                let dp = DeleteParams::background();
                if caps.supports_operation(verbs::DELETE_COLLECTION) {
                    if let Err(e) = api.delete_collection(&dp, &ListParams::default()).await {
                        if !crate::pod_control::is_not_found(&e) {
                            pass.failures.push(format!("{gr}: {e}"));
                        }
                    }
                }
                match api.list(&ListParams::default()).await {
                    Ok(list) if list.items.is_empty() => {}
                    Ok(list) => {
                        for obj in &list.items {
                            if obj.metadata.deletion_timestamp.is_none() {
                                match api.delete(&obj.name_any(), &dp).await {
                                    Ok(_) => {}
                                    Err(e) if crate::pod_control::is_not_found(&e) => {}
                                    Err(e) => {
                                        pass.failures.push(format!("{gr}/{}: {e}", obj.name_any()))
                                    }
                                }
                            }
                            pass.finalizers.extend(obj.finalizers().iter().cloned());
                        }
                        pass.remaining.push((gr, list.items.len()));
                    }
                    Err(e) if crate::pod_control::is_not_found(&e) => {}
                    Err(e) => pass.failures.push(format!("{gr}: {e}")),
                }
            }
        }
        pass.finalizers.sort();
        pass.finalizers.dedup();
        pass
    }

    /// Upstream's deletion conditions on the namespace's status.
    async fn set_conditions(
        &self,
        ns: &Namespace,
        pass: &Pass,
        discovery_error: Option<String>,
    ) -> anyhow::Result<()> {
        let now = Time(jiff::Timestamp::now());
        let cond =
            |type_: &str, failed: bool, reason_ok: &str, reason_bad: &str, message: String| {
                NamespaceCondition {
                    type_: type_.into(),
                    status: if failed { "True" } else { "False" }.into(),
                    reason: Some(if failed { reason_bad } else { reason_ok }.into()),
                    message: Some(message),
                    last_transition_time: Some(now.clone()),
                }
            };
        let remaining = pass
            .remaining
            .iter()
            .map(|(gr, n)| format!("{gr} has {n} resource instances"))
            .collect::<Vec<_>>();
        let wanted = vec![
            cond(
                "NamespaceDeletionDiscoveryFailure",
                discovery_error.is_some(),
                "ResourcesDiscovered",
                "DiscoveryFailed",
                discovery_error.unwrap_or_else(|| "All resources successfully discovered".into()),
            ),
            cond(
                "NamespaceDeletionGroupVersionParsingFailure",
                false,
                "ParsedGroupVersions",
                "GroupVersionParsingFailed",
                "All legacy kube types successfully parsed".into(),
            ),
            cond(
                "NamespaceDeletionContentFailure",
                !pass.failures.is_empty(),
                "ContentDeleted",
                "ContentDeletionFailed",
                if pass.failures.is_empty() {
                    "All content successfully deleted, may be waiting on finalization".into()
                } else {
                    format!(
                        "Failed to delete all resource types, {} remaining: {}",
                        pass.failures.len(),
                        pass.failures.join(", ")
                    )
                },
            ),
            cond(
                "NamespaceContentRemaining",
                !remaining.is_empty(),
                "ContentRemoved",
                "SomeResourcesRemain",
                if remaining.is_empty() {
                    "All content successfully removed".into()
                } else {
                    format!("Some resources are remaining: {}", remaining.join(", "))
                },
            ),
            cond(
                "NamespaceFinalizersRemaining",
                !pass.finalizers.is_empty(),
                "ContentHasNoFinalizers",
                "SomeFinalizersRemain",
                if pass.finalizers.is_empty() {
                    "All content-preserving finalizers finished".into()
                } else {
                    format!(
                        "Some content in the namespace has finalizers remaining: {}",
                        pass.finalizers.join(", ")
                    )
                },
            ),
        ];
        let old = ns
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let same = wanted.len() == old.len()
            && wanted.iter().zip(&old).all(|(a, b)| {
                a.type_ == b.type_
                    && a.status == b.status
                    && a.reason == b.reason
                    && a.message == b.message
            });
        if same {
            return Ok(());
        }
        let conditions: Vec<NamespaceCondition> = wanted
            .into_iter()
            .map(|mut c| {
                if let Some(o) = old
                    .iter()
                    .find(|o| o.type_ == c.type_ && o.status == c.status)
                {
                    c.last_transition_time = o.last_transition_time.clone();
                }
                c
            })
            .collect();
        let api: Api<Namespace> = Api::all(self.client.clone());
        let patch = json!({"status": {"phase": "Terminating", "conditions": conditions}});
        match api
            .patch_status(
                &ns.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if crate::pod_control::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes this controller's finalizer through `/finalize`.
    async fn finalize(&self, ns: &Namespace, finalizers: Vec<String>) -> anyhow::Result<()> {
        let mut ns = ns.clone();
        ns.metadata.managed_fields = None;
        ns.spec.get_or_insert_with(Default::default).finalizers =
            Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api
            .replace_subresource("finalize", &ns.name_any(), &PostParams::default(), &ns)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if crate::pod_control::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
