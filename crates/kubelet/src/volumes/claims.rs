//! persistentVolumeClaim (and generic ephemeral) volumes: claim -> bound PV
//! -> a directory on this node. Only `hostPath` and `local` PVs are served
//! here; other sources come with the storage work.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::Api;

use super::host_path;
use super::objects::api_error_message;

/// Where a claim's volume lives on this node.
pub struct ClaimPath {
    pub pv_name: String,
    pub path: String,
}

/// A failure, worded for the FailedMount event; `pv` is set once the PV is
/// known (upstream names the PV, not the pod volume, in SetUp errors).
pub struct ClaimError {
    pub pv: Option<String>,
    pub message: String,
}

fn processing(ns: &str, claim: &str, msg: impl std::fmt::Display) -> ClaimError {
    ClaimError {
        pv: None,
        message: format!("error processing PVC {ns}/{claim}: {msg}"),
    }
}

/// Resolves `claim` of `pod`. `ephemeral` claims must be owned by the pod.
pub async fn resolve(
    client: &kube::Client,
    pod: &Pod,
    claim: &str,
    ephemeral: bool,
) -> Result<ClaimPath, ClaimError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let pvc = pvcs.get(claim).await.map_err(|e| {
        processing(
            ns,
            claim,
            format!(
                "failed to fetch PVC from API server: {}",
                api_error_message(&e)
            ),
        )
    })?;
    if ephemeral {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let owned = pvc
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid && o.controller == Some(true));
        if !owned {
            let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
            return Err(processing(
                ns,
                claim,
                format!(
                    "PVC {ns}/{claim} was not created for pod {ns}/{pod_name} (pod is not owner)"
                ),
            ));
        }
    }
    if pvc.metadata.deletion_timestamp.is_some() {
        return Err(processing(ns, claim, "PVC is being deleted"));
    }
    let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let pv_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|n| !n.is_empty());
    let Some(pv_name) = pv_name.filter(|_| bound) else {
        return Err(processing(ns, claim, "PVC is not bound"));
    };
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = pvs.get(&pv_name).await.map_err(|e| {
        processing(
            ns,
            claim,
            format!(
                "failed to fetch PV {pv_name} from API server: {}",
                api_error_message(&e)
            ),
        )
    })?;
    let fail = |message: String| ClaimError {
        pv: Some(pv_name.clone()),
        message,
    };
    let spec = pv.spec.unwrap_or_default();
    if let Some(hp) = spec.host_path {
        host_path::check_type(&hp.path, hp.type_.as_deref()).map_err(fail)?;
        return Ok(ClaimPath {
            pv_name: pv_name.clone(),
            path: hp.path,
        });
    }
    if let Some(local) = spec.local {
        if std::fs::metadata(&local.path).is_err() {
            return Err(fail(format!("path {:?} does not exist", local.path)));
        }
        return Ok(ClaimPath {
            pv_name: pv_name.clone(),
            path: local.path,
        });
    }
    Err(fail(format!(
        "persistent volume {pv_name:?}: volume type is not supported on this node yet (hostPath and local are)"
    )))
}
