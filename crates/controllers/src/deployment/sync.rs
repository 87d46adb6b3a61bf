//! What every strategy shares (`sync.go`): finding or creating the new
//! ReplicaSet and keeping revisions in step, scaling (proportionally when
//! the deployment is resized mid-rollout), cleaning up old ReplicaSets
//! beyond `revisionHistoryLimit`, and computing `status`.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

use client::events::EventType;

use super::util::{self, replicas, rs_replicas};
use super::Controller;
use crate::pod_control;

impl Controller {
    /// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created when
    /// `create` and missing) and the old ones.
    pub(super) async fn get_all_replica_sets_and_sync_revision(
        &self,
        d: &mut Deployment,
        rs_list: &[ReplicaSet],
        create: bool,
    ) -> anyhow::Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let existing = util::find_new_replica_set(d, rs_list);
        let old_rss = util::find_old_replica_sets(rs_list, existing.as_ref());
        let new_rs = self
            .get_new_replica_set(d, existing, &old_rss, create)
            .await?;
        Ok((new_rs, old_rss))
    }

    /// `getNewReplicaSet`: brings an existing new ReplicaSet's revision and
    /// annotations up to date, or creates it (named `<deployment>-<hash>`).
    async fn get_new_replica_set(
        &self,
        d: &mut Deployment,
        existing: Option<ReplicaSet>,
        old_rss: &[ReplicaSet],
        create: bool,
    ) -> anyhow::Result<Option<ReplicaSet>> {
        let new_revision = util::max_revision(old_rss) + 1;
        if let Some(rs) = existing {
            let rs = self.sync_new_replica_set(d, rs, new_revision).await?;
            let revision = util::revision(&rs).to_string();
            self.set_deployment_revision(d, &revision).await?;
            if util::progress_deadline(d).is_some()
                && util::condition_of(d, util::PROGRESSING).is_none()
            {
                let msg = format!("Found new replica set \"{}\"", rs.name_any());
                let c =
                    util::new_condition(util::PROGRESSING, "True", util::FOUND_NEW_RS_REASON, msg);
                let mut status = d.status.clone().unwrap_or_default();
                util::set_condition(&mut status, c);
                d.status = Some(status);
            }
            return Ok(Some(rs));
        }
        if !create {
            return Ok(None);
        }
        self.create_new_replica_set(d, old_rss, new_revision)
            .await
            .map(Some)
    }

    /// Updates the existing new ReplicaSet's annotations (revision,
    /// copied deployment annotations) and minReadySeconds when they differ.
    async fn sync_new_replica_set(
        &self,
        d: &Deployment,
        rs: ReplicaSet,
        new_revision: i64,
    ) -> anyhow::Result<ReplicaSet> {
        let mut copy = rs.clone();
        let annotations_changed =
            util::set_new_replica_set_annotations(d, &mut copy, new_revision, true);
        let min_ready = util::min_ready_seconds(d);
        let min_ready_changed = copy
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
            != min_ready;
        if !annotations_changed && !min_ready_changed {
            return Ok(rs);
        }
        let patch = json!({
            "metadata": {
                "resourceVersion": rs.metadata.resource_version,
                "annotations": copy.metadata.annotations,
            },
            "spec": {"minReadySeconds": min_ready},
        });
        Ok(self
            .replica_sets_api(d)
            .patch(
                &rs.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?)
    }

    /// Creates the new ReplicaSet, sized as the strategy allows. A name
    /// taken by a ReplicaSet with another template is a hash collision:
    /// `status.collisionCount` goes up and the next sync hashes anew.
    async fn create_new_replica_set(
        &self,
        d: &mut Deployment,
        old_rss: &[ReplicaSet],
        new_revision: i64,
    ) -> anyhow::Result<ReplicaSet> {
        let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
        let mut template = util::template(d);
        let hash = util::compute_hash(&template, collision_count);
        let labels = util::with_hash_label(
            template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
            &hash,
        );
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels = Some(labels.clone());
        let mut selector = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(util::POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", d.name_any())),
                namespace: d.namespace(),
                owner_references: Some(vec![pod_control::controller_ref(d)]),
                labels: Some(labels),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(util::min_ready_seconds(d)),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let mut all = old_rss.to_vec();
        all.push(rs.clone());
        let new_replicas = util::new_rs_new_replicas(d, &all, &rs);
        util::set_rs_replicas(&mut rs, new_replicas);
        util::set_new_replica_set_annotations(d, &mut rs, new_revision, false);
        let rs_name = rs.name_any();
        let created = match self
            .replica_sets_api(d)
            .create(&PostParams::default(), &rs)
            .await
        {
            Ok(created) => {
                if new_replicas > 0 {
                    self.record_scaling(d, "up", &rs_name, 0, new_replicas);
                }
                if util::progress_deadline(d).is_some() {
                    let msg = format!("Created new replica set \"{rs_name}\"");
                    let c = util::new_condition(
                        util::PROGRESSING,
                        "True",
                        util::NEW_RS_CREATED_REASON,
                        msg,
                    );
                    let mut status = d.status.clone().unwrap_or_default();
                    util::set_condition(&mut status, c);
                    d.status = Some(status);
                }
                created
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                return self.resolve_name_taken(d, &rs_name).await;
            }
            Err(e) => {
                self.recorder.record(
                    pod_control::object_ref(d),
                    EventType::Warning,
                    util::FAILED_RS_CREATE_REASON,
                    "Create",
                    format!(
                        "Failed to create new replica set \"{rs_name}\": {}",
                        pod_control::api_message(&e)
                    ),
                );
                if util::progress_deadline(d).is_some() {
                    let msg = format!(
                        "Failed to create new replica set \"{rs_name}\": {}",
                        pod_control::api_message(&e)
                    );
                    let c = util::new_condition(
                        util::PROGRESSING,
                        "False",
                        util::FAILED_RS_CREATE_REASON,
                        msg,
                    );
                    let mut status = d.status.clone().unwrap_or_default();
                    util::set_condition(&mut status, c);
                    self.write_status(d, status).await?;
                }
                return Err(e.into());
            }
        };
        self.set_deployment_revision(d, &new_revision.to_string())
            .await?;
        Ok(created)
    }

    /// The new ReplicaSet's name exists: it is ours (an earlier sync made it
    /// and the cache had not caught up) or a hash collision.
    async fn resolve_name_taken(
        &self,
        d: &mut Deployment,
        rs_name: &str,
    ) -> anyhow::Result<ReplicaSet> {
        let existing = self.replica_sets_api(d).get(rs_name).await?;
        let ours = pod_control::controller_of(&existing.metadata)
            .is_some_and(|r| Some(r.uid.as_str()) == d.metadata.uid.as_deref());
        let same_template = existing
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| util::equal_ignore_hash(t, &util::template(d)));
        if ours && same_template {
            return Ok(existing);
        }
        let mut status = d.status.clone().unwrap_or_default();
        status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
        self.write_status(d, status).await?;
        anyhow::bail!("hash collision on replica set {rs_name}; collisionCount raised")
    }

    /// `SetDeploymentRevision`: the deployment carries its new ReplicaSet's
    /// revision (what `kubectl rollout status --revision` compares).
    async fn set_deployment_revision(
        &self,
        d: &mut Deployment,
        revision: &str,
    ) -> anyhow::Result<()> {
        let current = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(util::REVISION_ANNOTATION));
        if current.map(String::as_str) == Some(revision) {
            return Ok(());
        }
        let patch = json!({"metadata": {"annotations": {util::REVISION_ANNOTATION: revision}}});
        let updated = self
            .deployments_api(d)
            .patch(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        d.metadata.resource_version = updated.metadata.resource_version;
        d.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(util::REVISION_ANNOTATION.into(), revision.into());
        Ok(())
    }

    /// `sync`: for a paused deployment or a scaling event — scale, clean up
    /// (paused only) and report, never roll out.
    pub(super) async fn sync(
        &self,
        d: &mut Deployment,
        rs_list: &[ReplicaSet],
    ) -> anyhow::Result<()> {
        let (new_rs, old_rss) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        let (new_rs, old_rss) = self.scale(d, new_rs, old_rss).await?;
        if util::is_paused(d) {
            self.cleanup_deployment(d, &old_rss).await?;
        }
        let mut all = old_rss;
        all.extend(new_rs.clone());
        self.sync_deployment_status(d, &all, new_rs.as_ref()).await
    }

    /// `syncStatusOnly`: a deployment being deleted only reports.
    pub(super) async fn sync_status_only(
        &self,
        d: &mut Deployment,
        rs_list: &[ReplicaSet],
    ) -> anyhow::Result<()> {
        let (new_rs, old_rss) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        let mut all = old_rss;
        all.extend(new_rs.clone());
        self.sync_deployment_status(d, &all, new_rs.as_ref()).await
    }

    /// `scale`: sizes the ReplicaSets to the deployment's replicas — all to
    /// the only active one; none left on old ones once the new one is
    /// saturated; mid-rollout, the difference split in proportion to each
    /// ReplicaSet's size, the leftover to the largest.
    async fn scale(
        &self,
        d: &Deployment,
        new_rs: Option<ReplicaSet>,
        old_rss: Vec<ReplicaSet>,
    ) -> anyhow::Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let want = replicas(d);
        if let Some(only) = util::find_active_or_latest(new_rs.as_ref(), &old_rss) {
            if rs_replicas(&only) == want {
                return Ok((new_rs, old_rss));
            }
            let scaled = self
                .scale_replica_set_and_record_event(d, only, want)
                .await?;
            return Ok(replace(new_rs, old_rss, scaled));
        }
        if util::is_saturated(d, new_rs.as_ref()) {
            let mut old = Vec::with_capacity(old_rss.len());
            for rs in old_rss {
                old.push(if rs_replicas(&rs) > 0 {
                    self.scale_replica_set_and_record_event(d, rs, 0).await?
                } else {
                    rs
                });
            }
            return Ok((new_rs, old));
        }
        if !util::is_rolling_update(d) {
            return Ok((new_rs, old_rss));
        }
        let mut all = old_rss.clone();
        all.extend(new_rs.clone());
        let mut actives = util::active(&all);
        let allowed = if want > 0 {
            want + util::max_surge(d)
        } else {
            0
        };
        let to_add = allowed - util::spec_replicas_sum(&actives);
        let direction = if to_add > 0 {
            actives.sort_by(util::by_size_newer);
            "up"
        } else {
            actives.sort_by(util::by_size_older);
            "down"
        };
        let sizes = util::proportional_sizes(d, &actives, to_add);
        let (mut new_rs, mut old_rss) = (new_rs, old_rss);
        for (rs, size) in actives.into_iter().zip(sizes) {
            let scaled = self.scale_replica_set(d, rs, size, direction).await?;
            (new_rs, old_rss) = replace(new_rs, old_rss, scaled);
        }
        Ok((new_rs, old_rss))
    }

    /// `scaleReplicaSetAndRecordEvent`.
    pub(super) async fn scale_replica_set_and_record_event(
        &self,
        d: &Deployment,
        rs: ReplicaSet,
        new_scale: i32,
    ) -> anyhow::Result<ReplicaSet> {
        if rs_replicas(&rs) == new_scale {
            return Ok(rs);
        }
        let direction = if rs_replicas(&rs) > new_scale {
            "down"
        } else {
            "up"
        };
        self.scale_replica_set(d, rs, new_scale, direction).await
    }

    /// `scaleReplicaSet`: sets the size and the desired/max annotations,
    /// guarded by the ReplicaSet's resourceVersion.
    async fn scale_replica_set(
        &self,
        d: &Deployment,
        rs: ReplicaSet,
        new_scale: i32,
        direction: &str,
    ) -> anyhow::Result<ReplicaSet> {
        let (want, max) = (replicas(d), replicas(d) + util::max_surge(d));
        let old_scale = rs_replicas(&rs);
        let size_changed = old_scale != new_scale;
        if !size_changed && !util::replicas_annotations_need_update(&rs, want, max) {
            return Ok(rs);
        }
        let patch = json!({
            "metadata": {
                "resourceVersion": rs.metadata.resource_version,
                "annotations": {
                    util::DESIRED_REPLICAS_ANNOTATION: want.to_string(),
                    util::MAX_REPLICAS_ANNOTATION: max.to_string(),
                },
            },
            "spec": {"replicas": new_scale},
        });
        let updated = self
            .replica_sets_api(d)
            .patch(
                &rs.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        if size_changed {
            self.record_scaling(d, direction, &rs.name_any(), old_scale, new_scale);
        }
        Ok(updated)
    }

    /// `cleanupDeployment`: deletes the oldest old ReplicaSets beyond
    /// `revisionHistoryLimit`, only those with no replicas left.
    pub(super) async fn cleanup_deployment(
        &self,
        d: &Deployment,
        old_rss: &[ReplicaSet],
    ) -> anyhow::Result<()> {
        let Some(limit) = util::revision_history_limit(d) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = old_rss
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = cleanable.len() as i64 - limit.max(0) as i64;
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| util::by_revision(a, b));
        for rs in cleanable.into_iter().take(diff as usize) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if util::rs_status(rs).0 != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            let params = pod_control::delete_params_for_uid(rs.uid());
            match self
                .replica_sets_api(d)
                .delete(&rs.name_any(), &params)
                .await
            {
                Ok(_) => {}
                Err(e) if pod_control::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// `syncDeploymentStatus`: writes the computed status when it changed.
    pub(super) async fn sync_deployment_status(
        &self,
        d: &mut Deployment,
        all: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> anyhow::Result<()> {
        let status = calculate_status(d, all, new_rs);
        self.write_status_if_changed(d, status).await
    }

    /// Writes `status` unless the stored one already says it.
    pub(super) async fn write_status_if_changed(
        &self,
        d: &mut Deployment,
        status: DeploymentStatus,
    ) -> anyhow::Result<()> {
        let stored = self
            .deployments
            .get(&crate::informer::key_of(d))
            .and_then(|c| c.status.clone());
        if stored.as_ref() == Some(&status) {
            d.status = Some(status);
            return Ok(());
        }
        self.write_status(d, status).await
    }
}

/// `calculateStatus`: the counts summed over the ReplicaSets and the
/// Available condition; other conditions carried over.
pub(super) fn calculate_status(
    d: &Deployment,
    all: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> DeploymentStatus {
    let (actual, ready, available) = util::status_sums(all);
    let total = util::spec_replicas_sum(all);
    let updated = new_rs.map(|rs| util::rs_status(rs).0).unwrap_or(0);
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: Some(d.metadata.generation.unwrap_or(0)),
        replicas: Some(actual),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions,
        ..Default::default()
    };
    let condition = if available >= replicas(d) - util::max_unavailable(d) {
        util::new_condition(
            util::AVAILABLE,
            "True",
            util::MINIMUM_REPLICAS_AVAILABLE,
            "Deployment has minimum availability.".into(),
        )
    } else {
        util::new_condition(
            util::AVAILABLE,
            "False",
            util::MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.".into(),
        )
    };
    util::set_condition(&mut status, condition);
    status
}

/// Puts `scaled` in place of the ReplicaSet with its uid.
fn replace(
    new_rs: Option<ReplicaSet>,
    mut old_rss: Vec<ReplicaSet>,
    scaled: ReplicaSet,
) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
    if new_rs
        .as_ref()
        .is_some_and(|n| n.metadata.uid == scaled.metadata.uid)
    {
        return (Some(scaled), old_rss);
    }
    if let Some(slot) = old_rss
        .iter_mut()
        .find(|o| o.metadata.uid == scaled.metadata.uid)
    {
        *slot = scaled;
    }
    (new_rs, old_rss)
}
