//! Job controller (`pkg/controller/job`): runs pods until `completions`
//! succeed (at most `parallelism` at once), or the Job fails by
//! `backoffLimit` or `activeDeadlineSeconds`.
//!
//! Pods carry the `batch.kubernetes.io/job-tracking` finalizer so none is
//! lost from the counts: a finished pod is first recorded in
//! `status.uncountedTerminatedPods`, then its finalizer is removed, then it
//! moves into `succeeded`/`failed` — each step idempotent, so a restart
//! between them counts every pod exactly once. Indexed Jobs give each pod a
//! completion index (annotation, label, hostname, `JOB_COMPLETION_INDEX`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use client::events::{EventType, Recorder};

use crate::expectations::Expectations;
use crate::informer::{key_of, Change, Informer, CONTROLLER_INDEX};
use crate::pod_control::{self, controller_of, PodControl};
use crate::workqueue::WorkQueue;
use crate::Context;

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// Pod re-creation backoff after failures: 10 s doubling, at most 6 min.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);
const WORKERS: usize = 5;

struct Controller {
    client: kube::Client,
    jobs: Informer<Job>,
    pods: Informer<Pod>,
    expectations: Expectations,
    pod_control: PodControl,
    recorder: Recorder,
    /// Pods whose finalizer this controller removed after counting them:
    /// the cache may still show the finalizer, and they must not count twice
    /// (upstream's finalizer expectations). Dropped when the pod goes.
    counted: Mutex<HashSet<String>>,
}

/// Runs the Job controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let recorder = ctx.recorder("job-controller");
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        jobs: ctx.informers.get(),
        pods: ctx.informers.pods(),
        expectations: Expectations::new(),
        pod_control: PodControl::new(ctx.client.clone(), recorder.clone()),
        recorder,
        counted: Mutex::new(HashSet::new()),
    });
    let queue = WorkQueue::new("job");
    // Pods whose Job is gone still carry the tracking finalizer: a queue of
    // their own frees them, or they would stay Terminating forever.
    let orphans = WorkQueue::new("job-orphan-pods");
    {
        let (q, oq, c2) = (queue.clone(), orphans.clone(), c.clone());
        c.jobs.on_change(move |ch| {
            let key = key_of(ch.object().as_ref());
            if let Change::Deleted(job) = ch {
                c2.expectations.forget(&key);
                let uid = job.metadata.uid.as_deref().unwrap_or_default();
                for p in c2.pods.by_index(CONTROLLER_INDEX, uid) {
                    oq.add(key_of(p.as_ref()));
                }
            }
            q.add(key);
        });
    }
    {
        let (q, oq, c2) = (queue.clone(), orphans.clone(), c.clone());
        c.pods.on_change(move |ch| {
            let pod = ch.object();
            if !matches!(ch, Change::Deleted(_))
                && has_tracking_finalizer(pod)
                && c2.owning_job(pod).is_none()
            {
                oq.add(key_of(pod.as_ref()));
            }
            let Some(r) = controller_of(&pod.metadata).filter(|r| r.kind == "Job") else {
                return;
            };
            let key = format!("{}/{}", pod.namespace().unwrap_or_default(), r.name);
            if matches!(ch, Change::Applied { old: None, .. }) {
                c2.expectations.creation_observed(&key);
            }
            if matches!(ch, Change::Deleted(_)) || !has_tracking_finalizer(pod) {
                if let Some(uid) = pod.metadata.uid.as_deref() {
                    c2.counted_lock().remove(uid);
                }
            }
            if matches!(ch, Change::Deleted(_)) || pod.metadata.deletion_timestamp.is_some() {
                c2.expectations
                    .deletion_observed(&key, &key_of(pod.as_ref()));
            }
            q.add(key);
        });
    }
    c.jobs.wait_synced().await;
    c.pods.wait_synced().await;
    let c2 = c.clone();
    tokio::join!(
        queue.run(WORKERS, shutdown.clone(), move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        }),
        orphans.run(1, shutdown, move |key| {
            let c = c2.clone();
            async move { c.release_orphan(&key).await }
        }),
    );
    Ok(())
}

/// Whether the Job has a True `Complete` or `Failed` condition.
pub fn is_finished(job: &Job) -> bool {
    finished_at(job).is_some()
}

/// When the Job finished: its Complete/Failed condition's transition time.
pub fn finished_at(job: &Job) -> Option<Timestamp> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| {
            c.last_transition_time
                .as_ref()
                .map(|t| t.0)
                .unwrap_or_else(Timestamp::now)
        })
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.finalizers().iter().any(|f| f == TRACKING_FINALIZER)
}

fn index_of(pod: &Pod) -> Option<i32> {
    pod.annotations().get(COMPLETION_INDEX)?.parse().ok()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `completedIndexes` ("1,3-5") as a set.
pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    out.insert(a);
                }
            }
        }
    }
    out
}

/// A set of indexes in `completedIndexes` form, ranges collapsed.
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// How many pods should run (`wantActive`) for a NonIndexed Job.
pub fn want_active(parallelism: i32, completions: Option<i32>, succeeded: i32) -> i32 {
    match completions {
        Some(c) => (c - succeeded).clamp(0, parallelism),
        // Work-queue Jobs: once one pod succeeded, no new pods start.
        None if succeeded > 0 => 0,
        None => parallelism,
    }
}

/// The re-creation delay after `failures` failures.
pub fn backoff(failures: i32) -> Duration {
    if failures <= 0 {
        return Duration::ZERO;
    }
    BACKOFF_BASE
        .saturating_mul(1 << (failures - 1).min(10))
        .min(BACKOFF_MAX)
}

impl Controller {
    fn counted_lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.counted.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Job in the cache that controls `pod` (same uid as its ownerRef).
    fn owning_job(&self, pod: &Pod) -> Option<Arc<Job>> {
        let r = controller_of(&pod.metadata).filter(|r| r.kind == "Job")?;
        let key = format!("{}/{}", pod.namespace().unwrap_or_default(), r.name);
        self.jobs
            .get(&key)
            .filter(|j| j.metadata.uid.as_deref() == Some(r.uid.as_str()))
    }

    /// Removes the tracking finalizer from a pod whose Job no longer exists.
    async fn release_orphan(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let Some(pod) = self.pods.get(key) else {
            return Ok(None);
        };
        if has_tracking_finalizer(&pod) && self.owning_job(&pod).is_none() {
            let api: Api<Pod> =
                Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
            remove_tracking_finalizer(&api, &pod).await?;
        }
        Ok(None)
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let Some(mut job) = self.jobs.get(key) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let ns = job.namespace().unwrap_or_default();
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let spec = job.spec.clone().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self.pods.by_index(CONTROLLER_INDEX, &uid);
        let mut status = job.status.clone().unwrap_or_default();
        let now = Timestamp::now();

        // 1. Count finished pods: record, drop finalizers, then move the counts.
        let uncounted = status
            .uncounted_terminated_pods
            .get_or_insert_with(Default::default);
        let mut newly = false;
        let already = self.counted_lock().clone();
        for p in pods.iter().filter(|p| has_tracking_finalizer(p)) {
            let puid = p.metadata.uid.clone().unwrap_or_default();
            if already.contains(&puid) {
                continue;
            }
            let list = match phase(p) {
                Some("Succeeded") => uncounted.succeeded.get_or_insert_with(Vec::new),
                Some("Failed") => uncounted.failed.get_or_insert_with(Vec::new),
                // Deleted before finishing: counts as failed, as upstream.
                _ if p.metadata.deletion_timestamp.is_some() => {
                    uncounted.failed.get_or_insert_with(Vec::new)
                }
                _ => continue,
            };
            if !list.contains(&puid) {
                list.push(puid);
                newly = true;
            }
        }
        if newly {
            self.write_status(&mut job, &status).await?;
        }
        let counting: BTreeSet<String> = uncounted_uids(&status).into_iter().collect();
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        for p in pods.iter().filter(|p| has_tracking_finalizer(p)) {
            let puid = p.metadata.uid.as_deref().unwrap_or_default();
            if counting.contains(puid) && !already.contains(puid) {
                remove_tracking_finalizer(&pods_api, p).await?;
                self.counted_lock().insert(puid.to_string());
            }
        }
        let mut completed = parse_indexes(status.completed_indexes.as_deref().unwrap_or_default());
        if !counting.is_empty() {
            let by_uid: HashMap<&str, &Arc<Pod>> = pods
                .iter()
                .map(|p| (p.metadata.uid.as_deref().unwrap_or_default(), p))
                .collect();
            let u = status.uncounted_terminated_pods.take().unwrap_or_default();
            let succeeded = u.succeeded.unwrap_or_default();
            let failed = u.failed.unwrap_or_default();
            for s in &succeeded {
                if let Some(i) = by_uid.get(s.as_str()).and_then(|p| index_of(p)) {
                    completed.insert(i);
                }
            }
            status.succeeded = Some(status.succeeded.unwrap_or(0) + succeeded.len() as i32);
            status.failed = Some(status.failed.unwrap_or(0) + failed.len() as i32);
            // Empty lists, not absent ones: a merge patch must clear them.
            status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
                succeeded: Some(Vec::new()),
                failed: Some(Vec::new()),
            });
            if spec.completion_mode.as_deref() == Some("Indexed") {
                status.completed_indexes = Some(format_indexes(&completed));
            }
        }
        let succeeded = status.succeeded.unwrap_or(0);
        let failed = status.failed.unwrap_or(0);
        let active: Vec<&Arc<Pod>> = pods
            .iter()
            .filter(|p| pod_control::is_pod_active(p))
            .collect();

        if is_finished(&job) {
            status.active = Some(0);
            status.ready = Some(0);
            if !same_status(&status, job.status.as_ref()) {
                self.write_status(&mut job, &status).await?;
            }
            return Ok(None);
        }

        // 2. Decide whether the Job finished.
        let parallelism = spec.parallelism.unwrap_or(1);
        let indexed = spec.completion_mode.as_deref() == Some("Indexed");
        let suspended = spec.suspend == Some(true);
        if self.update_suspended_condition(&job, &mut status, suspended, now) {
            // Resumed: activeDeadlineSeconds counts from now.
            status.start_time = Some(Time(now));
        }
        let start = status.start_time.as_ref().map(|t| t.0);
        let mut finish: Option<(&str, &str, String)> = None;
        if failed > spec.backoff_limit.unwrap_or(6) {
            finish = Some((
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit".into(),
            ));
        } else if let (Some(deadline), Some(start), false) =
            (spec.active_deadline_seconds, start, suspended)
        {
            if now.duration_since(start).as_secs() >= deadline {
                finish = Some((
                    "Failed",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline".into(),
                ));
            }
        }
        if finish.is_none() {
            let done = match (indexed, spec.completions) {
                (true, Some(c)) => (0..c).all(|i| completed.contains(&i)),
                (false, Some(c)) => succeeded >= c,
                (_, None) => succeeded > 0 && active.is_empty(),
            };
            if done {
                finish = Some((
                    "Complete",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods".into(),
                ));
            }
        }
        if let Some((type_, reason, message)) = finish {
            for p in &active {
                self.pod_control
                    .delete(&ns, &p.name_any(), client::events::reference(job.as_ref()))
                    .await?;
            }
            let interim = if type_ == "Complete" {
                "SuccessCriteriaMet"
            } else {
                "FailureTarget"
            };
            let t = Time(now);
            let conds = status.conditions.get_or_insert_with(Vec::new);
            for ty in [interim, type_] {
                conds.push(JobCondition {
                    type_: ty.into(),
                    status: "True".into(),
                    reason: Some(reason.into()),
                    message: Some(message.clone()),
                    last_probe_time: Some(t.clone()),
                    last_transition_time: Some(t.clone()),
                });
            }
            if type_ == "Complete" {
                status.completion_time = Some(t);
            }
            status.active = Some(0);
            status.ready = Some(0);
            self.write_status(&mut job, &status).await?;
            let (kind, event_reason, text) = if type_ == "Complete" {
                (EventType::Normal, "Completed", "Job completed".to_string())
            } else {
                (EventType::Warning, reason, message)
            };
            self.recorder.record(
                client::events::reference(job.as_ref()),
                kind,
                event_reason,
                "Sync",
                text,
            );
            return Ok(None);
        }

        // 3. Run the right number of pods.
        let start = start.filter(|_| !suspended);
        let mut requeue = spec.active_deadline_seconds.zip(start).map(|(d, s)| {
            let left = d - now.duration_since(s).as_secs();
            Duration::from_secs(left.max(0) as u64 + 1)
        });
        if suspended {
            for p in &active {
                self.pod_control
                    .delete(&ns, &p.name_any(), client::events::reference(job.as_ref()))
                    .await?;
            }
        } else if self.expectations.satisfied(key) {
            if status.start_time.is_none() {
                status.start_time = Some(Time(now));
            }
            let wait = backoff(failed).saturating_sub(since_last_failure(&pods, now));
            if failed > 0 && !wait.is_zero() {
                requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
            } else {
                self.manage(
                    &job,
                    &spec.template,
                    indexed,
                    parallelism,
                    spec.completions,
                    succeeded,
                    &completed,
                    &active,
                )
                .await?;
            }
        }
        status.active = Some(active.len() as i32);
        status.ready = Some(active.iter().filter(|p| is_ready(p)).count() as i32);
        if !same_status(&status, job.status.as_ref()) {
            self.write_status(&mut job, &status).await?;
        }
        Ok(requeue)
    }

    /// Keeps the `Suspended` condition in step with `spec.suspend`, with
    /// upstream's events; true when the Job was just resumed.
    fn update_suspended_condition(
        &self,
        job: &Job,
        status: &mut JobStatus,
        suspended: bool,
        now: Timestamp,
    ) -> bool {
        let current = status
            .conditions
            .iter()
            .flatten()
            .position(|c| c.type_ == "Suspended");
        let was = current.is_some_and(|i| status.conditions.as_ref().unwrap()[i].status == "True");
        if was == suspended || (!suspended && current.is_none()) {
            return false;
        }
        let conds = status.conditions.get_or_insert_with(Vec::new);
        let (state, reason, message, event) = if suspended {
            ("True", "JobSuspended", "Job suspended", "Suspended")
        } else {
            ("False", "JobResumed", "Job resumed", "Resumed")
        };
        let cond = JobCondition {
            type_: "Suspended".into(),
            status: state.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_probe_time: Some(Time(now)),
            last_transition_time: Some(Time(now)),
        };
        match current {
            Some(i) => conds[i] = cond,
            None => conds.push(cond),
        }
        self.recorder.record(
            client::events::reference(job),
            EventType::Normal,
            event,
            "Sync",
            message.into(),
        );
        !suspended
    }

    /// Creates missing pods (or deletes extra ones).
    #[allow(clippy::too_many_arguments)]
    async fn manage(
        &self,
        job: &Arc<Job>,
        template: &PodTemplateSpec,
        indexed: bool,
        parallelism: i32,
        completions: Option<i32>,
        succeeded: i32,
        completed: &BTreeSet<i32>,
        active: &[&Arc<Pod>],
    ) -> anyhow::Result<()> {
        let ns = job.namespace().unwrap_or_default();
        let key = key_of(job.as_ref());
        let owner = client::events::reference(job.as_ref());
        let owner_ref = pod_control::controller_ref(job.as_ref());
        // Which pods to add: indexes for Indexed Jobs, a count otherwise.
        let to_create: Vec<Option<i32>> = if indexed {
            let running: BTreeSet<i32> = active.iter().filter_map(|p| index_of(p)).collect();
            let room = (parallelism - active.len() as i32).max(0) as usize;
            (0..completions.unwrap_or(0))
                .filter(|i| !completed.contains(i) && !running.contains(i))
                .take(room)
                .map(Some)
                .collect()
        } else {
            let want = want_active(parallelism, completions, succeeded);
            let have = active.len() as i32;
            if have > want {
                let mut extra: Vec<&&Arc<Pod>> = active.iter().collect();
                extra.sort_by_key(|p| {
                    std::cmp::Reverse(p.metadata.creation_timestamp.as_ref().map(|t| t.0))
                });
                let victims: Vec<String> = extra
                    .iter()
                    .take((have - want) as usize)
                    .map(|p| key_of(p.as_ref()))
                    .collect();
                self.expectations.expect_deletions(&key, victims.clone());
                for v in victims {
                    let (_, name) = crate::informer::split_key(&v);
                    self.pod_control.delete(&ns, name, owner.clone()).await?;
                }
                return Ok(());
            }
            vec![None; (want - have).max(0) as usize]
        };
        if to_create.is_empty() {
            return Ok(());
        }
        self.expectations.expect_creations(&key, to_create.len());
        let mut result = Ok(());
        let mut attempted = 0;
        for index in &to_create {
            attempted += 1;
            let t = pod_template(job, template, *index);
            if let Err(e) = self
                .pod_control
                .create(&ns, &t, owner.clone(), owner_ref.clone(), None)
                .await
            {
                result = Err(e);
                break;
            }
        }
        if result.is_err() {
            for _ in (attempted - 1)..to_create.len() {
                self.expectations.creation_observed(&key);
            }
        }
        Ok(result?)
    }

    /// Writes `status`; `job` becomes the written object, so a later write
    /// in the same sync carries the new resourceVersion.
    async fn write_status(&self, job: &mut Arc<Job>, status: &JobStatus) -> anyhow::Result<()> {
        let api: Api<Job> =
            Api::namespaced(self.client.clone(), &job.namespace().unwrap_or_default());
        let mut patch = json!({"metadata": {"resourceVersion": job.metadata.resource_version}, "status": status});
        // A merge patch leaves absent fields alone: empty lists must be sent
        // as [] or the counted pods would stay uncounted on the server.
        if status.uncounted_terminated_pods.is_some() {
            let u = status.uncounted_terminated_pods.clone().unwrap_or_default();
            patch["status"]["uncountedTerminatedPods"] = json!({
                "succeeded": u.succeeded.unwrap_or_default(),
                "failed": u.failed.unwrap_or_default(),
            });
        }
        let written = api
            .patch_status(
                &job.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        *job = Arc::new(written);
        Ok(())
    }
}

/// Whether writing `status` would change nothing (an empty
/// `uncountedTerminatedPods` reads back in several shapes).
fn same_status(status: &JobStatus, current: Option<&JobStatus>) -> bool {
    let normal = |s: &JobStatus| {
        let mut s = s.clone();
        if uncounted_uids(&s).is_empty() {
            s.uncounted_terminated_pods = None;
        }
        s
    };
    normal(status) == normal(&current.cloned().unwrap_or_default())
}

fn uncounted_uids(status: &JobStatus) -> Vec<String> {
    let Some(u) = status.uncounted_terminated_pods.as_ref() else {
        return Vec::new();
    };
    u.succeeded
        .iter()
        .flatten()
        .chain(u.failed.iter().flatten())
        .cloned()
        .collect()
}

/// How long ago the last pod failed (long ago if none did).
fn since_last_failure(pods: &[Arc<Pod>], now: Timestamp) -> Duration {
    pods.iter()
        .filter(|p| phase(p) == Some("Failed"))
        .filter_map(|p| {
            p.status
                .as_ref()?
                .container_statuses
                .as_ref()?
                .iter()
                .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
                .map(|t| t.0)
                .max()
        })
        .max()
        .map(|t| Duration::try_from(now.duration_since(t)).unwrap_or_default())
        .unwrap_or(Duration::MAX)
}

async fn remove_tracking_finalizer(api: &Api<Pod>, pod: &Pod) -> anyhow::Result<()> {
    let rest: Vec<&String> = pod
        .finalizers()
        .iter()
        .filter(|f| *f != TRACKING_FINALIZER)
        .collect();
    let patch =
        json!({"metadata": {"finalizers": rest, "resourceVersion": pod.metadata.resource_version}});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if pod_control::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The Job's pod template with the tracking finalizer and, for Indexed
/// Jobs, the completion index.
fn pod_template(job: &Job, template: &PodTemplateSpec, index: Option<i32>) -> PodTemplateSpec {
    let mut t = template.clone();
    let meta = t.metadata.get_or_insert_with(Default::default);
    meta.finalizers
        .get_or_insert_with(Vec::new)
        .push(TRACKING_FINALIZER.into());
    if let Some(i) = index {
        meta.annotations
            .get_or_insert_with(Default::default)
            .insert(COMPLETION_INDEX.into(), i.to_string());
        meta.labels
            .get_or_insert_with(Default::default)
            .insert(COMPLETION_INDEX.into(), i.to_string());
        if let Some(spec) = t.spec.as_mut() {
            spec.hostname = Some(format!("{}-{i}", job.name_any()));
            for c in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                c.env.get_or_insert_with(Vec::new).push(EnvVar {
                    name: "JOB_COMPLETION_INDEX".into(),
                    value: Some(i.to_string()),
                    value_from: None,
                });
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_round_trip_with_ranges() {
        let set = parse_indexes("0,2-4,7");
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), [0, 2, 3, 4, 7]);
        assert_eq!(format_indexes(&set), "0,2-4,7");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }

    #[test]
    fn active_pods_wanted() {
        assert_eq!(want_active(2, Some(5), 0), 2);
        assert_eq!(want_active(2, Some(5), 4), 1);
        assert_eq!(want_active(2, Some(5), 5), 0);
        assert_eq!(want_active(3, None, 0), 3);
        assert_eq!(want_active(3, None, 1), 0);
    }

    #[test]
    fn backoff_doubles_to_six_minutes() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(20), Duration::from_secs(360));
    }
}
