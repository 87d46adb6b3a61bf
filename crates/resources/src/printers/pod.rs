//! core/v1 Pod: READY, STATUS (the aggregate reason kubectl shows) and RESTARTS.

use super::*;

pub(super) const COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Ready",
        "string",
        "Ready containers out of all (non-init) containers.",
    ),
    col(
        "Status",
        "string",
        "Aggregate status of the pod's containers.",
    ),
    col(
        "Restarts",
        "string",
        "Container restarts, and how long ago the last one happened.",
    ),
    AGE,
    wide("IP", "string", "The pod's first IP address."),
    wide("Node", "string", "Node the pod is bound to."),
    wide(
        "Nominated Node",
        "string",
        "Node the scheduler nominated for preemption.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "Readiness gates whose conditions are true, out of all.",
    ),
];

/// The pod was on a node that became unreachable (`NodeUnreachablePodReason`).
const NODE_LOST: &str = "NodeLost";

fn terminated_at(status: &Value) -> Option<Timestamp> {
    timestamp(status, "/lastState/terminated/finishedAt")
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

pub(super) fn cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let init_specs = arr_at(pod, "/spec/initContainers");
    let restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| str_at(c, "/name") == name && str_at(c, "/restartPolicy") == "Always")
    };
    let sidecars = init_specs
        .iter()
        .filter(|c| str_at(c, "/restartPolicy") == "Always")
        .count();
    let total = arr_at(pod, "/spec/containers").len() + sidecars;

    let phase = str_at(pod, "/status/phase");
    let mut reason = match str_at(pod, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let gated = arr_at(pod, "/status/conditions")
        .iter()
        .any(|c| str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".into();
    }

    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut sidecar_restarts = 0;
    let mut last_sidecar_restart: Option<Timestamp> = None;

    let mut initializing = false;
    for (i, status) in arr_at(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        let count = int_at(status, "/restartCount");
        restarts += count;
        last_restart = later(last_restart, terminated_at(status));
        let is_sidecar = restartable(str_at(status, "/name"));
        if is_sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = later(last_sidecar_restart, terminated_at(status));
        }
        let terminated = get(status, "/state/terminated");
        let waiting_reason = str_at(status, "/state/waiting/reason");
        match terminated {
            Some(t) if int_at(t, "/exitCode") == 0 => continue,
            _ if is_sidecar && bool_at(status, "/started") => {
                if bool_at(status, "/ready") {
                    ready += 1;
                }
                continue;
            }
            Some(t) => {
                reason = match str_at(t, "/reason") {
                    "" if int_at(t, "/signal") != 0 => {
                        format!("Init:Signal:{}", int_at(t, "/signal"))
                    }
                    "" => format!("Init:ExitCode:{}", int_at(t, "/exitCode")),
                    r => format!("Init:{r}"),
                };
            }
            None if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" => {
                reason = format!("Init:{waiting_reason}");
            }
            None => reason = format!("Init:{i}/{}", init_specs.len()),
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "/status/conditions", "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in arr_at(pod, "/status/containerStatuses").iter().rev() {
            restarts += int_at(status, "/restartCount");
            last_restart = later(last_restart, terminated_at(status));
            let waiting = str_at(status, "/state/waiting/reason");
            let terminated = get(status, "/state/terminated");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = terminated {
                reason = match str_at(t, "/reason") {
                    "" if int_at(t, "/signal") != 0 => format!("Signal:{}", int_at(t, "/signal")),
                    "" => format!("ExitCode:{}", int_at(t, "/exitCode")),
                    r => r.to_string(),
                };
            } else if bool_at(status, "/ready") && get(status, "/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed but another still runs is not done.
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "/status/conditions", "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let deleting = get(pod, "/metadata/deletionTimestamp").is_some();
    if deleting && str_at(pod, "/status/reason") == NODE_LOST {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => {
            format!("{restarts} ({} ago)", human_signed(now.duration_since(t)))
        }
        _ => restarts.to_string(),
    };

    let ip = arr_at(pod, "/status/podIPs")
        .first()
        .map(|ip| str_at(ip, "/ip"))
        .unwrap_or_else(|| str_at(pod, "/status/podIP"));
    let gates = arr_at(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr_at(pod, "/status/conditions");
        let met = gates
            .iter()
            .filter(|g| {
                let t = str_at(g, "/conditionType");
                conditions
                    .iter()
                    .find(|c| str_at(c, "/type") == t)
                    .is_some_and(|c| str_at(c, "/status") == "True")
            })
            .count();
        format!("{met}/{}", gates.len())
    };
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };

    vec![
        name(pod).into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_text.into(),
        age(pod, now),
        or_none(ip).into(),
        or_none(str_at(pod, "/spec/nodeName")).into(),
        or_none(str_at(pod, "/status/nominatedNodeName")).into(),
        readiness_gates.into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::{json, Value};

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "metadata": {"name": "p", "creationTimestamp": ago(3600)},
            "spec": spec,
            "status": status,
        })
    }

    fn check_pod(spec: Value, status: Value, ready: &str, reason: &str, restarts: &str) {
        check(
            "",
            "Pod",
            pod(spec, status),
            json!(["p", ready, reason, restarts, "60m", "<none>", "<none>", "<none>", "<none>"]),
        );
    }

    fn one() -> Value {
        json!({"containers": [{"name": "app", "image": "nginx"}]})
    }

    #[test]
    fn running_and_ready() {
        check(
            "",
            "Pod",
            json!({
                "metadata": {"name": "web", "creationTimestamp": ago(300)},
                "spec": {
                    "nodeName": "n1",
                    "containers": [{"name": "a"}, {"name": "b"}],
                    "readinessGates": [{"conditionType": "x/lb"}, {"conditionType": "x/dns"}],
                },
                "status": {
                    "phase": "Running",
                    "podIP": "10.0.0.5",
                    "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
                    "nominatedNodeName": "n2",
                    "conditions": [{"type": "x/lb", "status": "True"}, {"type": "x/dns", "status": "False"}],
                    "containerStatuses": [
                        {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                        {"name": "b", "ready": false, "restartCount": 0, "state": {"running": {}}},
                    ],
                },
            }),
            json!(["web", "1/2", "Running", "0", "5m", "10.0.0.5", "n1", "n2", "1/2"]),
        );
    }

    #[test]
    fn pending_without_status() {
        check_pod(one(), json!({"phase": "Pending"}), "0/1", "Pending", "0");
        check(
            "",
            "Pod",
            json!({"metadata": {"name": "bare"}}),
            json!([
                "bare",
                "0/0",
                "",
                "0",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        );
    }

    #[test]
    fn waiting_and_terminated_reasons() {
        let st = |state: Value| json!({"phase": "Running", "containerStatuses": [{"name": "app", "restartCount": 0, "state": state}]});
        check_pod(
            one(),
            st(json!({"waiting": {"reason": "ContainerCreating"}})),
            "0/1",
            "ContainerCreating",
            "0",
        );
        check_pod(
            one(),
            st(json!({"waiting": {"reason": "ImagePullBackOff"}})),
            "0/1",
            "ImagePullBackOff",
            "0",
        );
        check_pod(
            one(),
            st(json!({"terminated": {"exitCode": 0, "reason": "Completed"}})),
            "0/1",
            "Completed",
            "0",
        );
        check_pod(
            one(),
            st(json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}})),
            "0/1",
            "OOMKilled",
            "0",
        );
        check_pod(
            one(),
            st(json!({"terminated": {"exitCode": 2}})),
            "0/1",
            "ExitCode:2",
            "0",
        );
        check_pod(
            one(),
            st(json!({"terminated": {"exitCode": 0, "signal": 9}})),
            "0/1",
            "Signal:9",
            "0",
        );
        // A status reason (e.g. Evicted) replaces the phase.
        check_pod(
            one(),
            json!({"phase": "Failed", "reason": "Evicted"}),
            "0/1",
            "Evicted",
            "0",
        );
        check_pod(
            one(),
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
            "0/1",
            "SchedulingGated",
            "0",
        );
    }

    #[test]
    fn completed_with_running_sibling() {
        let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        let status = |ready: &str| {
            json!({
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": ready}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "state": {"running": {}}},
                    {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                ],
            })
        };
        check_pod(spec.clone(), status("True"), "1/2", "Running", "0");
        check_pod(spec, status("False"), "1/2", "NotReady", "0");
    }

    #[test]
    fn restarts_suffix() {
        let status = json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}},
            }],
        });
        check_pod(one(), status, "0/1", "CrashLoopBackOff", "4 (5m ago)");
        // Restarts without a recorded termination time print the bare count.
        let status = json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": true, "restartCount": 2, "state": {"running": {}}}]});
        check_pod(one(), status, "1/1", "Running", "2");
    }

    #[test]
    fn init_containers() {
        let spec = json!({
            "initContainers": [{"name": "i1"}, {"name": "i2"}],
            "containers": [{"name": "app"}],
        });
        let init = |second: Value| {
            json!({
                "phase": "Pending",
                "initContainerStatuses": [
                    {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    second,
                ],
                "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}],
            })
        };
        check_pod(
            spec.clone(),
            init(json!({"name": "i2", "state": {"running": {}}})),
            "0/1",
            "Init:1/2",
            "0",
        );
        check_pod(
            spec.clone(),
            init(json!({"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}})),
            "0/1",
            "Init:1/2",
            "0",
        );
        check_pod(
            spec.clone(),
            init(
                json!({"name": "i2", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(125)}}}),
            ),
            "0/1",
            "Init:CrashLoopBackOff",
            "3 (2m5s ago)",
        );
        check_pod(
            spec.clone(),
            init(
                json!({"name": "i2", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}),
            ),
            "0/1",
            "Init:Error",
            "0",
        );
        check_pod(
            spec.clone(),
            init(json!({"name": "i2", "state": {"terminated": {"exitCode": 3}}})),
            "0/1",
            "Init:ExitCode:3",
            "0",
        );
        check_pod(
            spec.clone(),
            init(json!({"name": "i2", "state": {"terminated": {"exitCode": 143, "signal": 15}}})),
            "0/1",
            "Init:Signal:15",
            "0",
        );
        // All init containers done: the app containers' state shows.
        check_pod(
            spec,
            init(
                json!({"name": "i2", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}),
            ),
            "0/1",
            "PodInitializing",
            "0",
        );
    }

    #[test]
    fn sidecar_init_containers() {
        let spec = json!({
            "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
            "containers": [{"name": "app"}],
        });
        let status = json!({
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [{
                "name": "proxy", "ready": true, "started": true, "restartCount": 1,
                "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(7200)}},
            }],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}],
        });
        check_pod(spec.clone(), status, "2/2", "Running", "1 (120m ago)");
        let starting = json!({
            "phase": "Pending",
            "initContainerStatuses": [{"name": "proxy", "started": false, "state": {"running": {}}}],
        });
        check_pod(spec, starting, "0/2", "Init:0/1", "0");
    }

    #[test]
    fn terminating() {
        let mut p = pod(
            one(),
            json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": true, "state": {"running": {}}}]}),
        );
        p["metadata"]["deletionTimestamp"] = json!(ago(10));
        check(
            "",
            "Pod",
            p.clone(),
            json!([
                "p",
                "1/1",
                "Terminating",
                "0",
                "60m",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        );
        p["status"]["reason"] = json!("NodeLost");
        check(
            "",
            "Pod",
            p.clone(),
            json!(["p", "1/1", "Unknown", "0", "60m", "<none>", "<none>", "<none>", "<none>"]),
        );
        // Terminal pods keep their phase even while being deleted.
        let mut done = pod(
            one(),
            json!({"phase": "Succeeded", "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        );
        done["metadata"]["deletionTimestamp"] = json!(ago(10));
        check(
            "",
            "Pod",
            done,
            json!([
                "p",
                "0/1",
                "Completed",
                "0",
                "60m",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        );
    }
}
