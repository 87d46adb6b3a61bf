//! Rollout progress (`progress.go`): the Progressing condition —
//! ReplicaSetUpdated while replicas move, NewReplicaSetAvailable once done,
//! ProgressDeadlineExceeded when nothing moved for `progressDeadlineSeconds`
//! — and the ReplicaFailure condition carried over from the ReplicaSets.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use kube::ResourceExt;

use super::sync::calculate_status;
use super::util;
use super::Controller;

impl Controller {
    /// `syncRolloutStatus`: writes the status with the Progressing
    /// condition brought up to date; returns when to look again for the
    /// progress deadline.
    pub(super) async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        all: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> anyhow::Result<Option<Duration>> {
        let mut status = calculate_status(d, all, new_rs);
        if util::progress_deadline(d).is_none() {
            util::remove_condition(&mut status, util::PROGRESSING);
        }
        let current = util::condition_of(d, util::PROGRESSING).cloned();
        let complete = status.replicas == status.updated_replicas
            && current
                .as_ref()
                .is_some_and(|c| c.reason.as_deref() == Some(util::NEW_RS_AVAILABLE_REASON));
        if util::progress_deadline(d).is_some() && !complete {
            update_progressing(d, &mut status, current.as_ref(), new_rs);
        }
        match replica_failure(all, new_rs) {
            Some(c) => util::set_condition(&mut status, c),
            None => util::remove_condition(&mut status, util::REPLICA_FAILURE),
        }
        let requeue = requeue_stuck_deployment(d, &status);
        self.write_status_if_changed(d, status).await?;
        Ok(requeue)
    }
}

/// Sets Progressing from what changed since the stored status.
fn update_progressing(
    d: &Deployment,
    status: &mut DeploymentStatus,
    current: Option<&DeploymentCondition>,
    new_rs: Option<&ReplicaSet>,
) {
    let subject = match new_rs {
        Some(rs) => format!("ReplicaSet \"{}\"", rs.name_any()),
        None => format!("Deployment \"{}\"", d.name_any()),
    };
    if util::deployment_complete(d, status) {
        let c = util::new_condition(
            util::PROGRESSING,
            "True",
            util::NEW_RS_AVAILABLE_REASON,
            format!("{subject} has successfully progressed."),
        );
        util::set_condition(status, c);
    } else if util::deployment_progressing(d, status) {
        // Progress refreshes lastUpdateTime even with the same reason: the
        // deadline counts from the last progress.
        let mut c = util::new_condition(
            util::PROGRESSING,
            "True",
            util::RS_UPDATED_REASON,
            format!("{subject} is progressing."),
        );
        if let Some(cur) = current {
            if cur.status == "True" {
                c.last_transition_time = cur.last_transition_time.clone();
            }
            util::remove_condition(status, util::PROGRESSING);
        }
        util::set_condition(status, c);
    } else if util::deployment_timed_out(d, status) {
        let c = util::new_condition(
            util::PROGRESSING,
            "False",
            util::TIMED_OUT_REASON,
            format!("{subject} has timed out progressing."),
        );
        util::set_condition(status, c);
    }
}

/// `getReplicaFailures`: a ReplicaFailure condition of the new ReplicaSet,
/// else of any other, as the Deployment's.
fn replica_failure(all: &[ReplicaSet], new_rs: Option<&ReplicaSet>) -> Option<DeploymentCondition> {
    let failure = |rs: &ReplicaSet| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == util::REPLICA_FAILURE && c.status == "True")
            .cloned()
    };
    let c = new_rs
        .and_then(failure)
        .or_else(|| all.iter().find_map(failure))?;
    Some(DeploymentCondition {
        type_: c.type_,
        status: c.status,
        reason: c.reason,
        message: c.message,
        last_update_time: c.last_transition_time.clone(),
        last_transition_time: c.last_transition_time,
    })
}

/// `requeueStuckDeployment`: when to check the progress deadline again
/// (a second after it passes), unless the rollout is done or failed.
fn requeue_stuck_deployment(d: &Deployment, status: &DeploymentStatus) -> Option<Duration> {
    if util::deployment_complete(d, status) {
        return None;
    }
    let at = util::progress_deadline_at(d, status)?;
    let after = at.duration_since(Timestamp::now());
    if after.is_negative() || after.as_secs() < 1 {
        return Some(Duration::from_secs(1));
    }
    Some(Duration::from_secs(after.as_secs() as u64 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn deployment(status: DeploymentStatus) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                generation: Some(2),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(3),
                progress_deadline_seconds: Some(5),
                ..Default::default()
            }),
            status: Some(status),
        }
    }

    fn progressing(reason: &str, updated_secs_ago: i64) -> DeploymentCondition {
        let t = Time(Timestamp::now() - jiff::SignedDuration::from_secs(updated_secs_ago));
        DeploymentCondition {
            type_: util::PROGRESSING.into(),
            status: "True".into(),
            reason: Some(reason.into()),
            message: None,
            last_update_time: Some(t.clone()),
            last_transition_time: Some(t),
        }
    }

    fn counts(replicas: i32, updated: i32, available: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(2),
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            ready_replicas: Some(available),
            available_replicas: Some(available),
            ..Default::default()
        }
    }

    fn reason(s: &DeploymentStatus) -> String {
        util::get_condition(s, util::PROGRESSING)
            .and_then(|c| c.reason.clone())
            .unwrap_or_default()
    }

    #[test]
    fn progress_refreshes_the_condition_and_keeps_its_transition_time() {
        let old = progressing(util::NEW_RS_CREATED_REASON, 60);
        let mut stored = counts(4, 1, 3);
        stored.conditions = Some(vec![old.clone()]);
        let d = deployment(stored.clone());
        let mut new = counts(4, 2, 3);
        new.conditions = stored.conditions.clone();
        update_progressing(&d, &mut new, Some(&old), None);
        let c = util::get_condition(&new, util::PROGRESSING).unwrap();
        assert_eq!(c.reason.as_deref(), Some(util::RS_UPDATED_REASON));
        assert_eq!(c.last_transition_time, old.last_transition_time);
        assert!(c.last_update_time.as_ref().unwrap().0 > old.last_update_time.unwrap().0);
    }

    #[test]
    fn no_progress_past_the_deadline_times_out_and_completion_wins() {
        let old = progressing(util::RS_UPDATED_REASON, 10);
        let mut stored = counts(4, 1, 3);
        stored.conditions = Some(vec![old.clone()]);
        let d = deployment(stored.clone());
        let mut same = stored.clone();
        update_progressing(&d, &mut same, Some(&old), None);
        assert_eq!(reason(&same), util::TIMED_OUT_REASON);
        assert_eq!(
            requeue_stuck_deployment(&d, &same),
            None,
            "nothing to wait for"
        );

        let mut done = counts(3, 3, 3);
        done.conditions = stored.conditions.clone();
        update_progressing(&d, &mut done, Some(&old), None);
        assert_eq!(reason(&done), util::NEW_RS_AVAILABLE_REASON);
    }

    #[test]
    fn a_stuck_rollout_is_looked_at_again_after_its_deadline() {
        let old = progressing(util::RS_UPDATED_REASON, 1);
        let mut stored = counts(4, 1, 3);
        stored.conditions = Some(vec![old]);
        let d = deployment(stored.clone());
        let after = requeue_stuck_deployment(&d, &stored).unwrap();
        assert!(
            after >= Duration::from_secs(4) && after <= Duration::from_secs(6),
            "{after:?}"
        );
    }
}
