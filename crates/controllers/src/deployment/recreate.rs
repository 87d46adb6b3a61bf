//! The Recreate strategy (`recreate.go`): scale every old ReplicaSet to
//! zero, wait until none of their pods runs, then create and scale up the
//! new one.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::util::{self, replicas, rs_replicas};
use super::Controller;
use crate::informer::CONTROLLER_INDEX;

impl Controller {
    /// `rolloutRecreate`: one step of a recreate rollout.
    pub(super) async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        rs_list: &[ReplicaSet],
    ) -> anyhow::Result<Option<Duration>> {
        // The new ReplicaSet is not created yet, so nothing scales up
        // before the old pods are gone.
        let (new_rs, old_rss) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        let (old_rss, scaled_down) = self
            .scale_down_old_replica_sets_for_recreate(d, old_rss)
            .await?;
        let mut all = old_rss.clone();
        all.extend(new_rs.clone());
        if scaled_down || self.old_pods_running(new_rs.as_ref(), &old_rss) {
            return self.sync_rollout_status(d, &all, new_rs.as_ref()).await;
        }
        let (new_rs, old_rss) = match new_rs {
            Some(rs) => (rs, old_rss),
            None => {
                let (new_rs, old_rss) = self
                    .get_all_replica_sets_and_sync_revision(d, rs_list, true)
                    .await?;
                let Some(new_rs) = new_rs else {
                    anyhow::bail!("no new replica set");
                };
                (new_rs, old_rss)
            }
        };
        let new_rs = self
            .scale_replica_set_and_record_event(d, new_rs, replicas(d))
            .await?;
        if d.status
            .as_ref()
            .is_some_and(|s| util::deployment_complete(d, s))
        {
            self.cleanup_deployment(d, &old_rss).await?;
        }
        let mut all = old_rss;
        all.push(new_rs.clone());
        self.sync_rollout_status(d, &all, Some(&new_rs)).await
    }

    /// `scaleDownOldReplicaSetsForRecreate`: every old ReplicaSet to zero.
    async fn scale_down_old_replica_sets_for_recreate(
        &self,
        d: &Deployment,
        old_rss: Vec<ReplicaSet>,
    ) -> anyhow::Result<(Vec<ReplicaSet>, bool)> {
        let mut scaled = false;
        let mut out = Vec::with_capacity(old_rss.len());
        for rs in old_rss {
            if rs_replicas(&rs) == 0 {
                out.push(rs);
                continue;
            }
            out.push(self.scale_replica_set_and_record_event(d, rs, 0).await?);
            scaled = true;
        }
        Ok((out, scaled))
    }

    /// `oldPodsRunning`: an old ReplicaSet still reports pods, or a pod it
    /// controls has not finished (read by controller from the pod cache).
    fn old_pods_running(&self, new_rs: Option<&ReplicaSet>, old_rss: &[ReplicaSet]) -> bool {
        if util::status_sums(old_rss).0 > 0 {
            return true;
        }
        let new_uid = new_rs.and_then(|rs| rs.metadata.uid.as_deref());
        old_rss
            .iter()
            .filter_map(|rs| rs.metadata.uid.as_deref())
            .filter(|uid| Some(*uid) != new_uid)
            .flat_map(|uid| self.pods.by_index(CONTROLLER_INDEX, uid))
            .any(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Failed") | Some("Succeeded")
                )
            })
    }
}
