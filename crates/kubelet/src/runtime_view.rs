//! What the runtime knows about one pod: its sandboxes and containers, found
//! by the pod UID label (so an agent restart sees exactly what its
//! predecessor started), newest first.

use std::collections::HashMap;

use crate::container::RESTART_COUNT_ANNOTATION;
use crate::cri::api::{
    self, ContainerFilter, ContainerState, ContainerStatusRequest, ListContainersRequest,
    ListPodSandboxRequest, PodSandboxFilter, PodSandboxState,
};
use crate::cri::Runtime;
use crate::sandbox::{CONTAINER_NAME_LABEL, POD_UID_LABEL};

#[derive(Clone, Debug)]
pub struct Sandbox {
    pub id: String,
    pub ready: bool,
    pub attempt: u32,
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct RuntimeContainer {
    pub id: String,
    pub name: String,
    pub sandbox_id: String,
    pub running: bool,
    pub created_at: i64,
    pub restart_count: u32,
    /// Full status (exit code, reason, times, image ref, log path); fetched
    /// for the newest two containers of each name.
    pub status: Option<api::ContainerStatus>,
}

impl RuntimeContainer {
    pub fn exited(&self) -> bool {
        !self.running
    }
    pub fn exit_code(&self) -> i32 {
        self.status.as_ref().map(|s| s.exit_code).unwrap_or(0)
    }
}

#[derive(Clone, Debug, Default)]
pub struct PodRuntime {
    /// Newest first.
    pub sandboxes: Vec<Sandbox>,
    /// By container name, newest first.
    pub containers: HashMap<String, Vec<RuntimeContainer>>,
}

impl PodRuntime {
    pub fn ready_sandbox(&self) -> Option<&Sandbox> {
        self.sandboxes.first().filter(|s| s.ready)
    }
    pub fn latest(&self, name: &str) -> Option<&RuntimeContainer> {
        self.containers.get(name).and_then(|v| v.first())
    }
    pub fn previous(&self, name: &str) -> Option<&RuntimeContainer> {
        self.containers.get(name).and_then(|v| v.get(1))
    }
    pub fn running(&self) -> impl Iterator<Item = &RuntimeContainer> {
        self.containers.values().flatten().filter(|c| c.running)
    }
    pub fn all_containers(&self) -> impl Iterator<Item = &RuntimeContainer> {
        self.containers.values().flatten()
    }
}

pub async fn observe(rt: &Runtime, pod_uid: &str) -> Result<PodRuntime, tonic::Status> {
    let selector = HashMap::from([(POD_UID_LABEL.to_string(), pod_uid.to_string())]);
    let sandboxes = rt
        .runtime
        .clone()
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: selector.clone(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .items;
    let mut view = PodRuntime {
        sandboxes: sandboxes
            .into_iter()
            .map(|s| Sandbox {
                ready: s.state == PodSandboxState::SandboxReady as i32,
                attempt: s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
                created_at: s.created_at,
                id: s.id,
            })
            .collect(),
        ..Default::default()
    };
    view.sandboxes
        .sort_by_key(|s| std::cmp::Reverse(s.created_at));
    let containers = rt
        .runtime
        .clone()
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                label_selector: selector,
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .containers;
    for c in containers {
        let name = c
            .labels
            .get(CONTAINER_NAME_LABEL)
            .cloned()
            .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
            .unwrap_or_default();
        let restart_count = c
            .annotations
            .get(RESTART_COUNT_ANNOTATION)
            .and_then(|v| v.parse().ok())
            .or_else(|| c.metadata.as_ref().map(|m| m.attempt))
            .unwrap_or(0);
        view.containers
            .entry(name.clone())
            .or_default()
            .push(RuntimeContainer {
                running: c.state == ContainerState::ContainerRunning as i32,
                id: c.id,
                name,
                sandbox_id: c.pod_sandbox_id,
                created_at: c.created_at,
                restart_count,
                status: None,
            });
    }
    for list in view.containers.values_mut() {
        list.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        for c in list.iter_mut().take(2) {
            if let Ok(r) = rt
                .runtime
                .clone()
                .container_status(ContainerStatusRequest {
                    container_id: c.id.clone(),
                    verbose: false,
                })
                .await
            {
                c.status = r.into_inner().status;
                if let Some(s) = &c.status {
                    c.running = s.state == ContainerState::ContainerRunning as i32;
                }
            }
        }
    }
    Ok(view)
}
