//! Liveness, readiness and startup probes (upstream `pkg/kubelet/prober`).
//! The pod worker tells the [`ProbeManager`] when containers start and stop;
//! one task per (container, probe kind) probes on its period, and result
//! changes come back as [`ProbeUpdate`]s on a channel. Liveness and readiness
//! wait for the startup probe; a liveness or startup failure stops that
//! container's probing until the restarted container is registered again.

pub mod exec;
pub mod grpc;
pub mod http;
pub mod tcp;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::cri::Runtime;
use client::events::{EventType, Recorder};
use worker::{Outcome, Prober, Sink, Timing, Worker};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    /// The word upstream's events start with (`Liveness probe failed: ...`).
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    Failure,
    Unknown,
}

/// A probe's result changed (after its thresholds). A liveness or startup
/// `Failure` means: kill and restart the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeUpdate {
    pub pod_uid: String,
    pub container: String,
    pub container_id: String,
    pub kind: ProbeKind,
    pub result: ProbeResult,
}

type EventFn = dyn Fn(ObjectReference, EventType, &str, String) + Send + Sync;

/// Owns the probe workers of every container on the node. Cheap to clone.
#[derive(Clone)]
pub struct ProbeManager {
    inner: Arc<Inner>,
}

struct Inner {
    rt: Runtime,
    events: Arc<EventFn>,
    updates: mpsc::UnboundedSender<ProbeUpdate>,
    /// (pod uid, container name) → the probes of its current container.
    containers: Mutex<HashMap<(String, String), Entry>>,
}

struct Entry {
    cancel: CancellationToken,
    state: Arc<Mutex<State>>,
}

/// What status computation needs from the probes of one container.
#[derive(Debug)]
struct State {
    has_readiness: bool,
    has_startup: bool,
    ready: bool,
    started: bool,
}

impl ProbeManager {
    pub fn new(
        rt: Runtime,
        recorder: Recorder,
    ) -> (ProbeManager, mpsc::UnboundedReceiver<ProbeUpdate>) {
        let events =
            move |obj, kind, reason: &str, msg| recorder.record(obj, kind, reason, "", msg);
        Self::with_events(rt, Arc::new(events))
    }

    fn with_events(
        rt: Runtime,
        events: Arc<EventFn>,
    ) -> (ProbeManager, mpsc::UnboundedReceiver<ProbeUpdate>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Inner {
            rt,
            events,
            updates: tx,
            containers: Default::default(),
        };
        let manager = ProbeManager {
            inner: Arc::new(inner),
        };
        (manager, rx)
    }

    /// Starts probe workers for a container that just started (replaces
    /// workers for an older container_id of the same container).
    pub fn container_started(
        &self,
        pod: &Pod,
        container: &Container,
        container_id: &str,
        pod_ip: &str,
        started_at: std::time::Instant,
    ) {
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = (pod_uid.clone(), container.name.clone());
        let probes = [
            (ProbeKind::Startup, container.startup_probe.as_ref()),
            (ProbeKind::Liveness, container.liveness_probe.as_ref()),
            (ProbeKind::Readiness, container.readiness_probe.as_ref()),
        ];
        let mut containers = self.lock();
        if let Some(old) = containers.remove(&key) {
            old.cancel.cancel();
        }
        if probes.iter().all(|(_, p)| p.is_none()) {
            return;
        }
        let has_startup = container.startup_probe.is_some();
        let state = Arc::new(Mutex::new(State {
            has_readiness: container.readiness_probe.is_some(),
            has_startup,
            ready: false,
            started: !has_startup,
        }));
        let cancel = CancellationToken::new();
        let (started_tx, started_rx) = watch::channel(!has_startup);
        let mut started_tx = Some(started_tx);
        let reference = container_reference(pod, &container.name);
        for (kind, probe) in probes {
            let Some(probe) = probe else { continue };
            let timing = Timing::from_probe(probe);
            let prober = ActionProber {
                rt: self.inner.rt.clone(),
                container_id: container_id.to_string(),
                action: Action::resolve(probe, container, pod_ip, &pod_uid),
                timeout: timing.timeout,
            };
            let sink = self.sink(kind, &key, container_id, &state, &cancel, &reference);
            let w = Worker {
                kind,
                timing,
                prober: Arc::new(prober),
                started_at: tokio::time::Instant::from_std(started_at),
                started: started_rx.clone(),
                started_tx: if kind == ProbeKind::Startup {
                    started_tx.take()
                } else {
                    None
                },
                sink,
            };
            tokio::spawn(worker::run(w, cancel.clone()));
        }
        containers.insert(key, Entry { cancel, state });
    }

    /// Where one worker's results and events go. Nothing is reported once
    /// the container's workers were cancelled (it stopped or was replaced).
    fn sink(
        &self,
        kind: ProbeKind,
        key: &(String, String),
        container_id: &str,
        state: &Arc<Mutex<State>>,
        cancel: &CancellationToken,
        reference: &ObjectReference,
    ) -> Sink {
        let (state, cancel1, cancel2) = (state.clone(), cancel.clone(), cancel.clone());
        let updates = self.inner.updates.clone();
        let (pod_uid, container) = key.clone();
        let container_id = container_id.to_string();
        let events = self.inner.events.clone();
        let reference = reference.clone();
        Sink {
            result: Box::new(move |result| {
                if cancel1.is_cancelled() {
                    return;
                }
                {
                    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                    match kind {
                        ProbeKind::Readiness => s.ready = result == ProbeResult::Success,
                        ProbeKind::Startup => s.started = result == ProbeResult::Success,
                        ProbeKind::Liveness => {}
                    }
                }
                let _ = updates.send(ProbeUpdate {
                    pod_uid: pod_uid.clone(),
                    container: container.clone(),
                    container_id: container_id.clone(),
                    kind,
                    result,
                });
            }),
            event: Box::new(move |kind, reason, message| {
                if !cancel2.is_cancelled() {
                    events(reference.clone(), kind, reason, message);
                }
            }),
        }
    }

    pub fn container_stopped(&self, pod_uid: &str, container: &str) {
        let key = (pod_uid.to_string(), container.to_string());
        if let Some(old) = self.lock().remove(&key) {
            old.cancel.cancel();
        }
    }

    pub fn pod_removed(&self, pod_uid: &str) {
        self.lock().retain(|(uid, _), e| {
            if uid == pod_uid {
                e.cancel.cancel();
            }
            uid != pod_uid
        });
    }

    /// Readiness as far as probes know: `None` when the container has no
    /// readiness or startup probe (ready while running); otherwise whether
    /// it passed its startup probe and its readiness probe.
    pub fn readiness(&self, pod_uid: &str, container: &str) -> Option<bool> {
        self.with_state(pod_uid, container, |s| {
            if !s.has_readiness && !s.has_startup {
                return None;
            }
            Some(s.started && (!s.has_readiness || s.ready))
        })
    }

    /// Whether the startup probe passed; `None` without a startup probe
    /// (started as soon as it runs).
    pub fn started(&self, pod_uid: &str, container: &str) -> Option<bool> {
        self.with_state(pod_uid, container, |s| s.has_startup.then_some(s.started))
    }

    fn with_state<T>(
        &self,
        pod_uid: &str,
        container: &str,
        f: impl FnOnce(&State) -> Option<T>,
    ) -> Option<T> {
        let key = (pod_uid.to_string(), container.to_string());
        let containers = self.lock();
        let entry = containers.get(&key)?;
        let state = entry.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&state)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Entry>> {
        self.inner
            .containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// The container as an event's `involvedObject` (`spec.containers{name}`).
fn container_reference(pod: &Pod, container: &str) -> ObjectReference {
    let mut r = client::events::reference(pod);
    let is_init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.name == container));
    let list = if is_init {
        "initContainers"
    } else {
        "containers"
    };
    r.field_path = Some(format!("spec.{list}{{{container}}}"));
    r
}

/// A probe's handler, resolved against the container (named ports) and the
/// pod IP once, when the container starts.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Exec(Vec<String>),
    Http(http::HttpProbe),
    Tcp {
        host: String,
        port: u16,
    },
    Grpc {
        host: String,
        port: u16,
        service: String,
    },
}

impl Action {
    fn resolve(p: &Probe, c: &Container, pod_ip: &str, pod_uid: &str) -> Result<Action, String> {
        let timeout = Timing::from_probe(p).timeout;
        if let Some(e) = &p.exec {
            let cmd = e.command.clone().unwrap_or_default();
            return Ok(Action::Exec(exec::expand(
                &cmd,
                c.env.as_deref().unwrap_or(&[]),
            )));
        }
        if let Some(h) = &p.http_get {
            let https = h
                .scheme
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("https"));
            let path = h.path.clone().unwrap_or_default();
            let path = if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            };
            let headers = (h.http_headers.iter().flatten())
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect();
            return Ok(Action::Http(http::HttpProbe {
                https,
                host: non_empty(h.host.as_deref()).unwrap_or(pod_ip).to_string(),
                port: resolve_port(&h.port, c)?,
                path,
                headers,
                timeout,
            }));
        }
        if let Some(t) = &p.tcp_socket {
            return Ok(Action::Tcp {
                host: non_empty(t.host.as_deref()).unwrap_or(pod_ip).to_string(),
                port: resolve_port(&t.port, c)?,
            });
        }
        if let Some(g) = &p.grpc {
            return Ok(Action::Grpc {
                host: pod_ip.to_string(),
                port: port_number(g.port)?,
                service: g.service.clone().unwrap_or_default(),
            });
        }
        Err(format!("missing probe handler for {pod_uid}:{}", c.name))
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// upstream `probe.ResolveContainerPort`: a number, or a named container port.
fn resolve_port(port: &IntOrString, c: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => port_number(*n),
        IntOrString::String(name) => {
            let named = (c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port);
            match named {
                Some(n) => port_number(n),
                None => match name.parse::<i32>() {
                    Ok(n) => port_number(n),
                    Err(_) => Err(format!("couldn't find port: {name} in {}", c.name)),
                },
            }
        }
    }
}

fn port_number(n: i32) -> Result<u16, String> {
    match u16::try_from(n) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("invalid port number: {n}")),
    }
}

/// Runs one resolved probe handler.
struct ActionProber {
    rt: Runtime,
    container_id: String,
    action: Result<Action, String>,
    timeout: Duration,
}

/// Upstream retries a probe that errored (not one that failed) this often.
const MAX_PROBE_RETRIES: usize = 3;

impl Prober for ActionProber {
    fn probe(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let mut outcome = Outcome::Error(String::new());
            for _ in 0..MAX_PROBE_RETRIES {
                outcome = self.probe_once().await;
                if !matches!(outcome, Outcome::Error(_)) {
                    break;
                }
            }
            outcome
        })
    }
}

impl ActionProber {
    async fn probe_once(&self) -> Outcome {
        let action = match &self.action {
            Ok(a) => a,
            Err(e) => return Outcome::Error(e.clone()),
        };
        match action {
            Action::Exec(cmd) => exec::probe(&self.rt, &self.container_id, cmd, self.timeout).await,
            Action::Http(h) => h.probe().await,
            Action::Tcp { host, port } => tcp::probe(host, *port, self.timeout).await,
            Action::Grpc {
                host,
                port,
                service,
            } => grpc::probe(host, *port, service, self.timeout).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, HTTPGetAction, PodSpec, TCPSocketAction};
    use tokio::io::AsyncWriteExt;

    /// A runtime whose channel never connects (exec probes are not used here).
    fn lazy_runtime() -> Runtime {
        let channel = tonic::transport::Endpoint::from_static("http://cri.invalid").connect_lazy();
        Runtime {
            runtime: crate::cri::api::runtime_service_client::RuntimeServiceClient::new(
                channel.clone(),
            ),
            images: crate::cri::api::image_service_client::ImageServiceClient::new(channel),
            socket: "/nonexistent".into(),
        }
    }

    fn pod(c: &Container) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("uid-1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![c.clone()],
                ..Default::default()
            }),
            status: None,
        }
    }

    fn container(port: u16) -> Container {
        Container {
            name: "app".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: port as i32,
                ..Default::default()
            }]),
            readiness_probe: Some(Probe {
                http_get: Some(HTTPGetAction {
                    port: IntOrString::String("http".into()),
                    path: Some("/ready".into()),
                    ..Default::default()
                }),
                period_seconds: Some(1),
                ..Default::default()
            }),
            liveness_probe: Some(Probe {
                tcp_socket: Some(TCPSocketAction {
                    port: IntOrString::Int(port as i32),
                    host: None,
                }),
                period_seconds: Some(1),
                failure_threshold: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn resolves_named_ports_and_defaults() {
        let c = container(8080);
        let a = Action::resolve(c.readiness_probe.as_ref().unwrap(), &c, "10.42.0.5", "u");
        let Ok(Action::Http(h)) = a else {
            panic!("{a:?}")
        };
        assert_eq!(h.url(), "http://10.42.0.5:8080/ready");
        let bad = resolve_port(&IntOrString::String("nope".into()), &c);
        assert_eq!(bad, Err("couldn't find port: nope in app".into()));
        assert_eq!(resolve_port(&IntOrString::String("81".into()), &c), Ok(81));
        assert!(port_number(70000).is_err());
    }

    #[tokio::test]
    async fn readiness_then_liveness_failure_against_a_local_server() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            }
        });
        let events = Arc::new(Mutex::new(Vec::<(String, String, String)>::new()));
        let ev = events.clone();
        let (m, mut rx) = ProbeManager::with_events(
            lazy_runtime(),
            Arc::new(move |r: ObjectReference, _, reason: &str, msg| {
                ev.lock()
                    .unwrap()
                    .push((r.field_path.unwrap_or_default(), reason.into(), msg))
            }),
        );
        let c = container(port);
        m.container_started(
            &pod(&c),
            &c,
            "cid-1",
            "127.0.0.1",
            std::time::Instant::now(),
        );
        assert_eq!(m.readiness("uid-1", "app"), Some(false));
        assert_eq!(m.started("uid-1", "app"), None);
        let u = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            u,
            ProbeUpdate {
                pod_uid: "uid-1".into(),
                container: "app".into(),
                container_id: "cid-1".into(),
                kind: ProbeKind::Readiness,
                result: ProbeResult::Success
            }
        );
        assert_eq!(m.readiness("uid-1", "app"), Some(true));
        // The server goes away: liveness (threshold 1) and readiness fail.
        server.abort();
        let _ = server.await;
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let u = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            seen.push((u.kind, u.result));
        }
        assert!(seen.contains(&(ProbeKind::Liveness, ProbeResult::Failure)));
        let events = events.lock().unwrap().clone();
        let refused = format!("dial tcp 127.0.0.1:{port}: connect: connection refused");
        assert!(
            events.contains(&(
                "spec.containers{app}".into(),
                "Unhealthy".into(),
                format!("Liveness probe failed: {refused}")
            )),
            "{events:?}"
        );
        m.pod_removed("uid-1");
        assert_eq!(m.readiness("uid-1", "app"), None);
    }
}
