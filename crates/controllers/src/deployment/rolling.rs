//! The RollingUpdate strategy (`rolling.go`): grow the new ReplicaSet
//! within `maxSurge`, shrink old ones within `maxUnavailable` — unhealthy
//! replicas first, so they cannot block the rollout — and clean up once done.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::util::{self, replicas, rs_replicas, rs_status};
use super::Controller;

impl Controller {
    /// `rolloutRolling`: one step of a rolling update.
    pub(super) async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        rs_list: &[ReplicaSet],
    ) -> anyhow::Result<Option<Duration>> {
        let (new_rs, old_rss) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, true)
            .await?;
        let Some(new_rs) = new_rs else {
            anyhow::bail!("no new replica set");
        };
        let mut all = old_rss.clone();
        all.push(new_rs.clone());

        let scaled = self
            .reconcile_new_replica_set(d, &all, new_rs.clone())
            .await?;
        if rs_replicas(&scaled) != rs_replicas(&new_rs) {
            let mut all = old_rss;
            all.push(scaled.clone());
            return self.sync_rollout_status(d, &all, Some(&scaled)).await;
        }

        let (old_rss, scaled_down) = self.reconcile_old_replica_sets(d, old_rss, &new_rs).await?;
        let mut all = old_rss.clone();
        all.push(new_rs.clone());
        if scaled_down {
            return self.sync_rollout_status(d, &all, Some(&new_rs)).await;
        }
        if d.status
            .as_ref()
            .is_some_and(|s| util::deployment_complete(d, s))
        {
            self.cleanup_deployment(d, &old_rss).await?;
        }
        self.sync_rollout_status(d, &all, Some(&new_rs)).await
    }

    /// `reconcileNewReplicaSet`: the new ReplicaSet's size toward the
    /// deployment's, within the surge.
    async fn reconcile_new_replica_set(
        &self,
        d: &Deployment,
        all: &[ReplicaSet],
        new_rs: ReplicaSet,
    ) -> anyhow::Result<ReplicaSet> {
        let want = replicas(d);
        if rs_replicas(&new_rs) == want {
            return Ok(new_rs);
        }
        if rs_replicas(&new_rs) > want {
            return self
                .scale_replica_set_and_record_event(d, new_rs, want)
                .await;
        }
        let n = util::new_rs_new_replicas(d, all, &new_rs);
        self.scale_replica_set_and_record_event(d, new_rs, n).await
    }

    /// `reconcileOldReplicaSets`: scales old ReplicaSets down as far as
    /// availability allows; returns them as they now are and whether any shrank.
    async fn reconcile_old_replica_sets(
        &self,
        d: &Deployment,
        old_rss: Vec<ReplicaSet>,
        new_rs: &ReplicaSet,
    ) -> anyhow::Result<(Vec<ReplicaSet>, bool)> {
        let active_old = util::active(&old_rss);
        let old_pods = util::spec_replicas_sum(&active_old);
        if old_pods == 0 {
            return Ok((old_rss, false));
        }
        let all_pods = old_pods + rs_replicas(new_rs);
        let min_available = replicas(d) - util::max_unavailable(d);
        let new_unavailable = rs_replicas(new_rs) - rs_status(new_rs).2;
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok((old_rss, false));
        }
        let (active_old, cleaned) = self
            .cleanup_unhealthy_replicas(d, active_old, max_scaled_down)
            .await?;
        let mut all = active_old.clone();
        all.push(new_rs.clone());
        let (active_old, scaled) = self
            .scale_down_old_replica_sets_for_rolling_update(d, &all, active_old)
            .await?;
        let old_rss = old_rss
            .into_iter()
            .map(|rs| {
                active_old
                    .iter()
                    .find(|a| a.metadata.uid == rs.metadata.uid)
                    .cloned()
                    .unwrap_or(rs)
            })
            .collect();
        Ok((old_rss, cleaned + scaled > 0))
    }

    /// `cleanupUnhealthyReplicas`: removes unavailable replicas of old
    /// ReplicaSets (oldest first), at most `max_cleanup`.
    async fn cleanup_unhealthy_replicas(
        &self,
        d: &Deployment,
        mut old_rss: Vec<ReplicaSet>,
        max_cleanup: i32,
    ) -> anyhow::Result<(Vec<ReplicaSet>, i32)> {
        old_rss.sort_by(util::by_creation);
        let mut total = 0;
        for rs in old_rss.iter_mut() {
            if total >= max_cleanup {
                break;
            }
            let (want, available) = (rs_replicas(rs), rs_status(rs).2);
            if want == 0 || want <= available {
                continue;
            }
            let n = (max_cleanup - total).min(want - available);
            *rs = self
                .scale_replica_set_and_record_event(d, rs.clone(), want - n)
                .await?;
            total += n;
        }
        Ok((old_rss, total))
    }

    /// `scaleDownOldReplicaSetsForRollingUpdate`: scales old ReplicaSets
    /// (oldest first) down by as many as are available beyond the minimum.
    async fn scale_down_old_replica_sets_for_rolling_update(
        &self,
        d: &Deployment,
        all: &[ReplicaSet],
        mut old_rss: Vec<ReplicaSet>,
    ) -> anyhow::Result<(Vec<ReplicaSet>, i32)> {
        let min_available = replicas(d) - util::max_unavailable(d);
        let available = util::status_sums(all).2;
        if available <= min_available {
            return Ok((old_rss, 0));
        }
        old_rss.sort_by(util::by_creation);
        let to_scale_down = available - min_available;
        let mut total = 0;
        for rs in old_rss.iter_mut() {
            if total >= to_scale_down {
                break;
            }
            let want = rs_replicas(rs);
            if want == 0 {
                continue;
            }
            let n = want.min(to_scale_down - total);
            *rs = self
                .scale_replica_set_and_record_event(d, rs.clone(), want - n)
                .await?;
            total += n;
        }
        Ok((old_rss, total))
    }
}
