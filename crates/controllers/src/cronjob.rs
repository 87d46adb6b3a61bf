//! CronJob controller (`pkg/controller/cronjob`, v2): creates a Job for each
//! scheduled time, honouring `concurrencyPolicy`, `startingDeadlineSeconds`,
//! `suspend`, `timeZone` and the history limits.
//!
//! Jobs are named `<cronjob>-<scheduled minutes since the epoch>`, so a
//! retried or restarted sync never starts the same run twice.

pub mod schedule;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use client::events::{EventType, Recorder};

use crate::informer::{key_of, Informer, CONTROLLER_INDEX};
use crate::pod_control::{self, controller_of};
use crate::workqueue::WorkQueue;
use crate::Context;
use schedule::Schedule;

pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// More missed start times than this and the controller only warns.
const MAX_MISSED: usize = 100;

struct Controller {
    client: kube::Client,
    cronjobs: Informer<CronJob>,
    jobs: Informer<Job>,
    recorder: Recorder,
}

/// Runs the CronJob controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        cronjobs: ctx.informers.get(),
        jobs: ctx.informers.get(),
        recorder: ctx.recorder("cronjob-controller"),
    });
    let queue = WorkQueue::new("cronjob");
    {
        let q = queue.clone();
        c.cronjobs
            .on_change(move |ch| q.add(key_of(ch.object().as_ref())));
    }
    {
        let q = queue.clone();
        c.jobs.on_change(move |ch| {
            let job = ch.object();
            if let Some(r) = controller_of(&job.metadata).filter(|r| r.kind == "CronJob") {
                q.add(format!(
                    "{}/{}",
                    job.namespace().unwrap_or_default(),
                    r.name
                ));
            }
        });
    }
    c.cronjobs.wait_synced().await;
    c.jobs.wait_synced().await;
    queue
        .run(2, shutdown, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    Ok(())
}

/// The zone schedules are read in: `spec.timeZone`, else the local one.
fn zone(cj: &CronJob) -> anyhow::Result<TimeZone> {
    match cj.spec.as_ref().and_then(|s| s.time_zone.as_deref()) {
        Some(name) => Ok(TimeZone::get(name)?),
        None => Ok(TimeZone::system()),
    }
}

/// The job name for a scheduled time (`getJobName`).
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

impl Controller {
    async fn sync(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let Some(mut cj) = self.cronjobs.get(key) else {
            return Ok(None);
        };
        let jobs = self.jobs.by_index(
            CONTROLLER_INDEX,
            cj.metadata.uid.as_deref().unwrap_or_default(),
        );
        if jobs.iter().any(|j| {
            !crate::job::is_finished(j) && !listed_active(&cj.status.clone().unwrap_or_default(), j)
        }) {
            // The cache may not show our last status write yet: read the
            // CronJob again before calling any of its jobs unexpected.
            let api: Api<CronJob> =
                Api::namespaced(self.client.clone(), &cj.namespace().unwrap_or_default());
            match api.get(&cj.name_any()).await {
                Ok(fresh) => cj = Arc::new(fresh),
                Err(e) if pod_control::is_not_found(&e) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        let ns = cj.namespace().unwrap_or_default();
        let spec = cj.spec.clone().unwrap_or_default();
        let owner = client::events::reference(cj.as_ref());
        let mut status = cj.status.clone().unwrap_or_default();

        // Active jobs and the last success, from the jobs themselves.
        let mut active: Vec<ObjectReference> = Vec::new();
        for job in &jobs {
            if let Some(done) = crate::job::finished_at(job) {
                if listed_active(&status, job) {
                    let cond = if job_succeeded(job) {
                        "Complete"
                    } else {
                        "Failed"
                    };
                    self.recorder.record(
                        owner.clone(),
                        EventType::Normal,
                        "SawCompletedJob",
                        "Sync",
                        format!("Saw completed job: {}, condition: {cond}", job.name_any()),
                    );
                }
                if job_succeeded(job)
                    && status
                        .last_successful_time
                        .as_ref()
                        .is_none_or(|t| t.0 < done)
                {
                    status.last_successful_time = Some(Time(done));
                }
            } else if listed_active(&status, job) {
                active.push(client::events::reference(job.as_ref()));
            } else {
                // Not created by a sync (e.g. `kubectl create job --from`):
                // upstream leaves such jobs out of `active`, so they never
                // block a scheduled run.
                self.recorder.record(
                    owner.clone(),
                    EventType::Warning,
                    "UnexpectedJob",
                    "Sync",
                    format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        job.name_any()
                    ),
                );
            }
        }
        active.sort_by(|a, b| a.name.cmp(&b.name));
        status.active = (!active.is_empty()).then_some(active.clone());
        self.clean_history(&cj, &jobs).await?;

        let tz = zone(&cj)?;
        let schedule = match Schedule::parse(&spec.schedule) {
            Ok(s) => s,
            Err(e) => {
                self.recorder.record(
                    owner,
                    EventType::Warning,
                    "UnparseableSchedule",
                    "Sync",
                    format!("unparseable schedule: {:?} : {e}", spec.schedule),
                );
                self.write_status(&cj, &status).await?;
                return Ok(None);
            }
        };
        let now = Timestamp::now();
        if spec.suspend == Some(true) {
            self.write_status(&cj, &status).await?;
            return Ok(None);
        }
        let since = status
            .last_schedule_time
            .as_ref()
            .map(|t| t.0)
            .or(cj.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .unwrap_or(now);
        let since = match spec.starting_deadline_seconds {
            Some(d) => since.max(now - jiff::SignedDuration::from_secs(d)),
            None => since,
        };
        let (scheduled, missed) = schedule.most_recent(since, now, &tz, MAX_MISSED + 1);
        let next = schedule.next_after(now, &tz);
        let requeue = next.map(|n| {
            Duration::try_from(n.duration_since(now)).unwrap_or_default()
                + Duration::from_millis(100)
        });
        let Some(scheduled) = scheduled else {
            self.write_status(&cj, &status).await?;
            return Ok(requeue);
        };
        if missed > MAX_MISSED {
            self.recorder.record(owner.clone(), EventType::Warning, "TooManyMissedTimes", "Sync",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into());
        }
        let name = job_name(&cj.name_any(), scheduled);
        if jobs.iter().any(|j| j.name_any() == name) {
            self.write_status(&cj, &status).await?;
            return Ok(requeue);
        }
        match concurrency(spec.concurrency_policy.as_deref(), !active.is_empty()) {
            Concurrency::Skip => {
                self.recorder.record(owner, EventType::Normal, "JobAlreadyActive", "Sync",
                    "Not starting job because prior execution is running and concurrency policy is Forbid".into());
                self.write_status(&cj, &status).await?;
                return Ok(requeue);
            }
            Concurrency::ReplaceActive => {
                let api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
                for r in &active {
                    let job_name = r.name.clone().unwrap_or_default();
                    match api.delete(&job_name, &DeleteParams::background()).await {
                        Ok(_) => self.recorder.record(
                            owner.clone(),
                            EventType::Normal,
                            "SuccessfulDelete",
                            "Sync",
                            format!("Deleted job {job_name}"),
                        ),
                        Err(e) if pod_control::is_not_found(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                active.clear();
            }
            Concurrency::Start => {}
        }
        let job = job_from_template(&cj, scheduled);
        let api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        match api.create(&PostParams::default(), &job).await {
            Ok(created) => {
                self.recorder.record(
                    owner,
                    EventType::Normal,
                    "SuccessfulCreate",
                    "Sync",
                    format!("Created job {name}"),
                );
                active.push(client::events::reference(&created));
            }
            Err(e) if pod_control::is_conflict(&e) => {}
            Err(e) => {
                self.recorder.record(
                    owner,
                    EventType::Warning,
                    "FailedCreate",
                    "Sync",
                    format!("Error creating job: {}", pod_control::api_message(&e)),
                );
                return Err(e.into());
            }
        }
        status.active = (!active.is_empty()).then_some(active);
        status.last_schedule_time = Some(Time(scheduled));
        self.write_status(&cj, &status).await?;
        Ok(requeue)
    }

    /// Deletes the oldest finished jobs beyond the history limits.
    async fn clean_history(&self, cj: &CronJob, jobs: &[Arc<Job>]) -> anyhow::Result<()> {
        let spec = cj.spec.clone().unwrap_or_default();
        let api: Api<Job> =
            Api::namespaced(self.client.clone(), &cj.namespace().unwrap_or_default());
        for (succeeded, limit) in [
            (true, spec.successful_jobs_history_limit.unwrap_or(3)),
            (false, spec.failed_jobs_history_limit.unwrap_or(1)),
        ] {
            let mut finished: Vec<&Arc<Job>> = jobs
                .iter()
                .filter(|j| crate::job::is_finished(j) && job_succeeded(j) == succeeded)
                .filter(|j| j.metadata.deletion_timestamp.is_none())
                .collect();
            finished.sort_by_key(|j| {
                j.status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref().map(|t| t.0))
            });
            let excess = finished.len().saturating_sub(limit.max(0) as usize);
            for j in finished.into_iter().take(excess) {
                match api.delete(&j.name_any(), &DeleteParams::background()).await {
                    Ok(_) => self.recorder.record(
                        client::events::reference(cj),
                        EventType::Normal,
                        "SuccessfulDelete",
                        "Sync",
                        format!("Deleted job {}", j.name_any()),
                    ),
                    Err(e) if pod_control::is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    async fn write_status(&self, cj: &CronJob, status: &CronJobStatus) -> anyhow::Result<()> {
        if cj.status.as_ref() == Some(status) {
            return Ok(());
        }
        let api: Api<CronJob> =
            Api::namespaced(self.client.clone(), &cj.namespace().unwrap_or_default());
        let mut patch = json!({"status": status});
        if status.active.is_none() {
            patch["status"]["active"] = serde_json::Value::Null;
        }
        api.patch_status(
            &cj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        Ok(())
    }
}

/// What `concurrencyPolicy` says about a due run.
#[derive(Debug, PartialEq, Eq)]
enum Concurrency {
    Start,
    /// Forbid with a run still active: skip it (and retry it later).
    Skip,
    /// Replace: delete the active runs first.
    ReplaceActive,
}

fn concurrency(policy: Option<&str>, has_active: bool) -> Concurrency {
    match policy {
        Some("Forbid") if has_active => Concurrency::Skip,
        Some("Replace") if has_active => Concurrency::ReplaceActive,
        _ => Concurrency::Start,
    }
}

fn listed_active(status: &CronJobStatus, job: &Job) -> bool {
    status
        .active
        .iter()
        .flatten()
        .any(|r| r.uid == job.metadata.uid)
}

fn job_succeeded(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        })
}

/// The Job for one scheduled run (`getJobFromTemplate2`).
fn job_from_template(cj: &CronJob, scheduled: Timestamp) -> Job {
    let spec = cj.spec.clone().unwrap_or_default();
    let template = spec.job_template;
    let meta = template.metadata.unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        scheduled.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&cj.name_any(), scheduled)),
            namespace: cj.namespace(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![pod_control::controller_ref(cj)]),
            ..Default::default()
        },
        spec: Some(template.spec.unwrap_or_default()),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_policy_decides_a_due_run() {
        assert_eq!(concurrency(Some("Forbid"), true), Concurrency::Skip);
        assert_eq!(concurrency(Some("Forbid"), false), Concurrency::Start);
        assert_eq!(
            concurrency(Some("Replace"), true),
            Concurrency::ReplaceActive
        );
        assert_eq!(concurrency(Some("Replace"), false), Concurrency::Start);
        assert_eq!(concurrency(Some("Allow"), true), Concurrency::Start);
        assert_eq!(concurrency(None, true), Concurrency::Start);
    }

    #[test]
    fn job_names_count_minutes_since_the_epoch() {
        let t: Timestamp = "2024-01-01T00:05:00Z".parse().unwrap();
        assert_eq!(job_name("tick", t), "tick-28401125");
    }
}
