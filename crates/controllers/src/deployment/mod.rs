//! DeploymentController (`pkg/controller/deployment`): rolls a Deployment's
//! pod template out through ReplicaSets — one new ReplicaSet per template
//! (named and labelled with its pod-template-hash), old ones scaled down as
//! the new one comes up (RollingUpdate, within maxSurge/maxUnavailable) or
//! first of all (Recreate) — and reports the rollout in `status` and its
//! Progressing/Available conditions, which `kubectl rollout status` reads.
//!
//! Everything is derived from the caches on each sync (level-triggered):
//! the ReplicaSets the Deployment controls, their sizes and annotations.
//! Pods are only read for Recreate, through the pod cache's controller index.

mod progress;
mod recreate;
mod rolling;
mod sync;
pub mod util;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use client::events::{EventType, Recorder};

use crate::informer::{key_of, Change, Informer};
use crate::pod_control::{self, controller_of};
use crate::workqueue::WorkQueue;
use crate::Context;

const WORKERS: usize = 5;

pub(crate) struct Controller {
    client: kube::Client,
    deployments: Informer<Deployment>,
    replica_sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    recorder: Recorder,
    queue: WorkQueue,
}

/// Runs the Deployment controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        deployments: ctx.informers.get::<Deployment>(),
        replica_sets: ctx.informers.get::<ReplicaSet>(),
        pods: ctx.informers.pods(),
        recorder: ctx.recorder("deployment-controller"),
        queue: WorkQueue::new("deployment"),
    });
    {
        let c2 = c.clone();
        c.deployments.on_change(move |change| {
            if let Change::Deleted(d) = change {
                c2.recorder.forget(&d.uid().unwrap_or_default());
            }
            c2.queue.add(key_of(change.object().as_ref()));
        });
    }
    {
        let c2 = c.clone();
        c.replica_sets
            .on_change(move |change| c2.replica_set_changed(change));
    }
    {
        let c2 = c.clone();
        c.pods.on_change(move |change| {
            if let Change::Deleted(pod) = change {
                c2.pod_deleted(pod);
            }
        });
    }
    c.deployments.wait_synced().await;
    c.replica_sets.wait_synced().await;
    c.pods.wait_synced().await;
    let c2 = c.clone();
    c.queue
        .clone()
        .run(WORKERS, shutdown, move |key| {
            let c = c2.clone();
            async move { c.sync_deployment(&key).await.or_else(conflict_means_resync) }
        })
        .await;
    Ok(())
}

impl Controller {
    /// Deployments in the ReplicaSet's namespace selecting it (for orphans).
    fn deployments_selecting(&self, rs: &ReplicaSet) -> Vec<String> {
        self.deployments
            .list_namespace(&rs.namespace().unwrap_or_default())
            .iter()
            .filter(|d| selects(d, rs))
            .map(|d| key_of(d.as_ref()))
            .collect()
    }

    /// Wakes the owner (or, for an orphan, the deployments that may adopt
    /// it), and the former owner when the controller reference changed.
    fn replica_set_changed(&self, change: &Change<ReplicaSet>) {
        let rs = change.object();
        let owner = self.deployments.controller_key(&rs.metadata);
        match &owner {
            Some(key) => self.queue.add(key.clone()),
            None if controller_of(&rs.metadata).is_none()
                && !matches!(change, Change::Deleted(_)) =>
            {
                for key in self.deployments_selecting(rs) {
                    self.queue.add(key);
                }
            }
            None => {}
        }
        if let Some(old) = change.old() {
            if let Some(key) = self.deployments.controller_key(&old.metadata) {
                if Some(&key) != owner.as_ref() {
                    self.queue.add(key);
                }
            }
        }
    }

    /// Recreate waits for old pods to be gone: a pod's deletion may let it go on.
    fn pod_deleted(&self, pod: &Pod) {
        let Some(rs) = self
            .replica_sets
            .controller_key(&pod.metadata)
            .and_then(|k| self.replica_sets.get(&k))
        else {
            return;
        };
        let Some(key) = self.deployments.controller_key(&rs.metadata) else {
            return;
        };
        if self
            .deployments
            .get(&key)
            .is_some_and(|d| util::is_recreate(&d))
        {
            self.queue.add(key);
        }
    }

    /// `syncDeployment`: one pass over a Deployment. Returns when to look
    /// again (the progress deadline).
    async fn sync_deployment(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let Some(cached) = self.deployments.get(key) else {
            return Ok(None);
        };
        let mut d: Deployment = (*cached).clone();
        let selector_empty = d
            .spec
            .as_ref()
            .is_none_or(|s| client::labels::is_empty(&s.selector));
        if selector_empty {
            return self.sync_selecting_all(&d).await;
        }
        let rs_list = self.replica_sets_for_deployment(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            self.sync_status_only(&mut d, &rs_list).await?;
            return Ok(None);
        }
        self.check_paused_conditions(&mut d).await?;
        if util::is_paused(&d) || self.is_scaling_event(&d, &rs_list) {
            self.sync(&mut d, &rs_list).await?;
            return Ok(None);
        }
        if util::is_recreate(&d) {
            self.rollout_recreate(&mut d, &rs_list).await
        } else {
            self.rollout_rolling(&mut d, &rs_list).await
        }
    }

    /// A Deployment with an empty selector would select every pod: refused
    /// with a warning, the new spec counted as observed.
    async fn sync_selecting_all(&self, d: &Deployment) -> anyhow::Result<Option<Duration>> {
        self.recorder.record(
            pod_control::object_ref(d),
            EventType::Warning,
            "SelectingAll",
            "Sync",
            "This deployment is selecting all pods. A non-empty selector is required.".into(),
        );
        let generation = d.metadata.generation.unwrap_or(0);
        let observed = d
            .status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .unwrap_or(0);
        if observed < generation {
            let patch = json!({"status": {"observedGeneration": generation}});
            self.deployments_api(d)
                .patch_status(
                    &d.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
        Ok(None)
    }

    /// `getReplicaSetsForDeployment`: the ReplicaSets this Deployment
    /// controls, adopting matching orphans and releasing those that stopped
    /// matching.
    async fn replica_sets_for_deployment(&self, d: &Deployment) -> anyhow::Result<Vec<ReplicaSet>> {
        let uid = d.uid().unwrap_or_default();
        let ns = d.namespace().unwrap_or_default();
        let candidates = self.replica_sets.owned_or_orphaned(&ns, &uid);
        let claimed =
            pod_control::claim_for(&self.client, d, candidates, |rs| selects(d, rs)).await?;
        Ok(claimed.into_iter().map(|rs| (*rs).clone()).collect())
    }

    /// `checkPausedConditions`: Progressing says DeploymentPaused while
    /// paused and DeploymentResumed once resumed (a timed-out rollout keeps
    /// its condition).
    async fn check_paused_conditions(&self, d: &mut Deployment) -> anyhow::Result<()> {
        if util::progress_deadline(d).is_none() {
            return Ok(());
        }
        let cond = util::condition_of(d, util::PROGRESSING);
        if cond.is_some_and(|c| c.reason.as_deref() == Some(util::TIMED_OUT_REASON)) {
            return Ok(());
        }
        let paused_cond =
            cond.is_some_and(|c| c.reason.as_deref() == Some(util::PAUSED_DEPLOY_REASON));
        let condition = if util::is_paused(d) && !paused_cond {
            util::new_condition(
                util::PROGRESSING,
                "Unknown",
                util::PAUSED_DEPLOY_REASON,
                "Deployment is paused".into(),
            )
        } else if !util::is_paused(d) && paused_cond {
            util::new_condition(
                util::PROGRESSING,
                "Unknown",
                util::RESUMED_DEPLOY_REASON,
                "Deployment is resumed".into(),
            )
        } else {
            return Ok(());
        };
        let mut status = d.status.clone().unwrap_or_default();
        util::set_condition(&mut status, condition);
        self.write_status(d, status).await
    }

    /// `isScalingEvent`: the deployment's size differs from what its active
    /// ReplicaSets were last sized for.
    fn is_scaling_event(&self, d: &Deployment, rs_list: &[ReplicaSet]) -> bool {
        let want = util::replicas(d);
        util::active(rs_list).iter().any(|rs| {
            rs.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(util::DESIRED_REPLICAS_ANNOTATION))
                .and_then(|v| v.parse::<i32>().ok())
                .is_some_and(|desired| desired != want)
        })
    }

    fn deployments_api(&self, d: &Deployment) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default())
    }

    fn replica_sets_api(&self, d: &Deployment) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default())
    }

    /// Writes `status` (guarded by the resourceVersion this sync read, so a
    /// status computed from an outdated spec is never stored) and keeps `d`
    /// current.
    async fn write_status(
        &self,
        d: &mut Deployment,
        status: k8s_openapi::api::apps::v1::DeploymentStatus,
    ) -> anyhow::Result<()> {
        let patch = json!({
            "metadata": {"resourceVersion": d.metadata.resource_version},
            "status": status,
        });
        let updated = self
            .deployments_api(d)
            .patch_status(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        d.metadata.resource_version = updated.metadata.resource_version;
        d.status = Some(status);
        Ok(())
    }

    /// Records a ScalingReplicaSet event on the Deployment.
    fn record_scaling(&self, d: &Deployment, direction: &str, rs: &str, from: i32, to: i32) {
        self.recorder.record(
            pod_control::object_ref(d),
            EventType::Normal,
            "ScalingReplicaSet",
            "Scaling",
            format!("Scaled {direction} replica set {rs} from {from} to {to}"),
        );
    }
}

/// A write refused because this sync read an outdated object: the newer
/// version is on its way through the informer and queues the deployment
/// again, so this is no failure to back off from.
fn conflict_means_resync(e: anyhow::Error) -> anyhow::Result<Option<Duration>> {
    match e.downcast_ref::<kube::Error>() {
        Some(k) if pod_control::is_conflict(k) => {
            tracing::debug!(error = %e, "deployment sync read an outdated object; waiting for the newer one");
            Ok(None)
        }
        _ => Err(e),
    }
}

/// Whether the Deployment's selector picks the ReplicaSet's labels.
fn selects(d: &Deployment, rs: &ReplicaSet) -> bool {
    d.spec.as_ref().is_some_and(|s| {
        !client::labels::is_empty(&s.selector) && client::labels::matches(&s.selector, rs.labels())
    })
}
