//! What the workload controllers share (`pkg/controller/controller_utils.go`
//! and `controller_ref_manager.go`): creating pods from a template under an
//! owner, deleting them, recording the matching events, and claiming objects
//! by controller reference — adopting matching orphans, releasing those that
//! no longer match.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use client::events::{EventType, Recorder};

/// The owner reference a controller puts on what it creates.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

pub use client::informer::controller_of;

/// The event target for an object.
pub fn object_ref<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    client::events::reference(obj)
}

/// Running or about to: not finished and not being deleted (`IsPodActive`).
pub fn is_pod_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded") | Some("Failed"))
        && pod.metadata.deletion_timestamp.is_none()
}

/// `<name>-`, cut so the generated name stays a valid name (`getPodsPrefix`).
pub fn pods_prefix(owner_name: &str) -> String {
    let prefix = format!("{owner_name}-");
    // generateName appends 5 characters; names are at most 63 for most uses.
    if prefix.len() > 58 {
        prefix[..58].to_string()
    } else {
        prefix
    }
}

/// Creates and deletes pods for one controller, recording events on the owner.
#[derive(Clone)]
pub struct PodControl {
    pods_client: kube::Client,
    recorder: Recorder,
}

impl PodControl {
    pub fn new(client: kube::Client, recorder: Recorder) -> PodControl {
        PodControl {
            pods_client: client,
            recorder,
        }
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Creates a pod from `template` in `namespace` controlled by `owner`:
    /// named `name` if given, else generated from the owner's name.
    /// Records `SuccessfulCreate` or `FailedCreate` on the owner.
    pub async fn create(
        &self,
        namespace: &str,
        template: &PodTemplateSpec,
        owner: ObjectReference,
        owner_ref: OwnerReference,
        name: Option<String>,
    ) -> Result<Pod, kube::Error> {
        let mut pod = pod_from_template(template, owner_ref);
        match name {
            Some(n) => pod.metadata.name = Some(n),
            None => {
                pod.metadata.generate_name =
                    Some(pods_prefix(owner.name.as_deref().unwrap_or_default()))
            }
        }
        pod.metadata.namespace = Some(namespace.to_string());
        let api: Api<Pod> = Api::namespaced(self.pods_client.clone(), namespace);
        match api.create(&PostParams::default(), &pod).await {
            Ok(created) => {
                self.recorder.record(
                    owner,
                    EventType::Normal,
                    "SuccessfulCreate",
                    "Create",
                    format!("Created pod: {}", created.name_any()),
                );
                Ok(created)
            }
            Err(e) => {
                // A namespace being deleted refuses new pods; that is expected.
                if !is_namespace_terminating(&e) {
                    self.recorder.record(
                        owner,
                        EventType::Warning,
                        "FailedCreate",
                        "Create",
                        format!("Error creating: {}", api_message(&e)),
                    );
                }
                Err(e)
            }
        }
    }

    /// Deletes a pod (background propagation, its own grace period);
    /// records `SuccessfulDelete` or `FailedDelete` on the owner. A pod
    /// already gone counts as deleted.
    pub async fn delete(
        &self,
        namespace: &str,
        name: &str,
        owner: ObjectReference,
    ) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.pods_client.clone(), namespace);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                self.recorder.record(
                    owner,
                    EventType::Normal,
                    "SuccessfulDelete",
                    "Delete",
                    format!("Deleted pod: {name}"),
                );
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => {
                self.recorder.record(
                    owner,
                    EventType::Warning,
                    "FailedDelete",
                    "Delete",
                    format!("Error deleting: {}", api_message(&e)),
                );
                Err(e)
            }
        }
    }
}

/// A pod as `template` describes it, owned by `owner_ref` (`GetPodFromTemplate`).
pub fn pod_from_template(template: &PodTemplateSpec, owner_ref: OwnerReference) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner_ref]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The API's message for an error, for event text.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// A 403 because the namespace is being deleted (`NamespaceTerminatingCause`).
pub fn is_namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("because it is being terminated"))
}

/// Whether an error is the API's 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether an error is the API's 409.
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// [`claim`] for `owner` over `candidates` in the owner's namespace: the
/// controller reference and whether the owner is being deleted come from it.
pub async fn claim_for<O, K>(
    client: &kube::Client,
    owner: &O,
    candidates: Vec<Arc<K>>,
    matches: impl Fn(&K) -> bool,
) -> Result<Vec<Arc<K>>, kube::Error>
where
    O: Resource<DynamicType = ()>,
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), &owner.namespace().unwrap_or_default());
    let deleting = owner.meta().deletion_timestamp.is_some();
    claim(&api, &controller_ref(owner), deleting, candidates, matches).await
}

/// Claims objects for an owner (`ClaimObject`): of `candidates` (all in the
/// owner's namespace), returns those the owner controls after adopting
/// matching orphans and releasing controlled objects that no longer match.
/// Objects controlled by someone else, and objects being deleted, are left
/// alone. Adoption is skipped while the owner is being deleted.
pub async fn claim<K>(
    api: &Api<K>,
    owner_ref: &OwnerReference,
    owner_deleting: bool,
    candidates: Vec<Arc<K>>,
    matches: impl Fn(&K) -> bool,
) -> Result<Vec<Arc<K>>, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut claimed = Vec::new();
    for obj in candidates {
        match controller_of(obj.meta()) {
            Some(r) if r.uid == owner_ref.uid => {
                if matches(&obj) {
                    claimed.push(obj);
                } else if obj.meta().deletion_timestamp.is_none() {
                    release(api, owner_ref, &obj).await?;
                }
            }
            Some(_) => {}
            None => {
                if owner_deleting || obj.meta().deletion_timestamp.is_some() || !matches(&obj) {
                    continue;
                }
                match adopt(api, owner_ref, &obj).await {
                    Ok(adopted) => claimed.push(Arc::new(adopted)),
                    // Gone or changed meanwhile: the next sync sees it again.
                    Err(e) if is_not_found(&e) || is_conflict(&e) => {}
                    Err(kube::Error::Api(s)) if s.code == 422 => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(claimed)
}

/// Adds `owner_ref` to the object's owner references, guarded by its uid.
pub async fn adopt<K>(api: &Api<K>, owner_ref: &OwnerReference, obj: &K) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({
        "metadata": {
            "ownerReferences": [owner_ref],
            "uid": obj.uid(),
        }
    });
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
}

/// Removes the owner's reference from the object, guarded by its uid.
pub async fn release<K>(
    api: &Api<K>,
    owner_ref: &OwnerReference,
    obj: &K,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({
        "metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": owner_ref.uid}],
            "uid": obj.uid(),
        }
    });
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Gone, or no longer ours: nothing to release.
        Err(e) if is_not_found(&e) || matches!(&e, kube::Error::Api(s) if s.code == 422) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A delete guarded by uid, so a recreated object of the same name is spared.
pub fn delete_params_for_uid(uid: Option<String>) -> DeleteParams {
    DeleteParams {
        preconditions: Some(Preconditions {
            uid,
            resource_version: None,
        }),
        ..Default::default()
    }
}
