//! The pod status the kubelet reports: phase, conditions, container
//! statuses, addresses — computed from the spec, what the runtime reports
//! and the agent's own knowledge (why a container waits, probe results),
//! as the kubelet's generateAPIPodStatus and getPhase.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::runtime_view::{PodRuntime, RuntimeContainer};

/// Why a container that isn't running waits, as the pod worker last saw it
/// (ErrImagePull, CrashLoopBackOff, CreateContainerConfigError, ...).
pub type Waiting = HashMap<String, (String, String)>;

pub struct Inputs<'a> {
    pub pod: &'a Pod,
    pub runtime: &'a PodRuntime,
    pub waiting: &'a Waiting,
    pub pod_ip: Option<&'a str>,
    pub host_ip: &'a str,
    /// Readiness of a running container (probe results; true without a probe).
    pub ready: &'a (dyn Fn(&str, &str) -> bool + Sync),
    /// Whether a running container has passed its startup probe.
    pub started: &'a (dyn Fn(&str, &str) -> bool + Sync),
    /// The pod is being torn down (deleted or terminal): nothing waits to start.
    pub terminating: bool,
}

fn time_from_nanos(ns: i64) -> Option<Time> {
    if ns <= 0 {
        return None;
    }
    jiff::Timestamp::from_nanosecond(ns as i128)
        .ok()
        // Truncated as Go's RFC 3339 times are (rounding could put a
        // startedAt after its finishedAt).
        .map(|t| {
            let trunc = jiff::TimestampRound::new()
                .smallest(jiff::Unit::Second)
                .mode(jiff::RoundMode::Trunc);
            Time(t.round(trunc).unwrap_or(t))
        })
}

fn container_id(c: &RuntimeContainer) -> String {
    format!("containerd://{}", c.id)
}

fn terminated(c: &RuntimeContainer) -> ContainerStateTerminated {
    let s = c.status.as_ref();
    let exit_code = s.map(|s| s.exit_code).unwrap_or(0);
    let reason = s
        .map(|s| s.reason.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| {
            if exit_code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            }
        });
    ContainerStateTerminated {
        container_id: Some(container_id(c)),
        exit_code,
        reason: Some(reason),
        message: s.map(|s| s.message.clone()).filter(|m| !m.is_empty()),
        started_at: s.and_then(|s| time_from_nanos(s.started_at)),
        finished_at: s.and_then(|s| time_from_nanos(s.finished_at)),
        signal: None,
    }
}

fn image_id(c: &RuntimeContainer) -> String {
    c.status
        .as_ref()
        .map(|s| s.image_ref.clone())
        .unwrap_or_default()
}

/// The status of one spec container.
pub fn container_status(inp: &Inputs, spec: &Container, pod_uid: &str) -> ContainerStatus {
    let latest = inp.runtime.latest(&spec.name);
    let waiting_reason = inp.waiting.get(&spec.name);
    // The latest instance's attempt, also while it waits to be replaced
    // (as the kubelet reports it).
    let restart_count = latest.map(|c| c.restart_count).unwrap_or(0) as i32;
    let mut status = ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: String::new(),
        restart_count,
        ready: false,
        started: Some(false),
        ..Default::default()
    };
    let waiting = |reason: &str, message: Option<String>| ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message,
        }),
        ..Default::default()
    };
    match latest {
        Some(c) if c.running => {
            let started_at = c
                .status
                .as_ref()
                .and_then(|s| time_from_nanos(s.started_at));
            status.state = Some(ContainerState {
                running: Some(ContainerStateRunning { started_at }),
                ..Default::default()
            });
            status.container_id = Some(container_id(c));
            status.image_id = image_id(c);
            let started = (inp.started)(pod_uid, &spec.name);
            status.started = Some(started);
            status.ready = started && (inp.ready)(pod_uid, &spec.name);
            if let Some(prev) = inp.runtime.previous(&spec.name) {
                status.last_state = Some(ContainerState {
                    terminated: Some(terminated(prev)),
                    ..Default::default()
                });
            }
        }
        Some(c) => {
            status.image_id = image_id(c);
            // A dead container that will be restarted shows as waiting, with
            // the dead one as its last state; otherwise as terminated.
            match waiting_reason.filter(|_| !inp.terminating) {
                Some((reason, message)) => {
                    status.state = Some(waiting(reason, Some(message.clone())));
                    status.last_state = Some(ContainerState {
                        terminated: Some(terminated(c)),
                        ..Default::default()
                    });
                }
                None => {
                    status.container_id = Some(container_id(c));
                    status.state = Some(ContainerState {
                        terminated: Some(terminated(c)),
                        ..Default::default()
                    });
                    if let Some(prev) = inp.runtime.previous(&spec.name) {
                        status.last_state = Some(ContainerState {
                            terminated: Some(terminated(prev)),
                            ..Default::default()
                        });
                    }
                }
            }
        }
        None => {
            let (reason, message) = waiting_reason.cloned().unwrap_or_else(|| {
                (
                    default_waiting_reason(inp.pod, &spec.name).into(),
                    String::new(),
                )
            });
            status.state = Some(waiting(&reason, Some(message).filter(|m| !m.is_empty())));
        }
    }
    if status.last_state.is_none() {
        status.last_state = Some(ContainerState::default());
    }
    status
}

/// The waiting reason of a container not created yet: as upstream,
/// `PodInitializing` for the app containers of a pod with init containers,
/// `ContainerCreating` otherwise.
pub fn default_waiting_reason(pod: &Pod, container: &str) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return "ContainerCreating";
    };
    let inits = spec.init_containers.as_deref().unwrap_or_default();
    if !inits.is_empty() && !inits.iter().any(|c| c.name == container) {
        "PodInitializing"
    } else {
        "ContainerCreating"
    }
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The pod phase from its container statuses (getPhase).
pub fn phase(pod: &Pod, init: &[ContainerStatus], app: &[ContainerStatus]) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = restart_policy(pod);
    let mut pending_init = false;
    for (c, s) in spec.init_containers.iter().flatten().zip(init) {
        let state = s.state.clone().unwrap_or_default();
        if is_sidecar(c) {
            if state.running.is_none() || !s.started.unwrap_or(false) {
                pending_init = true;
            }
            continue;
        }
        match &state.terminated {
            Some(t) if t.exit_code == 0 => {}
            Some(_) if policy == "Never" => return "Failed".into(),
            _ => {
                if state.waiting.is_some() {
                    let failed_before = s
                        .last_state
                        .as_ref()
                        .and_then(|l| l.terminated.as_ref())
                        .is_some_and(|t| t.exit_code != 0);
                    if failed_before && policy == "Never" {
                        return "Failed".into();
                    }
                }
                pending_init = true;
            }
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in app {
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state.waiting.is_some() {
            if s.last_state
                .as_ref()
                .and_then(|l| l.terminated.as_ref())
                .is_some()
            {
                stopped += 1;
            } else {
                waiting += 1;
            }
        }
    }
    if pending_init || waiting > 0 {
        return "Pending".into();
    }
    if running > 0 {
        return "Running".into();
    }
    if stopped > 0 {
        if policy == "Always" {
            return "Running".into();
        }
        if stopped == succeeded {
            return "Succeeded".into();
        }
        if policy == "OnFailure" {
            return "Running".into();
        }
        return "Failed".into();
    }
    "Pending".into()
}

/// The whole status the kubelet owns. Conditions it doesn't own (PodScheduled,
/// DisruptionTarget, readiness gates) are carried over from `previous`.
pub fn pod_status(inp: &Inputs) -> PodStatus {
    let pod = inp.pod;
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let previous = pod.status.clone().unwrap_or_default();
    let init: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| container_status(inp, c, uid))
        .collect();
    let app: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(inp, c, uid))
        .collect();
    let mut phase = phase(pod, &init, &app);
    // A terminal pod stays terminal.
    if matches!(previous.phase.as_deref(), Some("Succeeded" | "Failed")) {
        phase = previous.phase.clone().unwrap_or_default();
    }
    let now = Time(jiff::Timestamp::now());
    let condition = |type_: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        let since = previous
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        PodCondition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.map(String::from),
            message,
            last_transition_time: Some(since),
            last_probe_time: None,
            observed_generation: None,
        }
    };
    let sandbox_ready = inp.runtime.ready_sandbox().is_some() && inp.pod_ip.is_some()
        || (crate::sandbox::host_network(pod) && inp.runtime.ready_sandbox().is_some());
    let incomplete_init: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .zip(&init)
        .filter(|(c, s)| {
            let st = s.state.clone().unwrap_or_default();
            if is_sidecar(c) {
                !s.started.unwrap_or(false)
            } else {
                st.terminated.is_none_or(|t| t.exit_code != 0)
            }
        })
        .map(|(c, _)| c.name.as_str())
        .collect();
    let terminal = matches!(phase.as_str(), "Succeeded" | "Failed");
    let initialized = incomplete_init.is_empty() || terminal && phase == "Succeeded";
    let unready: Vec<&str> = spec
        .containers
        .iter()
        .zip(&app)
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .zip(&init)
                .filter(|(c, _)| is_sidecar(c)),
        )
        .filter(|(_, s)| !s.ready)
        .map(|(c, _)| c.name.as_str())
        .collect();
    let containers_ready = unready.is_empty();
    let (ready_reason, ready_message) = if terminal {
        (Some("PodCompleted"), None)
    } else if containers_ready {
        (None, None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let mut conditions = vec![
        condition("PodReadyToStartContainers", sandbox_ready, None, None),
        condition(
            "Initialized",
            initialized,
            (!initialized).then_some("ContainersNotInitialized"),
            (!initialized).then(|| {
                format!(
                    "containers with incomplete status: [{}]",
                    incomplete_init.join(" ")
                )
            }),
        ),
        condition(
            "Ready",
            containers_ready && !terminal,
            ready_reason,
            ready_message.clone(),
        ),
        condition(
            "ContainersReady",
            containers_ready && !terminal,
            ready_reason,
            ready_message,
        ),
    ];
    let owned = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
    ];
    for c in previous.conditions.iter().flatten() {
        if !owned.contains(&c.type_.as_str()) {
            conditions.push(c.clone());
        }
    }
    let order = |t: &str| match t {
        "PodReadyToStartContainers" => 0,
        "Initialized" => 1,
        "Ready" => 2,
        "ContainersReady" => 3,
        "PodScheduled" => 4,
        _ => 5,
    };
    conditions.sort_by_key(|c| order(&c.type_));
    let pod_ip = if crate::sandbox::host_network(pod) {
        Some(inp.host_ip.to_string())
    } else {
        inp.pod_ip.map(String::from)
    };
    PodStatus {
        phase: Some(phase),
        conditions: Some(conditions),
        host_ip: Some(inp.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: inp.host_ip.to_string(),
        }]),
        pod_ips: pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        pod_ip,
        start_time: previous.start_time.clone().or(Some(now)),
        qos_class: previous.qos_class.clone(),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(app),
        nominated_node_name: None,
        ..Default::default()
    }
}

/// The status without its clocks, to tell whether anything changed.
pub fn fingerprint(s: &PodStatus) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Some(cs) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in cs {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastTransitionTime");
                o.remove("lastProbeTime");
            }
        }
    }
    v
}

#[cfg(test)]
mod default_waiting_tests {
    use super::*;

    #[test]
    fn app_containers_of_pods_with_init_containers_wait_for_initialization() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "c"}]}
        }))
        .unwrap();
        assert_eq!(default_waiting_reason(&pod, "c"), "PodInitializing");
        assert_eq!(default_waiting_reason(&pod, "i"), "ContainerCreating");
        let plain: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}]}
        }))
        .unwrap();
        assert_eq!(default_waiting_reason(&plain, "c"), "ContainerCreating");
    }

    #[test]
    fn times_are_truncated_to_seconds() {
        let t = time_from_nanos(1_700_000_000_900_000_000).unwrap();
        assert_eq!(t.0.as_second(), 1_700_000_000);
    }
}
