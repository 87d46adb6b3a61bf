//! ControllerRevision history shared by the StatefulSet and DaemonSet
//! controllers (`pkg/controller/history`): each distinct pod template a
//! controller has run is kept as a ControllerRevision named
//! `<owner>-<hash>`, numbered in the order it became the update target, so
//! `kubectl rollout history|undo` can show and restore it.
//!
//! A revision's `data` is the strategic-merge patch that puts its template
//! back on the owner: `{"spec":{"template":{…,"$patch":"replace"}}}`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{json, Value};

use crate::pod_control;

/// The label carrying a pod's (or revision's) revision hash.
pub const CONTROLLER_REVISION_HASH_LABEL: &str = "controller-revision-hash";

/// Owners keep this many old revisions unless they say otherwise.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;

/// 32-bit FNV-1a, the hash upstream uses for revision names and
/// pod-template-hashes.
fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// FNV-1a of `bytes`, written as `rand.SafeEncodeString` writes it: letters
/// and digits that cannot spell words.
pub fn safe_hash(bytes: &[u8]) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    fnv32a(bytes)
        .to_string()
        .bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// `HashControllerRevision`: a stable hash of revision data and the owner's
/// collision count (bumped when a name is taken by different data).
pub fn hash_data(data: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(data).unwrap_or_default();
    if let Some(c) = collision_count.filter(|c| *c != 0) {
        bytes.extend_from_slice(&(c as u32).to_le_bytes());
    }
    safe_hash(&bytes)
}

/// `ControllerRevisionName`: `<owner>-<hash>`, the owner part cut so the
/// name stays valid.
pub fn revision_name(owner: &str, hash: &str) -> String {
    let owner = if owner.len() > 223 {
        &owner[..223]
    } else {
        owner
    };
    format!("{owner}-{hash}")
}

/// The revision data that restores `template` with a strategic-merge patch.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or(json!({}));
    prune_empty(&mut t);
    if !t.is_object() {
        t = json!({});
    }
    t["$patch"] = json!("replace");
    json!({"spec": {"template": t}})
}

/// The template a revision holds (the inverse of [`template_patch`]).
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.pointer("/spec/template")?.clone();
    t.as_object_mut()?.remove("$patch");
    serde_json::from_value(t).ok()
}

/// Drops nulls and empty maps and lists: an absent field and an empty one
/// mean the same, and must not make two revisions differ.
fn prune_empty(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.values_mut().for_each(prune_empty);
            m.retain(|_, x| match x {
                Value::Null => false,
                Value::Object(o) => !o.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            });
        }
        Value::Array(a) => a.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

/// `EqualRevision`: the same data (compared without empty values).
pub fn equal_revision(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    let norm = |r: &ControllerRevision| {
        let mut v = r.data.as_ref().map(|d| d.0.clone()).unwrap_or(Value::Null);
        prune_empty(&mut v);
        v
    };
    norm(a) == norm(b)
}

/// `NewControllerRevision`: a revision of `owner_ref`'s `data`, labelled
/// with the template's labels and its hash, numbered `revision`.
pub fn new_revision(
    namespace: &str,
    owner_ref: OwnerReference,
    template_labels: BTreeMap<String, String>,
    data: Value,
    revision: i64,
    collision_count: Option<i32>,
) -> ControllerRevision {
    let hash = hash_data(&data, collision_count);
    let mut labels = template_labels;
    labels.insert(CONTROLLER_REVISION_HASH_LABEL.into(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(&owner_ref.name, &hash)),
            namespace: Some(namespace.into()),
            labels: Some(labels),
            owner_references: Some(vec![owner_ref]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// Oldest first (`SortControllerRevisions`: by number, then creation, then name).
pub fn sort_revisions(revs: &mut [Arc<ControllerRevision>]) {
    revs.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| {
                let t = |r: &ControllerRevision| r.metadata.creation_timestamp.clone().map(|t| t.0);
                t(a).cmp(&t(b))
            })
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
}

/// The number the next revision gets (`nextRevision`).
pub fn next_revision_number(revs: &[Arc<ControllerRevision>]) -> i64 {
    revs.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// What [`create_revision`] settled on, and the collision count to store.
pub struct Created {
    pub revision: ControllerRevision,
    pub collision_count: i32,
}

/// `CreateControllerRevision`: creates `rev`; when its name is taken by a
/// revision with other data (a hash collision), bumps the collision count
/// and tries the next name. A taken name with the same data is that revision.
pub async fn create_revision(
    api: &Api<ControllerRevision>,
    owner_ref: &OwnerReference,
    template_labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    data: Value,
    revision: i64,
    collision_count: i32,
) -> Result<Created, kube::Error> {
    let mut count = collision_count;
    loop {
        let mut rev = new_revision(
            api_namespace(api),
            owner_ref.clone(),
            template_labels.clone(),
            data.clone(),
            revision,
            Some(count),
        );
        // The owner's annotations (change-cause) go with it, for `rollout history`.
        if !annotations.is_empty() {
            rev.metadata.annotations = Some(annotations.clone());
        }
        match api.create(&PostParams::default(), &rev).await {
            Ok(created) => {
                return Ok(Created {
                    revision: created,
                    collision_count: count,
                })
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let existing = api.get(&rev.name_any()).await?;
                let ours = pod_control::controller_of(&existing.metadata)
                    .is_some_and(|r| r.uid == owner_ref.uid);
                if ours && equal_revision(&existing, &rev) {
                    return Ok(Created {
                        revision: existing,
                        collision_count: count,
                    });
                }
                count += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn api_namespace(api: &Api<ControllerRevision>) -> &str {
    api.namespace().unwrap_or("default")
}

/// Renumbers an existing revision that becomes the update target again
/// (a rollback to an old template).
pub async fn renumber(
    api: &Api<ControllerRevision>,
    rev: &ControllerRevision,
    revision: i64,
) -> Result<ControllerRevision, kube::Error> {
    api.patch(
        &rev.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"revision": revision})),
    )
    .await
}

/// Deletes the oldest revisions beyond `limit`, sparing those in `live`
/// (names in use by the owner or its pods) (`truncateHistory`).
pub async fn truncate_history(
    api: &Api<ControllerRevision>,
    revisions: &[Arc<ControllerRevision>],
    live: &HashSet<String>,
    limit: i32,
) -> Result<(), kube::Error> {
    let mut history: Vec<Arc<ControllerRevision>> = revisions
        .iter()
        .filter(|r| !live.contains(&r.name_any()))
        .cloned()
        .collect();
    let limit = limit.max(0) as usize;
    if history.len() <= limit {
        return Ok(());
    }
    sort_revisions(&mut history);
    let excess = history.len() - limit;
    for r in &history[..excess] {
        match api.delete(&r.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if pod_control::is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The owner's annotations a revision keeps (kubectl's bookkeeping aside).
pub fn history_annotations(meta: &ObjectMeta) -> BTreeMap<String, String> {
    let mut a = meta.annotations.clone().unwrap_or_default();
    a.remove("kubectl.kubernetes.io/last-applied-configuration");
    a
}

/// An owner's revisions after [`sync_revisions`].
pub struct Revisions {
    /// The revision the owner's pods are moving away from (the update
    /// revision itself once a rollout completed).
    pub current: ControllerRevision,
    /// The revision of the owner's template now.
    pub update: ControllerRevision,
    /// Every revision the owner controls, the update revision included.
    pub all: Vec<Arc<ControllerRevision>>,
    pub collision_count: i32,
}

/// Finds or makes the revision of `template` (`getStatefulSetRevisions`,
/// `constructHistory`): an equal revision is reused, renumbered to the
/// newest when it was an older one (a rollback); otherwise a new revision
/// is created. `current_name` is the owner's recorded current revision.
pub async fn sync_revisions(
    api: &Api<ControllerRevision>,
    owner_ref: &OwnerReference,
    mut revisions: Vec<Arc<ControllerRevision>>,
    template: &PodTemplateSpec,
    annotations: &BTreeMap<String, String>,
    current_name: Option<&str>,
    collision_count: i32,
) -> Result<Revisions, kube::Error> {
    sort_revisions(&mut revisions);
    let data = template_patch(template);
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let probe = new_revision(
        api_namespace(api),
        owner_ref.clone(),
        labels.clone(),
        data.clone(),
        0,
        None,
    );
    let next = next_revision_number(&revisions);
    let equal = revisions
        .iter()
        .rev()
        .find(|r| equal_revision(r, &probe))
        .cloned();
    let mut count = collision_count;
    let update = match equal {
        Some(r) if Some(r.revision) == revisions.last().map(|l| l.revision) => (*r).clone(),
        Some(r) => {
            let renumbered = renumber(api, &r, next).await?;
            let name = renumbered.name_any();
            revisions.retain(|x| x.name_any() != name);
            revisions.push(Arc::new(renumbered.clone()));
            renumbered
        }
        None => {
            let created =
                create_revision(api, owner_ref, &labels, annotations, data, next, count).await?;
            count = created.collision_count;
            let name = created.revision.name_any();
            revisions.retain(|x| x.name_any() != name);
            revisions.push(Arc::new(created.revision.clone()));
            created.revision
        }
    };
    let current = current_name
        .and_then(|n| revisions.iter().find(|r| r.name_any() == n))
        .map(|r| (**r).clone())
        .unwrap_or_else(|| update.clone());
    Ok(Revisions {
        current,
        update,
        all: revisions,
        collision_count: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "StatefulSet".into(),
            name: "web".into(),
            uid: "u1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    #[test]
    fn hash_is_stable_and_follows_data_and_collisions() {
        let a = template_patch(&template("nginx:1"));
        assert_eq!(hash_data(&a, None), hash_data(&a.clone(), Some(0)));
        assert_ne!(hash_data(&a, None), hash_data(&a, Some(1)));
        assert_ne!(
            hash_data(&a, None),
            hash_data(&template_patch(&template("nginx:2")), None)
        );
        assert!(hash_data(&a, None)
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }

    #[test]
    fn revision_round_trips_its_template() {
        let t = template("nginx:1");
        let rev = new_revision("ns", owner(), BTreeMap::new(), template_patch(&t), 3, None);
        assert_eq!(rev.revision, 3);
        let hash = rev.labels()[CONTROLLER_REVISION_HASH_LABEL].clone();
        assert_eq!(rev.name_any(), format!("web-{hash}"));
        assert_eq!(template_of(&rev), Some(t.clone()));
        assert_eq!(
            rev.data.as_ref().unwrap().0["spec"]["template"]["$patch"],
            "replace"
        );
        let same = new_revision("ns", owner(), BTreeMap::new(), template_patch(&t), 4, None);
        assert!(equal_revision(&rev, &same));
        let other = new_revision(
            "ns",
            owner(),
            BTreeMap::new(),
            template_patch(&template("nginx:2")),
            4,
            None,
        );
        assert!(!equal_revision(&rev, &other));
    }

    #[test]
    fn revisions_sort_by_number_and_next_follows_the_highest() {
        let mk = |n: i64, name: &str| {
            let mut r = new_revision("ns", owner(), BTreeMap::new(), json!({}), n, None);
            r.metadata.name = Some(name.into());
            Arc::new(r)
        };
        let mut revs = vec![mk(3, "c"), mk(1, "a"), mk(2, "b")];
        sort_revisions(&mut revs);
        let names: Vec<String> = revs.iter().map(|r| r.name_any()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(next_revision_number(&revs), 4);
        assert_eq!(next_revision_number(&[]), 1);
    }
}
