//! `echo-operator`: a small kube-rs operator used to check that skiff serves
//! real controllers (discovery, CRDs, list+watch, server-side apply, the
//! status subresource, owner references).
//!
//! For every `Echo` (group `demo.skiff.dev`, version `v1`) it keeps a
//! ConfigMap `<name>-echo`, controlled by the Echo, holding the Echo's
//! `message` and `replicas`, and records what it did in the Echo's status.
//!
//! ```text
//! echo-operator crd | kubectl apply -f -   # install the CustomResourceDefinition
//! echo-operator [run]                      # reconcile, using $KUBECONFIG
//! ```

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    api::{ListParams, ObjectMeta, Patch, PatchParams},
    runtime::{controller::Action, watcher, Controller},
    Api, Client, CustomResource, CustomResourceExt, Resource, ResourceExt,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{error, info, warn};

/// Field manager for the ConfigMaps this operator writes with server-side apply.
const MANAGER: &str = "echo-operator";

/// The desired state of an Echo: what to write into its ConfigMap.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "demo.skiff.dev",
    version = "v1",
    kind = "Echo",
    namespaced,
    status = "EchoStatus",
    plural = "echoes",
    shortname = "ec",
    printcolumn = r#"{"name": "Message", "type": "string", "jsonPath": ".spec.message"}"#,
    printcolumn = r#"{"name": "ConfigMap", "type": "string", "jsonPath": ".status.configMapName"}"#
)]
pub struct EchoSpec {
    pub replicas: i32,
    pub message: String,
}

/// What the operator last did for an Echo.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EchoStatus {
    /// The `metadata.generation` of the Echo that was last reconciled.
    pub observed_generation: Option<i64>,
    /// The ConfigMap that holds the Echo's data.
    pub config_map_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Echo {0} has no namespace")]
    MissingNamespace(String),
    #[error("Echo {0} has no uid yet, so it cannot own a ConfigMap")]
    MissingUid(String),
    #[error("applying ConfigMap {name}: {source}")]
    ApplyConfigMap {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("patching status of Echo {name}: {source}")]
    PatchStatus {
        name: String,
        #[source]
        source: kube::Error,
    },
}

struct Context {
    client: Client,
}

/// The ConfigMap an Echo should have: named after it, controlled by it.
fn desired_config_map(echo: &Echo) -> Result<ConfigMap, Error> {
    let owner = echo
        .controller_owner_ref(&())
        .ok_or_else(|| Error::MissingUid(echo.name_any()))?;
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(config_map_name(echo)),
            namespace: echo.namespace(),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("message".to_string(), echo.spec.message.clone()),
            ("replicas".to_string(), echo.spec.replicas.to_string()),
        ])),
        ..ConfigMap::default()
    })
}

fn config_map_name(echo: &Echo) -> String {
    format!("{}-echo", echo.name_any())
}

async fn reconcile(echo: Arc<Echo>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = echo.name_any();
    let ns = echo
        .namespace()
        .ok_or_else(|| Error::MissingNamespace(name.clone()))?;

    // Server-side apply creates the ConfigMap or brings it back in line.
    let cm = desired_config_map(&echo)?;
    let cm_name = config_map_name(&echo);
    Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
        .patch(
            &cm_name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await
        .map_err(|source| Error::ApplyConfigMap {
            name: format!("{ns}/{cm_name}"),
            source,
        })?;

    // Status goes through the status subresource as a JSON merge patch: it
    // touches only `.status`, and needs nothing from the server beyond what
    // every custom resource supports.
    let status = EchoStatus {
        observed_generation: echo.metadata.generation,
        config_map_name: Some(cm_name),
    };
    Api::<Echo>::namespaced(ctx.client.clone(), &ns)
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(|source| Error::PatchStatus {
            name: format!("{ns}/{name}"),
            source,
        })?;
    info!(echo = %format!("{ns}/{name}"), "reconciled");
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn error_policy(_echo: Arc<Echo>, err: &Error, _ctx: Arc<Context>) -> Action {
    warn!("reconcile failed: {err}");
    Action::requeue(Duration::from_secs(5))
}

async fn run() -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let echoes = Api::<Echo>::all(client.clone());
    // Fail early and plainly when the CRD is missing, rather than letting the
    // watcher retry a 404 forever.
    if let Err(e) = echoes.list(&ListParams::default().limit(1)).await {
        anyhow::bail!(
            "cannot list {}: {e}; is the CRD installed? (echo-operator crd | kubectl apply -f -)",
            Echo::crd_name()
        );
    }
    info!("watching {}", Echo::crd_name());
    Controller::new(echoes, watcher::Config::default())
        .owns(
            Api::<ConfigMap>::all(client.clone()),
            watcher::Config::default(),
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, Arc::new(Context { client }))
        .for_each(|res| async move {
            if let Err(e) = res {
                warn!("controller: {e}");
            }
        })
        .await;
    info!("stopped");
    Ok(())
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match std::env::args().nth(1).as_deref() {
        Some("crd") => serde_yaml::to_string(&Echo::crd())
            .map(|yaml| print!("{yaml}"))
            .map_err(anyhow::Error::from),
        None | Some("run") => run().await,
        Some(other) => Err(anyhow::anyhow!(
            "unknown command {other:?}; usage: echo-operator [crd|run]"
        )),
    };
    if let Err(e) = result {
        error!("{e:#}");
        std::process::exit(1);
    }
}
