//! One container's CRI config and the runtime operations on it: create and
//! start (with the postStart hook), and kill (preStop hook, then SIGTERM and
//! SIGKILL after the grace period), as kuberuntime_container does.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};

use crate::cri::api::{
    Capability, ContainerConfig, ContainerMetadata, ImageSpec, Int64Value, KeyValue,
    LinuxContainerConfig, LinuxContainerSecurityContext, Mount, NamespaceMode, NamespaceOption,
};
use crate::cri::Runtime;
use crate::sandbox::{self, CONTAINER_NAME_LABEL};

pub const RESTART_COUNT_ANNOTATION: &str = "io.kubernetes.container.restartCount";
pub const TERMINATION_MESSAGE_PATH_ANNOTATION: &str =
    "io.kubernetes.container.terminationMessagePath";
pub const TERMINATION_MESSAGE_POLICY_ANNOTATION: &str =
    "io.kubernetes.container.terminationMessagePolicy";
pub const GRACE_ANNOTATION: &str = "io.kubernetes.pod.terminationGracePeriod";

/// The least time a container gets to stop, as the kubelet's
/// minimumGracePeriodInSeconds.
pub const MIN_GRACE: Duration = Duration::from_secs(2);

/// What the container config is built from, resolved by the caller.
pub struct Inputs<'a> {
    pub image: &'a str,
    pub restart_count: u32,
    pub envs: Vec<KeyValue>,
    pub mounts: Vec<Mount>,
    pub node_memory_bytes: u64,
}

pub fn config(pod: &Pod, c: &Container, inputs: Inputs) -> ContainerConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let vars: HashMap<&str, &str> = inputs
        .envs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_str()))
        .collect();
    let expand = |v: &Vec<String>| {
        v.iter()
            .map(|s| crate::env::expand(s, &|name| vars.get(name).map(|v| v.to_string())))
            .collect::<Vec<_>>()
    };
    let mut labels: HashMap<String, String> = sandbox::pod_labels(pod)
        .into_iter()
        .filter(|(k, _)| k.starts_with("io.kubernetes."))
        .collect();
    labels.insert(CONTAINER_NAME_LABEL.into(), c.name.clone());
    let annotations = HashMap::from([
        (
            RESTART_COUNT_ANNOTATION.to_string(),
            inputs.restart_count.to_string(),
        ),
        (
            TERMINATION_MESSAGE_PATH_ANNOTATION.into(),
            c.termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
        (
            TERMINATION_MESSAGE_POLICY_ANNOTATION.into(),
            c.termination_message_policy
                .clone()
                .unwrap_or_else(|| "File".into()),
        ),
        (
            GRACE_ANNOTATION.into(),
            spec.termination_grace_period_seconds
                .unwrap_or(30)
                .to_string(),
        ),
    ]);
    let psc = spec.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    let pid_mode = if spec.host_pid.unwrap_or(false) {
        NamespaceMode::Node
    } else if spec.share_process_namespace.unwrap_or(false) {
        NamespaceMode::Pod
    } else {
        NamespaceMode::Container
    };
    let network_mode = if sandbox::host_network(pod) {
        NamespaceMode::Node
    } else {
        NamespaceMode::Pod
    };
    let ipc_mode = if spec.host_ipc.unwrap_or(false) {
        NamespaceMode::Node
    } else {
        NamespaceMode::Pod
    };
    let privileged = sc.privileged.unwrap_or(false);
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: c.name.clone(),
            attempt: inputs.restart_count,
        }),
        image: Some(ImageSpec {
            image: inputs.image.to_string(),
            ..Default::default()
        }),
        command: c.command.as_ref().map(expand).unwrap_or_default(),
        args: c.args.as_ref().map(expand).unwrap_or_default(),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: inputs.envs.clone(),
        mounts: inputs.mounts,
        labels,
        annotations,
        log_path: format!("{}/{}.log", c.name, inputs.restart_count),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(LinuxContainerConfig {
            resources: Some(crate::qos::container_resources(
                pod,
                c,
                inputs.node_memory_bytes,
            )),
            security_context: Some(LinuxContainerSecurityContext {
                capabilities: Some(Capability {
                    add_capabilities: caps.add.unwrap_or_default(),
                    drop_capabilities: caps.drop.unwrap_or_default(),
                    ..Default::default()
                }),
                privileged,
                namespace_options: Some(NamespaceOption {
                    network: network_mode as i32,
                    pid: pid_mode as i32,
                    ipc: ipc_mode as i32,
                    ..Default::default()
                }),
                run_as_user: sc
                    .run_as_user
                    .or(psc.run_as_user)
                    .map(|value| Int64Value { value }),
                run_as_group: sc
                    .run_as_group
                    .or(psc.run_as_group)
                    .map(|value| Int64Value { value }),
                readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
                supplemental_groups: psc
                    .supplemental_groups
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .chain(psc.fs_group)
                    .collect(),
                no_new_privs: !sc.allow_privilege_escalation.unwrap_or(true) && !privileged,
                masked_paths: if privileged {
                    vec![]
                } else {
                    DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect()
                },
                readonly_paths: if privileged {
                    vec![]
                } else {
                    DEFAULT_READONLY_PATHS
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                },
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// The paths the kubelet masks for unprivileged containers (procMount Default).
const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Runs a lifecycle hook (postStart/preStop) within `timeout`. Err is the
/// hook's failure message.
pub async fn run_hook(
    rt: &Runtime,
    container_id: &str,
    pod_ip: &str,
    handler: &LifecycleHandler,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(exec) = &handler.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let r = rt
            .runtime
            .clone()
            .exec_sync(crate::cri::api::ExecSyncRequest {
                container_id: container_id.to_string(),
                cmd: cmd.clone(),
                timeout: timeout.as_secs().max(1) as i64,
            })
            .await
            .map_err(|e| e.message().to_string())?
            .into_inner();
        if r.exit_code != 0 {
            return Err(format!(
                "command '{}' exited with {}: {}",
                cmd.join(" "),
                r.exit_code,
                String::from_utf8_lossy(&r.stderr)
            ));
        }
        return Ok(());
    }
    if let Some(http) = &handler.http_get {
        let host = http.host.clone().unwrap_or_else(|| pod_ip.to_string());
        let port = match &http.port {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => *p,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => {
                s.parse().unwrap_or(80)
            }
        };
        let path = http.path.clone().unwrap_or_else(|| "/".into());
        return tokio::time::timeout(timeout, http_get(&host, port as u16, &path))
            .await
            .map_err(|_| "hook timed out".to_string())?;
    }
    if let Some(sleep) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64).min(timeout)).await;
        return Ok(());
    }
    Ok(())
}

async fn http_get(host: &str, port: u16, path: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("Get \"http://{host}:{port}{path}\": {e}"))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-lifecycle/1.33\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64];
    let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&buf[..n]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!(
            "HTTP lifecycle hook ({path}) for Container in Pod failed with statuscode {code}"
        ))
    }
}

/// Stops a container: the preStop hook first (within the grace period), then
/// StopContainer with what is left of it (SIGTERM, SIGKILL at the end).
pub async fn kill(
    rt: &Runtime,
    container_id: &str,
    spec: Option<&Container>,
    pod_ip: &str,
    grace: Duration,
) -> Result<(), tonic::Status> {
    let started = tokio::time::Instant::now();
    if let Some(pre_stop) = spec
        .and_then(|c| c.lifecycle.as_ref())
        .and_then(|l| l.pre_stop.as_ref())
    {
        if let Err(e) = run_hook(rt, container_id, pod_ip, pre_stop, grace).await {
            tracing::info!(container_id, error = %e, "preStop hook failed");
        }
    }
    // Whole seconds, as upstream: a hook that took 0.3 s must not turn a
    // 4 s grace period into a 3 s timeout.
    let left = Duration::from_secs(grace.as_secs().saturating_sub(started.elapsed().as_secs()))
        .max(MIN_GRACE);
    rt.runtime
        .clone()
        .stop_container(crate::cri::api::StopContainerRequest {
            container_id: container_id.to_string(),
            timeout: left.as_secs() as i64,
        })
        .await
        .map(|_| ())
}
