//! ServiceAccountsController (`pkg/controller/serviceaccount`): a `default`
//! ServiceAccount in every active namespace, recreated if deleted.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::informer::{Change, Informer};
use crate::workqueue::WorkQueue;
use crate::Context;

pub const DEFAULT: &str = "default";

/// Runs the ServiceAccount controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let namespaces: Informer<Namespace> = ctx.informers.get();
    let accounts: Informer<ServiceAccount> = ctx.informers.get();
    let queue = WorkQueue::new("serviceaccount");
    {
        let q = queue.clone();
        namespaces.on_change(move |ch| {
            if let Change::Applied { new, .. } = ch {
                q.add(new.name_any());
            }
        });
    }
    {
        let q = queue.clone();
        accounts.on_change(move |ch| {
            if let Change::Deleted(sa) = ch {
                if sa.name_any() == DEFAULT {
                    q.add(sa.namespace().unwrap_or_default());
                }
            }
        });
    }
    namespaces.wait_synced().await;
    accounts.wait_synced().await;
    let c = Arc::new((ctx.client.clone(), namespaces, accounts));
    queue
        .run(2, shutdown, move |ns| {
            let c = c.clone();
            async move { sync(&c.0, &c.1, &c.2, &ns).await }
        })
        .await;
    Ok(())
}

async fn sync(
    client: &kube::Client,
    namespaces: &Informer<Namespace>,
    accounts: &Informer<ServiceAccount>,
    ns: &str,
) -> anyhow::Result<Option<Duration>> {
    let Some(namespace) = namespaces.get(ns) else {
        return Ok(None);
    };
    let active = namespace.metadata.deletion_timestamp.is_none()
        && namespace.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating");
    if !active || accounts.get(&format!("{ns}/{DEFAULT}")).is_some() {
        return Ok(None);
    }
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => Ok(None),
        // Already there (a cache behind), or the namespace began terminating.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 403 || s.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}
