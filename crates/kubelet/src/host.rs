//! What the kubelet server asks of the agent: a pod's containers (current or
//! previous instance, with their log files), its sandbox, the pod list and
//! stats — answered from the pod workers' last view of the runtime, with the
//! kubelet's wording for containers that can't serve logs or streams yet.

use std::path::PathBuf;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;

use crate::runtime_view::RuntimeContainer;
use crate::server::{ContainerRef, HostError, PodHost};
use crate::Kubelet;

fn log_path(c: &RuntimeContainer) -> PathBuf {
    PathBuf::from(
        c.status
            .as_ref()
            .map(|s| s.log_path.clone())
            .unwrap_or_default(),
    )
}

impl PodHost for Kubelet {
    fn container(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<ContainerRef, HostError> {
        let p = self.pod_by_name(ns, pod).ok_or_else(|| {
            HostError::NotFound(format!("pod {pod:?} cannot be found - no logs available"))
        })?;
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let spec = p.spec.clone().unwrap_or_default();
        let known = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .any(|c| c.name == container);
        if !known {
            return Err(HostError::NotFound(format!(
                "container {container:?} in pod {pod:?} is not available"
            )));
        }
        let view = self.observed_of(&uid).unwrap_or_default();
        let found = if previous {
            view.previous(container).or_else(|| {
                // The current container is dead and about to be replaced.
                view.latest(container)
                    .filter(|c| !c.running && self.is_waiting(&uid, container))
            })
        } else {
            view.latest(container)
        };
        match found {
            Some(c) => Ok(ContainerRef {
                container_id: c.id.clone(),
                log_path: log_path(c),
                running: c.running,
            }),
            None if previous => Err(HostError::BadRequest(format!(
                "previous terminated container {container:?} in pod {pod:?} not found"
            ))),
            None => {
                let reason = self
                    .waiting_reason(&uid, container)
                    .unwrap_or_else(|| crate::status::default_waiting_reason(&p, container).into());
                Err(HostError::BadRequest(format!(
                    "container {container:?} in pod {pod:?} is waiting to start: {reason}"
                )))
            }
        }
    }

    fn sandbox(&self, ns: &str, pod: &str) -> Result<String, HostError> {
        let p = self
            .pod_by_name(ns, pod)
            .ok_or_else(|| HostError::NotFound(format!("pod {pod:?} not found")))?;
        let uid = p.metadata.uid.clone().unwrap_or_default();
        self.observed_of(&uid)
            .and_then(|v| v.ready_sandbox().map(|s| s.id.clone()))
            .ok_or_else(|| HostError::BadRequest(format!("pod {pod:?} has no running sandbox")))
    }

    fn pods(&self) -> Vec<Pod> {
        self.all_pods().iter().map(|p| (**p).clone()).collect()
    }

    fn stats_summary(&self) -> BoxFuture<'static, serde_json::Value> {
        let stats = self.stats.clone();
        let node = self.config.node_name.clone();
        let pods = self.pods();
        Box::pin(async move { stats.summary(&node, &pods).await })
    }
}

impl Kubelet {
    fn waiting_reason(&self, uid: &str, container: &str) -> Option<String> {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .and_then(|s| s.waiting.get(container).map(|(r, _)| r.clone()))
    }

    fn is_waiting(&self, uid: &str, container: &str) -> bool {
        self.waiting_reason(uid, container).is_some()
    }
}
