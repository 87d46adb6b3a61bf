//! TTL-after-finished controller (`pkg/controller/ttlafterfinished`):
//! deletes a finished Job `ttlSecondsAfterFinished` after it finished, with
//! background propagation (the garbage collector removes its pods).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, PropagationPolicy};
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::informer::{key_of, Informer};
use crate::pod_control;
use crate::workqueue::WorkQueue;
use crate::Context;

/// Runs the TTL-after-finished controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let jobs: Informer<Job> = ctx.informers.get();
    let queue = WorkQueue::new("ttl-after-finished");
    {
        let q = queue.clone();
        jobs.on_change(move |ch| {
            let job = ch.object();
            if job
                .spec
                .as_ref()
                .and_then(|s| s.ttl_seconds_after_finished)
                .is_some()
                && crate::job::is_finished(job)
            {
                q.add(key_of(job.as_ref()));
            }
        });
    }
    jobs.wait_synced().await;
    let client = ctx.client.clone();
    queue
        .run(2, shutdown, move |key| {
            let (client, jobs) = (client.clone(), jobs.clone());
            async move { sync(&client, &jobs, &key).await }
        })
        .await;
    Ok(())
}

/// When a finished Job with a TTL expires (`timeLeft`).
pub fn expires_at(job: &Job) -> Option<Timestamp> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = job
        .status
        .as_ref()
        .and_then(|s| s.completion_time.as_ref().map(|t| t.0))
        .or_else(|| crate::job::finished_at(job))?;
    Some(finished + SignedDuration::from_secs(i64::from(ttl)))
}

async fn sync(
    client: &kube::Client,
    jobs: &Informer<Job>,
    key: &str,
) -> anyhow::Result<Option<Duration>> {
    let Some(job) = jobs.get(key) else {
        return Ok(None);
    };
    if job.metadata.deletion_timestamp.is_some() || !crate::job::is_finished(&job) {
        return Ok(None);
    }
    let Some(at) = expires_at(&job) else {
        return Ok(None);
    };
    let now = Timestamp::now();
    if at > now {
        return Ok(Some(
            Duration::try_from(at.duration_since(now)).unwrap_or_default(),
        ));
    }
    let api: Api<Job> = Api::namespaced(client.clone(), &job.namespace().unwrap_or_default());
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..pod_control::delete_params_for_uid(job.metadata.uid.clone())
    };
    match api.delete(&job.name_any(), &dp).await {
        Ok(_) => Ok(None),
        Err(e) if pod_control::is_not_found(&e) || pod_control::is_conflict(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
