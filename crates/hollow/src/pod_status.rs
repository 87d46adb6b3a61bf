//! What a hollow node does with a pod bound to it, and the pod status it
//! reports, decided from the observed pod alone (level-triggered: a pod
//! whose status already says what we would write is left alone, so a
//! restart or a re-list writes nothing).

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus,
    Pod, PodCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{json, Value};

/// The next thing to do for a pod bound to one of our nodes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Its status already is what we would report.
    Nothing,
    /// It finished (Succeeded/Failed): its address is free again.
    Release,
    /// Report it Running with ready containers.
    MarkRunning,
    /// It is being deleted: its "containers" stop at once, so finish the
    /// deletion (grace period 0, guarded by its uid) as the kubelet does
    /// once they have. A pod held by finalizers first gets a terminal phase,
    /// which is what the controller holding it waits for.
    Finalize { terminal_status: bool },
}

pub(crate) fn next_step(pod: &Pod) -> Step {
    let terminal = is_terminal(pod);
    if pod.metadata.deletion_timestamp.is_some() {
        let held = pod
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| !f.is_empty());
        return Step::Finalize {
            terminal_status: held && !terminal,
        };
    }
    if terminal {
        return Step::Release;
    }
    if reported_running(pod) {
        Step::Nothing
    } else {
        Step::MarkRunning
    }
}

pub(crate) fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

pub(crate) fn pod_ip(pod: &Pod) -> Option<Ipv4Addr> {
    pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()
}

fn conditions(pod: &Pod) -> &[PodCondition] {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
}

fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    conditions(pod).iter().find(|c| c.type_ == type_)
}

/// Running, with an address and every container reported, and a Ready
/// condition that matches the readiness gates.
fn reported_running(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    let containers = pod.spec.as_ref().map_or(0, |s| s.containers.len());
    let reported = status.container_statuses.as_ref().map_or(0, Vec::len);
    let ready = condition(pod, "Ready").is_some_and(|c| c.status == "True");
    phase(pod) == "Running"
        && status.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
        && reported == containers
        && ready == unmet_readiness_gate(pod).is_none()
}

/// The first readiness gate whose condition is not True, with upstream's
/// message for it.
fn unmet_readiness_gate(pod: &Pod) -> Option<String> {
    let gates = pod.spec.as_ref()?.readiness_gates.as_ref()?;
    gates
        .iter()
        .find_map(|g| match condition(pod, &g.condition_type) {
            None => Some(format!(
                "corresponding condition of pod readiness gate \"{}\" does not exist.",
                g.condition_type
            )),
            Some(c) if c.status != "True" => Some(format!(
                "the status of pod readiness gate \"{}\" is not \"True\", but {}",
                g.condition_type, c.status
            )),
            Some(_) => None,
        })
}

/// The conditions a hollow node owns.
const OWNED_CONDITIONS: [&str; 4] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
];

/// Ours (in kubectl's usual order) followed by everyone else's as they
/// were (PodScheduled, DisruptionTarget, readiness gates' conditions...).
/// A condition whose status does not change keeps its lastTransitionTime.
fn merge_conditions(
    pod: &Pod,
    ours: [(&str, bool, Option<&str>, Option<String>); 4],
    now: jiff::Timestamp,
) -> Vec<PodCondition> {
    let prev = conditions(pod);
    let mut out: Vec<PodCondition> = ours
        .into_iter()
        .map(|(type_, ok, reason, message)| {
            let status = if ok { "True" } else { "False" };
            let transition = prev
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            PodCondition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: reason.map(str::to_string),
                message,
                last_transition_time: Some(transition),
                ..Default::default()
            }
        })
        .collect();
    out.extend(
        prev.iter()
            .filter(|c| !OWNED_CONDITIONS.contains(&c.type_.as_str()))
            .cloned(),
    );
    out
}

fn container_id(pod: &Pod, c: &Container) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    format!("hollow://{uid}-{}", c.name)
}

/// When the container of that name was last reported started, if it was.
fn started_at(prev: Option<&Vec<ContainerStatus>>, name: &str) -> Option<Time> {
    let state = prev?.iter().find(|s| s.name == name)?.state.as_ref()?;
    state
        .running
        .as_ref()
        .and_then(|r| r.started_at.clone())
        .or_else(|| state.terminated.as_ref().and_then(|t| t.started_at.clone()))
}

fn running_container(
    pod: &Pod,
    c: &Container,
    prev: Option<&Vec<ContainerStatus>>,
    now: jiff::Timestamp,
) -> ContainerStatus {
    let image = c.image.clone().unwrap_or_default();
    ContainerStatus {
        name: c.name.clone(),
        image_id: format!("hollow://{image}"),
        image,
        container_id: Some(container_id(pod, c)),
        ready: true,
        started: Some(true),
        restart_count: 0,
        state: Some(ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(started_at(prev, &c.name).unwrap_or(Time(now))),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn terminated_container(
    pod: &Pod,
    c: &Container,
    prev: Option<&Vec<ContainerStatus>>,
    exit_code: i32,
    reason: &str,
    ready: bool,
    now: jiff::Timestamp,
) -> ContainerStatus {
    let image = c.image.clone().unwrap_or_default();
    let id = container_id(pod, c);
    ContainerStatus {
        name: c.name.clone(),
        image_id: format!("hollow://{image}"),
        image,
        container_id: Some(id.clone()),
        ready,
        started: Some(false),
        restart_count: 0,
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                container_id: Some(id),
                exit_code,
                reason: Some(reason.to_string()),
                started_at: Some(started_at(prev, &c.name).unwrap_or(Time(now))),
                finished_at: Some(Time(now)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Sidecars (init containers with `restartPolicy: Always`) keep running.
fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The merge patch that reports `pod` Running on a node at `host_ip` with
/// address `pod_ip`. It carries the resourceVersion it was computed from,
/// so a concurrent change (a condition someone else added) makes it fail
/// with a conflict instead of being overwritten.
pub(crate) fn running_status(
    pod: &Pod,
    host_ip: Ipv4Addr,
    pod_ip: Ipv4Addr,
    now: jiff::Timestamp,
) -> Value {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let gate = unmet_readiness_gate(pod);
    let conditions = merge_conditions(
        pod,
        [
            ("PodReadyToStartContainers", true, None, None),
            ("Initialized", true, None, None),
            (
                "Ready",
                gate.is_none(),
                gate.is_some().then_some("ReadinessGatesNotReady"),
                gate,
            ),
            ("ContainersReady", true, None, None),
        ],
        now,
    );
    let mut conditions = conditions;
    // A pod bound without the scheduler (spec.nodeName set at creation)
    // has none; the kubelet reports it scheduled.
    if !conditions.iter().any(|c| c.type_ == "PodScheduled") {
        conditions.push(PodCondition {
            type_: "PodScheduled".into(),
            status: "True".into(),
            last_transition_time: Some(Time(now)),
            ..Default::default()
        });
    }
    let containers: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| running_container(pod, c, status.container_statuses.as_ref(), now))
        .collect();
    let mut patch = json!({
        "metadata": { "resourceVersion": pod.metadata.resource_version },
        "status": {
            "phase": "Running",
            "hostIP": host_ip.to_string(),
            "hostIPs": [{ "ip": host_ip.to_string() }],
            "podIP": pod_ip.to_string(),
            "podIPs": [{ "ip": pod_ip.to_string() }],
            "startTime": status.start_time.unwrap_or(Time(now)),
            "conditions": conditions,
            "containerStatuses": containers,
        }
    });
    if let Some(init) = spec.init_containers.as_ref().filter(|i| !i.is_empty()) {
        let prev = status.init_container_statuses.as_ref();
        let statuses: Vec<ContainerStatus> = init
            .iter()
            .map(|c| {
                if is_sidecar(c) {
                    running_container(pod, c, prev, now)
                } else {
                    terminated_container(pod, c, prev, 0, "Completed", true, now)
                }
            })
            .collect();
        patch["status"]["initContainerStatuses"] = json!(statuses);
    }
    patch
}

/// The merge patch that reports `pod` stopped for its deletion: Failed, as
/// containers killed on deletion are (exit code 137), not ready.
pub(crate) fn terminal_status(pod: &Pod, now: jiff::Timestamp) -> Value {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let conditions = merge_conditions(
        pod,
        [
            ("PodReadyToStartContainers", false, None, None),
            ("Initialized", true, None, None),
            ("Ready", false, Some("PodCompleted"), None),
            ("ContainersReady", false, Some("PodCompleted"), None),
        ],
        now,
    );
    let containers: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| {
            terminated_container(
                pod,
                c,
                status.container_statuses.as_ref(),
                137,
                "Error",
                false,
                now,
            )
        })
        .collect();
    json!({
        "metadata": { "resourceVersion": pod.metadata.resource_version },
        "status": {
            "phase": "Failed",
            "conditions": conditions,
            "containerStatuses": containers,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: Value) -> Pod {
        let mut base = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "42"},
            "spec": {"nodeName": "hollow-node-1", "containers": [{"name": "app", "image": "busybox"}]},
            "status": {
                "phase": "Pending",
                "qosClass": "BestEffort",
                "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}]
            }
        });
        merge(&mut base, v);
        serde_json::from_value(base).unwrap()
    }

    fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn now() -> jiff::Timestamp {
        "2025-01-01T00:01:00Z".parse().unwrap()
    }

    /// The pod as it reads after the patch was applied.
    fn patched(p: &Pod, patch: Value) -> Pod {
        let mut v = serde_json::to_value(p).unwrap();
        merge(&mut v, patch);
        serde_json::from_value(v).unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn steps() {
        let cases = [
            (json!({}), Step::MarkRunning),
            (json!({"status": {"phase": "Succeeded"}}), Step::Release),
            (json!({"status": {"phase": "Failed"}}), Step::Release),
            (
                json!({"metadata": {"deletionTimestamp": "2025-01-01T00:00:30Z"}}),
                Step::Finalize {
                    terminal_status: false,
                },
            ),
            (
                json!({"metadata": {"deletionTimestamp": "2025-01-01T00:00:30Z", "finalizers": ["example.com/keep"]}}),
                Step::Finalize {
                    terminal_status: true,
                },
            ),
            (
                json!({"metadata": {"deletionTimestamp": "2025-01-01T00:00:30Z", "finalizers": ["x/y"]}, "status": {"phase": "Failed"}}),
                Step::Finalize {
                    terminal_status: false,
                },
            ),
            (
                json!({"status": {"phase": "Running", "podIP": "10.244.1.2"}}),
                Step::MarkRunning,
            ),
        ];
        for (v, want) in cases {
            assert_eq!(next_step(&pod(v.clone())), want, "{v}");
        }
    }

    #[test]
    fn running_status_is_complete_and_keeps_others_fields() {
        let p = pod(json!({"status": {"nominatedNodeName": "other"}}));
        let patch = running_status(&p, ip("10.128.0.2"), ip("10.244.1.2"), now());
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        let s = &patch["status"];
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["hostIP"], "10.128.0.2");
        assert_eq!(s["hostIPs"], json!([{"ip": "10.128.0.2"}]));
        assert_eq!(s["podIP"], "10.244.1.2");
        assert_eq!(s["podIPs"], json!([{"ip": "10.244.1.2"}]));
        assert_eq!(s["startTime"], "2025-01-01T00:01:00Z");
        assert!(s.get("qosClass").is_none() && s.get("nominatedNodeName").is_none());
        assert!(s.get("initContainerStatuses").is_none());
        let types: Vec<_> = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            types,
            [
                ("PodReadyToStartContainers", "True"),
                ("Initialized", "True"),
                ("Ready", "True"),
                ("ContainersReady", "True"),
                ("PodScheduled", "True"),
            ]
        );
        assert_eq!(
            s["conditions"][4]["lastTransitionTime"],
            "2025-01-01T00:00:00Z"
        );
        let c = &s["containerStatuses"][0];
        assert_eq!(c["name"], "app");
        assert_eq!(c["image"], "busybox");
        assert_eq!(c["imageID"], "hollow://busybox");
        assert_eq!(c["containerID"], "hollow://u-1-app");
        assert_eq!(
            (
                c["ready"].clone(),
                c["started"].clone(),
                c["restartCount"].clone()
            ),
            (json!(true), json!(true), json!(0))
        );
        assert_eq!(c["state"]["running"]["startedAt"], "2025-01-01T00:01:00Z");

        let after = patched(&p, patch);
        assert_eq!(
            next_step(&after),
            Step::Nothing,
            "a second look writes nothing"
        );
        let unscheduled = pod(json!({"status": {"conditions": []}}));
        let patch = running_status(&unscheduled, ip("10.128.0.2"), ip("10.244.1.2"), now());
        assert_eq!(patch["status"]["conditions"][4]["type"], "PodScheduled");
        assert_eq!(patch["status"]["conditions"][4]["status"], "True");
        assert_eq!(
            after.status.unwrap().qos_class.as_deref(),
            Some("BestEffort")
        );
    }

    #[test]
    fn init_containers_completed_and_sidecars_running() {
        let p = pod(json!({"spec": {"initContainers": [
            {"name": "setup", "image": "busybox"},
            {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}
        ]}}));
        let patch = running_status(&p, ip("10.128.0.2"), ip("10.244.1.2"), now());
        let init = &patch["status"]["initContainerStatuses"];
        assert_eq!(init[0]["state"]["terminated"]["reason"], "Completed");
        assert_eq!(init[0]["state"]["terminated"]["exitCode"], 0);
        assert_eq!(init[0]["ready"], true);
        assert_eq!(init[0]["started"], false);
        assert_eq!(
            init[1]["state"]["running"]["startedAt"],
            "2025-01-01T00:01:00Z"
        );
        assert_eq!(init[1]["started"], true);
    }

    #[test]
    fn readiness_gates_hold_ready_until_true() {
        let p = pod(json!({"spec": {"readinessGates": [{"conditionType": "example.com/lb"}]}}));
        let patch = running_status(&p, ip("10.128.0.2"), ip("10.244.1.2"), now());
        let ready = &patch["status"]["conditions"][2];
        assert_eq!(
            (ready["type"].as_str(), ready["status"].as_str()),
            (Some("Ready"), Some("False"))
        );
        assert_eq!(ready["reason"], "ReadinessGatesNotReady");
        assert_eq!(
            ready["message"],
            "corresponding condition of pod readiness gate \"example.com/lb\" does not exist."
        );
        let after = patched(&p, patch);
        assert_eq!(next_step(&after), Step::Nothing);

        // The gate's owner sets its condition: Ready becomes True.
        let mut conds = serde_json::to_value(&after.status.as_ref().unwrap().conditions).unwrap();
        conds
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "example.com/lb", "status": "True"}));
        let gated = patched(&after, json!({"status": {"conditions": conds}}));
        assert_eq!(next_step(&gated), Step::MarkRunning);
        let patch = running_status(&gated, ip("10.128.0.2"), ip("10.244.1.2"), now());
        assert_eq!(patch["status"]["conditions"][2]["status"], "True");
        assert!(patch["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "example.com/lb"));
    }

    #[test]
    fn a_rewrite_keeps_start_times() {
        let p = pod(json!({"status": {
            "phase": "Running",
            "startTime": "2024-12-31T00:00:00Z",
            "containerStatuses": [{"name": "app", "image": "busybox", "imageID": "", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": "2024-12-31T00:00:05Z"}}}]
        }}));
        let patch = running_status(&p, ip("10.128.0.2"), ip("10.244.1.2"), now());
        assert_eq!(patch["status"]["startTime"], "2024-12-31T00:00:00Z");
        assert_eq!(
            patch["status"]["containerStatuses"][0]["state"]["running"]["startedAt"],
            "2024-12-31T00:00:05Z"
        );
    }

    #[test]
    fn terminal_status_for_held_pods() {
        let p = pod(json!({"status": {"phase": "Running", "podIP": "10.244.1.2"}}));
        let patch = terminal_status(&p, now());
        assert_eq!(patch["status"]["phase"], "Failed");
        let c = &patch["status"]["containerStatuses"][0];
        assert_eq!(c["state"]["terminated"]["exitCode"], 137);
        assert_eq!(c["ready"], false);
        let ready = patch["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()
            .clone();
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("PodCompleted"))
        );
        assert!(is_terminal(&patched(&p, patch)));
    }
}
