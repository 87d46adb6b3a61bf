//! One worker per pod: it converges the runtime on the pod's spec (sandbox,
//! init containers in order, containers with their restart policy and
//! back-off), tears the pod down when it is deleted or finished, and reports
//! its status — as the kubelet's pod workers and SyncPod/SyncTerminatingPod.
//! Workers are level-triggered: each sync starts from what the runtime
//! reports, so an agent restart picks up exactly where it was.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::events::EventType;
use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};

use crate::container::{self, MIN_GRACE};
use crate::cri::api;
use crate::runtime_view::{self, PodRuntime, RuntimeContainer};
use crate::status::{self, Waiting};
use crate::Kubelet;

const RESYNC: Duration = Duration::from_secs(10);
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What a worker remembers between syncs (everything else is re-read).
#[derive(Default)]
pub struct WorkerState {
    pub waiting: Waiting,
    /// Crash-loop back-off per container name: (delay, not before).
    backoff: HashMap<String, (Duration, Instant)>,
    sandbox_backoff: Option<(Duration, Instant)>,
    /// The sandbox id and its IP, read once per sandbox.
    pod_ip: Option<(String, String)>,
    last_status: Option<serde_json::Value>,
    /// Containers the worker has told the prober about.
    probed: HashSet<String>,
}

pub type States = Mutex<HashMap<String, WorkerState>>;

/// Why a container could not start: its waiting reason and message, and
/// what the `Failed` event says (`Error: <event>`), if one is recorded.
struct StartError {
    reason: &'static str,
    message: String,
    event: Option<String>,
}

impl StartError {
    fn new(reason: &'static str, message: String, event: Option<String>) -> StartError {
        StartError {
            reason,
            message,
            event,
        }
    }
}

pub(crate) fn grace_of(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30);
    Duration::from_secs(secs.max(0) as u64)
}

fn phase_of(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn full_name(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

impl Kubelet {
    fn event(&self, pod: &Pod, kind: EventType, reason: &str, message: String) {
        self.recorder.record(
            client::events::reference(pod),
            kind,
            reason,
            reason,
            message,
        );
    }

    fn with_state<R>(&self, uid: &str, f: impl FnOnce(&mut WorkerState) -> R) -> R {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        f(states.entry(uid.to_string()).or_default())
    }

    /// One sync of pod `uid`. Returns when to sync again at the latest, or
    /// None when the worker is done (the pod is gone and cleaned up).
    pub async fn sync_pod(self: &Arc<Self>, uid: &str) -> Option<Duration> {
        let pod = self.desired(uid);
        let view = match runtime_view::observe(&self.rt, uid).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(uid, error = %e, "listing the pod's containers failed");
                return Some(Duration::from_secs(1));
            }
        };
        self.set_observed(uid, &view);
        let Some(pod) = pod else {
            // Gone from the API: stop and remove everything it had.
            let grace = self.last_grace(uid).unwrap_or(MIN_GRACE);
            self.kill_pod(None, &view, grace).await;
            self.remove_pod_resources(uid).await;
            return None;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            self.kill_pod(Some(&pod), &view, grace_of(&pod)).await;
            let view = runtime_view::observe(&self.rt, uid)
                .await
                .unwrap_or_default();
            self.set_observed(uid, &view);
            self.report(&pod, &view, true).await;
            // The pod's deletion is finished by its kubelet, once nothing runs.
            let api: Api<Pod> = Api::namespaced(
                self.client.clone(),
                pod.metadata.namespace.as_deref().unwrap_or("default"),
            );
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.to_string()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            if let Err(e) = api
                .delete(pod.metadata.name.as_deref().unwrap_or_default(), &dp)
                .await
            {
                if !matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 409) {
                    tracing::warn!(uid, error = %e, "finishing the pod's deletion failed");
                }
            }
            return Some(Duration::from_secs(2));
        }
        if matches!(phase_of(&pod), "Succeeded" | "Failed") {
            let mut view = view;
            if view.running().next().is_some() || view.ready_sandbox().is_some() {
                self.kill_pod(Some(&pod), &view, grace_of(&pod)).await;
                view = runtime_view::observe(&self.rt, uid)
                    .await
                    .unwrap_or_default();
                self.set_observed(uid, &view);
            }
            // Still reported: a termination message whose log lines the
            // runtime wrote after the exit was seen arrives here.
            self.report(&pod, &view, true).await;
            return Some(RESYNC);
        }
        let next = self.sync_running(&pod, view).await;
        let view = runtime_view::observe(&self.rt, uid)
            .await
            .unwrap_or_default();
        self.set_observed(uid, &view);
        let terminal = self.report(&pod, &view, false).await;
        if terminal {
            // Finished (restartPolicy Never/OnFailure): nothing more runs.
            self.kill_pod(Some(&pod), &view, grace_of(&pod)).await;
            return Some(Duration::from_millis(100));
        }
        Some(next.min(RESYNC))
    }

    async fn sync_running(self: &Arc<Self>, pod: &Pod, view: PodRuntime) -> Duration {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut view = view;
        if let Err(e) = self.volumes.setup(pod).await {
            self.event(pod, EventType::Warning, "FailedMount", e.message.clone());
            return Duration::from_secs(2);
        }
        // The sandbox: made anew when it is missing or died (with every
        // container in it: they lost their network and IPC namespace).
        if view.ready_sandbox().is_none() {
            if let Some((_, not_before)) = self.with_state(&uid, |s| s.sandbox_backoff) {
                if Instant::now() < not_before {
                    return not_before - Instant::now();
                }
            }
            if !view.sandboxes.is_empty() {
                if restart_policy(pod) == "Never" && view.all_containers().next().is_some() {
                    // Nothing may run again; the pod's phase follows from its containers.
                    self.kill_pod(Some(pod), &view, grace_of(pod)).await;
                    return RESYNC;
                }
                self.event(
                    pod,
                    EventType::Normal,
                    "SandboxChanged",
                    "Pod sandbox changed, it will be killed and re-created.".into(),
                );
                self.kill_pod(Some(pod), &view, grace_of(pod)).await;
            }
            let attempt = view.sandboxes.first().map(|s| s.attempt + 1).unwrap_or(0);
            if let Err(e) = self.run_sandbox(pod, attempt).await {
                self.event(
                    pod,
                    EventType::Warning,
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {}", e.message()),
                );
                let delay = self
                    .with_state(&uid, |s| {
                        s.sandbox_backoff.map(|(d, _)| (d * 2).min(BACKOFF_MAX))
                    })
                    .unwrap_or(Duration::from_secs(1));
                self.with_state(&uid, |s| {
                    s.sandbox_backoff = Some((delay, Instant::now() + delay))
                });
                return delay;
            }
            self.with_state(&uid, |s| s.sandbox_backoff = None);
            view = runtime_view::observe(&self.rt, &uid)
                .await
                .unwrap_or_default();
        }
        let Some(sandbox) = view.ready_sandbox().cloned() else {
            return Duration::from_secs(1);
        };
        let pod_ip = self.pod_ip(&uid, &sandbox.id).await;
        let spec = pod.spec.clone().unwrap_or_default();
        let mut next = RESYNC;

        // Init containers, in order, each to completion; sidecars (restartPolicy
        // Always) only need to have started.
        for c in spec.init_containers.iter().flatten() {
            let sidecar = c.restart_policy.as_deref() == Some("Always");
            match view.latest(&c.name) {
                Some(rc) if rc.running => {
                    self.ensure_probed(pod, c, rc, &pod_ip);
                    if sidecar {
                        if self.check_liveness(pod, c, rc, &pod_ip).await {
                            return Duration::from_millis(100);
                        }
                        if self.probes.started(&uid, &c.name).unwrap_or(true) {
                            continue;
                        }
                    }
                    return next;
                }
                Some(rc) if !sidecar && rc.exit_code() == 0 => continue,
                Some(rc) => {
                    self.forget_probed(&uid, c, rc);
                    if !sidecar && restart_policy(pod) == "Never" {
                        // The pod has failed; its phase says so.
                        return next;
                    }
                    if let Some(wait) = self
                        .start_with_backoff(pod, c, Some(rc), &sandbox.id, &pod_ip)
                        .await
                    {
                        next = next.min(wait);
                    }
                    return next;
                }
                None => {
                    let _ = self.start(pod, c, 0, &sandbox.id, &pod_ip).await;
                    return Duration::from_millis(200);
                }
            }
        }
        for c in &spec.containers {
            match view.latest(&c.name) {
                Some(rc) if rc.running => {
                    self.ensure_probed(pod, c, rc, &pod_ip);
                    if self.check_liveness(pod, c, rc, &pod_ip).await {
                        next = Duration::from_millis(100);
                    }
                }
                Some(rc) => {
                    self.forget_probed(&uid, c, rc);
                    let restart = match restart_policy(pod) {
                        "Always" => true,
                        "OnFailure" => rc.exit_code() != 0,
                        _ => false,
                    };
                    if restart {
                        if let Some(wait) = self
                            .start_with_backoff(pod, c, Some(rc), &sandbox.id, &pod_ip)
                            .await
                        {
                            next = next.min(wait);
                        }
                    }
                }
                None => {
                    if self.start(pod, c, 0, &sandbox.id, &pod_ip).await.is_err() {
                        next = next.min(Duration::from_secs(2));
                    }
                }
            }
        }
        self.remove_dead_containers(&view).await;
        next
    }

    /// Restarts a dead container unless it is backing off; returns how long
    /// until the back-off ends when it is.
    async fn start_with_backoff(
        self: &Arc<Self>,
        pod: &Pod,
        c: &Container,
        dead: Option<&RuntimeContainer>,
        sandbox_id: &str,
        pod_ip: &str,
    ) -> Option<Duration> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let now = Instant::now();
        // A container that ran long enough (twice the longest back-off) starts afresh.
        let ran_long = dead
            .and_then(|d| d.status.as_ref())
            .is_some_and(|s| s.finished_at - s.started_at > 2 * BACKOFF_MAX.as_nanos() as i64);
        if ran_long {
            self.with_state(&uid, |s| s.backoff.remove(&c.name));
        }
        if let Some((delay, not_before)) =
            self.with_state(&uid, |s| s.backoff.get(&c.name).copied())
        {
            if now < not_before {
                self.with_state(&uid, |s| {
                    s.waiting.insert(
                        c.name.clone(),
                        (
                            "CrashLoopBackOff".into(),
                            format!(
                                "back-off {} restarting failed container={} pod={}",
                                crate::images::go_duration(delay),
                                c.name,
                                full_name(pod)
                            ),
                        ),
                    )
                });
                self.event(
                    pod,
                    EventType::Warning,
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {} in pod {}",
                        c.name,
                        full_name(pod)
                    ),
                );
                return Some(not_before - now);
            }
        }
        let restart_count = dead.map(|d| d.restart_count + 1).unwrap_or(0);
        let _ = self.start(pod, c, restart_count, sandbox_id, pod_ip).await;
        let delay = self
            .with_state(&uid, |s| {
                s.backoff
                    .get(&c.name)
                    .map(|(d, _)| (*d * 2).min(BACKOFF_MAX))
            })
            .unwrap_or(BACKOFF_START);
        self.with_state(&uid, |s| {
            s.backoff
                .insert(c.name.clone(), (delay, Instant::now() + delay))
        });
        None
    }

    async fn pull_secrets(&self, pod: &Pod) -> Vec<Secret> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let mut out = Vec::new();
        for r in pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.as_ref())
            .into_iter()
            .flatten()
        {
            if r.name.is_empty() {
                continue;
            }
            if let Ok(Some(s)) = api.get_opt(&r.name).await {
                out.push(s);
            }
        }
        out
    }

    /// Pulls, creates and starts one container; a failure is recorded as the
    /// container's waiting reason and a `Failed` event (`Error: ...`).
    async fn start(
        self: &Arc<Self>,
        pod: &Pod,
        c: &Container,
        restart_count: u32,
        sandbox_id: &str,
        pod_ip: &str,
    ) -> Result<(), ()> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        match self
            .try_start(pod, c, restart_count, sandbox_id, pod_ip)
            .await
        {
            Ok(()) => {
                self.with_state(&uid, |s| s.waiting.remove(&c.name));
                Ok(())
            }
            Err(StartError {
                reason,
                message,
                event,
            }) => {
                if let Some(event) = event {
                    self.event(pod, EventType::Warning, "Failed", format!("Error: {event}"));
                }
                self.with_state(&uid, |s| {
                    s.waiting
                        .insert(c.name.clone(), (reason.to_string(), message))
                });
                Err(())
            }
        }
    }

    async fn try_start(
        self: &Arc<Self>,
        pod: &Pod,
        c: &Container,
        restart_count: u32,
        sandbox_id: &str,
        pod_ip: &str,
    ) -> Result<(), StartError> {
        let secrets = self.pull_secrets(pod).await;
        let image = self
            .images
            .ensure_image(pod, c, &secrets)
            .await
            .map_err(|e| StartError::new(e.reason, e.message, Some(e.reason.to_string())))?;
        let config_error =
            |m: String| StartError::new("CreateContainerConfigError", m.clone(), Some(m));
        let envs = self
            .container_env(pod, c, pod_ip)
            .await
            .map_err(config_error)?;
        let ips: Vec<String> = (!pod_ip.is_empty())
            .then(|| pod_ip.to_string())
            .into_iter()
            .collect();
        let mounts = self
            .volumes
            .mounts(pod, c, &ips, &envs)
            .map_err(config_error)?;
        let config = container::config(
            pod,
            c,
            container::Inputs {
                image: &image,
                restart_count,
                envs,
                mounts,
                node_memory_bytes: self.machine.memory_bytes,
            },
        );
        let runtime_error = |reason: &'static str| {
            move |e: tonic::Status| {
                let m = e.message().to_string();
                StartError::new(reason, m.clone(), Some(m))
            }
        };
        let id = self
            .rt
            .runtime
            .clone()
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                config: Some(config),
                sandbox_config: Some(self.sandbox_config(pod, 0)),
            })
            .await
            .map_err(runtime_error("CreateContainerError"))?
            .into_inner()
            .container_id;
        self.event(
            pod,
            EventType::Normal,
            "Created",
            format!("Created container: {}", c.name),
        );
        self.rt
            .runtime
            .clone()
            .start_container(api::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .map_err(runtime_error("RunContainerError"))?;
        self.event(
            pod,
            EventType::Normal,
            "Started",
            format!("Started container {}", c.name),
        );
        if let Some(post_start) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let grace = grace_of(pod);
            if let Err(e) = container::run_hook(&self.rt, &id, pod_ip, post_start, grace).await {
                self.event(
                    pod,
                    EventType::Warning,
                    "FailedPostStartHook",
                    format!("PostStartHook failed: {e}"),
                );
                let _ = container::kill(&self.rt, &id, Some(c), pod_ip, grace).await;
                return Err(StartError::new("PostStartHookError", e, None));
            }
        }
        Ok(())
    }

    fn ensure_probed(&self, pod: &Pod, c: &Container, rc: &RuntimeContainer, pod_ip: &str) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let fresh = self.with_state(&uid, |s| s.probed.insert(rc.id.clone()));
        if fresh {
            self.probes
                .container_started(pod, c, &rc.id, pod_ip, Instant::now());
        }
    }

    fn forget_probed(&self, uid: &str, c: &Container, rc: &RuntimeContainer) {
        if self.with_state(uid, |s| s.probed.remove(&rc.id)) {
            self.probes.container_stopped(uid, &c.name);
        }
    }

    /// Kills a container whose liveness or startup probe failed; true if it did.
    async fn check_liveness(
        &self,
        pod: &Pod,
        c: &Container,
        rc: &RuntimeContainer,
        pod_ip: &str,
    ) -> bool {
        let failed = self
            .liveness_failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&rc.id);
        let Some(kind) = failed else { return false };
        self.event(
            pod,
            EventType::Normal,
            "Killing",
            format!(
                "Container {} failed {kind} probe, will be restarted",
                c.name
            ),
        );
        let _ = container::kill(&self.rt, &rc.id, Some(c), pod_ip, grace_of(pod)).await;
        true
    }

    /// Stops every running container (preStop, grace) and the sandbox.
    pub(crate) async fn kill_pod(&self, pod: Option<&Pod>, view: &PodRuntime, grace: Duration) {
        let pod_ip = pod
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        let spec = pod.and_then(|p| p.spec.clone()).unwrap_or_default();
        let mut kills = Vec::new();
        for rc in view.running() {
            let c = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| c.name == rc.name)
                .cloned();
            if let Some(pod) = pod {
                self.event(
                    pod,
                    EventType::Normal,
                    "Killing",
                    format!("Stopping container {}", rc.name),
                );
            }
            let rt = self.rt.clone();
            let id = rc.id.clone();
            let ip = pod_ip.clone();
            kills.push(async move { container::kill(&rt, &id, c.as_ref(), &ip, grace).await });
        }
        for r in futures::future::join_all(kills).await {
            if let Err(e) = r {
                tracing::warn!(error = %e, "stopping a container failed");
            }
        }
        for s in view.sandboxes.iter().filter(|s| s.ready) {
            if let Err(e) = self
                .rt
                .runtime
                .clone()
                .stop_pod_sandbox(api::StopPodSandboxRequest {
                    pod_sandbox_id: s.id.clone(),
                })
                .await
            {
                tracing::warn!(error = %e, "stopping a sandbox failed");
            }
        }
        if let Some(uid) = pod.and_then(|p| p.metadata.uid.as_deref()) {
            self.probes.pod_removed(uid);
            self.with_state(uid, |s| s.probed.clear());
        }
    }

    /// Keeps the newest two containers of each name (the current one and
    /// the one `--previous` shows) and removes older ones.
    async fn remove_dead_containers(&self, view: &PodRuntime) {
        for list in view.containers.values() {
            for c in list.iter().skip(2).filter(|c| !c.running) {
                let _ = self
                    .rt
                    .runtime
                    .clone()
                    .remove_container(api::RemoveContainerRequest {
                        container_id: c.id.clone(),
                    })
                    .await;
            }
        }
    }

    /// After the pod is gone from the API: containers, sandboxes (network
    /// namespace and IP lease with them), volumes, cgroups and logs.
    async fn remove_pod_resources(&self, uid: &str) {
        let view = runtime_view::observe(&self.rt, uid)
            .await
            .unwrap_or_default();
        for c in view.all_containers() {
            let _ = self
                .rt
                .runtime
                .clone()
                .remove_container(api::RemoveContainerRequest {
                    container_id: c.id.clone(),
                })
                .await;
        }
        for s in &view.sandboxes {
            let mut rt = self.rt.runtime.clone();
            let _ = rt
                .stop_pod_sandbox(api::StopPodSandboxRequest {
                    pod_sandbox_id: s.id.clone(),
                })
                .await;
            if let Err(e) = rt
                .remove_pod_sandbox(api::RemovePodSandboxRequest {
                    pod_sandbox_id: s.id.clone(),
                })
                .await
            {
                tracing::warn!(uid, error = %e, "removing a sandbox failed");
            }
        }
        if let Err(e) = self.volumes.cleanup(uid).await {
            tracing::warn!(uid, error = %e, "cleaning up the pod's volumes failed");
        }
        crate::qos::remove_pod_cgroups(&self.config.cgroup_root, uid);
        if let Some(dir) = self.log_dir_of(uid) {
            let _ = std::fs::remove_dir_all(dir);
        }
        self.probes.pod_removed(uid);
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
        self.forget(uid);
    }

    async fn run_sandbox(&self, pod: &Pod, attempt: u32) -> Result<String, tonic::Status> {
        let config = self.sandbox_config(pod, attempt);
        std::fs::create_dir_all(&config.log_directory).ok();
        let r = self
            .rt
            .runtime
            .clone()
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.runtime_class_name.clone())
                    .unwrap_or_default(),
            })
            .await?;
        Ok(r.into_inner().pod_sandbox_id)
    }

    async fn pod_ip(&self, uid: &str, sandbox_id: &str) -> String {
        if let Some((id, ip)) = self.with_state(uid, |s| s.pod_ip.clone()) {
            if id == sandbox_id {
                return ip;
            }
        }
        let ip = self
            .rt
            .runtime
            .clone()
            .pod_sandbox_status(api::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                verbose: false,
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().status)
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default();
        self.with_state(uid, |s| {
            s.pod_ip = Some((sandbox_id.to_string(), ip.clone()))
        });
        ip
    }

    /// Computes and writes the pod's status if it changed; true when the
    /// pod just reached a terminal phase.
    async fn report(&self, pod: &Pod, view: &PodRuntime, terminating: bool) -> bool {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let waiting = self.with_state(&uid, |s| s.waiting.clone());
        let pod_ip = self
            .with_state(&uid, |s| s.pod_ip.clone())
            .map(|(_, ip)| ip);
        let pod_ip = pod_ip.filter(|ip| !ip.is_empty() && view.ready_sandbox().is_some());
        let probes = &self.probes;
        let ready = |u: &str, c: &str| probes.readiness(u, c).unwrap_or(true);
        let started = |u: &str, c: &str| probes.started(u, c).unwrap_or(true);
        let inputs = status::Inputs {
            pod,
            runtime: view,
            waiting: &waiting,
            pod_ip: pod_ip.as_deref(),
            host_ip: &self.node_ip,
            ready: &ready,
            started: &started,
            terminating,
        };
        let mut new = status::pod_status(&inputs);
        termination_messages(pod, view, &mut new);
        // Keep the address a pod had while it is torn down.
        if new.pod_ip.is_none() {
            if let Some(old) = pod.status.as_ref() {
                new.pod_ip = old.pod_ip.clone();
                new.pod_ips = old.pod_ips.clone();
            }
        }
        let fingerprint = status::fingerprint(&new);
        if self.with_state(&uid, |s| s.last_status.as_ref() == Some(&fingerprint)) {
            return false;
        }
        let was_terminal = matches!(phase_of(pod), "Succeeded" | "Failed");
        let now_terminal = matches!(new.phase.as_deref(), Some("Succeeded" | "Failed"));
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let patch = serde_json::json!({ "status": new });
        match api
            .patch_status(
                pod.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                self.with_state(&uid, |s| s.last_status = Some(fingerprint));
            }
            Err(e) => tracing::debug!(uid, error = %e, "status update failed"),
        }
        now_terminal && !was_terminal
    }

    pub(crate) async fn container_env(
        &self,
        pod: &Pod,
        c: &Container,
        pod_ip: &str,
    ) -> Result<Vec<api::KeyValue>, String> {
        let mut pod = pod.clone();
        let status = pod.status.get_or_insert_with(Default::default);
        if !pod_ip.is_empty() {
            status.pod_ip = Some(pod_ip.to_string());
            status.pod_ips = Some(vec![k8s_openapi::api::core::v1::PodIP {
                ip: pod_ip.to_string(),
            }]);
        }
        status.host_ip = Some(self.node_ip.clone());
        status.host_ips = Some(vec![k8s_openapi::api::core::v1::HostIP {
            ip: self.node_ip.clone(),
        }]);
        let allocatable = self.machine.capacity(self.config.max_pods);
        let services = self.service_env(&pod).await?;
        crate::env::container_env(&pod, c, self.volumes.objects(), &allocatable, &services).await
    }

    /// The service variables of `pod`. As the kubelet, containers do not
    /// start before the Services were read once (their environment would
    /// be incomplete for good); a short wait covers the agent's start.
    async fn service_env(&self, pod: &Pod) -> Result<Vec<(String, String)>, String> {
        if tokio::time::timeout(Duration::from_secs(5), self.services.wait_synced())
            .await
            .is_err()
        {
            return Err(
                "services have not yet been read at least once, cannot construct envvars".into(),
            );
        }
        let links = pod
            .spec
            .as_ref()
            .and_then(|s| s.enable_service_links)
            .unwrap_or(true);
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mut services = self.services.list_namespace(ns);
        services.extend(self.services.get("default/kubernetes"));
        Ok(crate::env::service_env(&services, ns, links))
    }
}

/// Fills `terminated.message` of dead containers from their termination
/// log (or log tail with FallbackToLogsOnError), as the kubelet does when it
/// reads a container's status.
fn termination_messages(
    pod: &Pod,
    view: &PodRuntime,
    status: &mut k8s_openapi::api::core::v1::PodStatus,
) {
    let spec = pod.spec.clone().unwrap_or_default();
    for statuses in [
        status.container_statuses.as_mut(),
        status.init_container_statuses.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        for cs in statuses.iter_mut() {
            let Some(c) = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| c.name == cs.name)
            else {
                continue;
            };
            for state in [cs.state.as_mut(), cs.last_state.as_mut()]
                .into_iter()
                .flatten()
            {
                let Some(t) = state.terminated.as_mut() else {
                    continue;
                };
                if t.message.is_some() {
                    continue;
                }
                let id = t
                    .container_id
                    .as_deref()
                    .unwrap_or_default()
                    .trim_start_matches("containerd://");
                let Some(rc) = view.all_containers().find(|rc| rc.id == id) else {
                    continue;
                };
                let Some(cri) = rc.status.as_ref() else {
                    continue;
                };
                let log = cri.log_path.clone();
                let message =
                    crate::volumes::termination_message(c, &cri.mounts, t.exit_code, || {
                        log_tail(&log)
                    });
                if !message.is_empty() {
                    t.message = Some(message);
                }
            }
        }
    }
}

/// The decoded last lines of a CRI log file.
fn log_tail(path: &str) -> String {
    let Ok(data) = std::fs::read(path) else {
        return String::new();
    };
    let start = data.len().saturating_sub(16 * 1024);
    let mut out = Vec::new();
    for line in data[start..]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
    {
        if let Ok(l) = crate::logs::parse_line(line) {
            out.extend_from_slice(l.content);
            if !l.partial {
                out.push(b'\n');
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
