//! Starts the agent and keeps it running: containerd, the Node and its
//! Lease, the pod network config, the watch on this node's pods, the runtime
//! relist (PLEG) and the kubelet server; routes every change to the worker
//! of the pod it concerns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::cri::api::{ListContainersRequest, ListPodSandboxRequest};
use crate::probes::{ProbeKind, ProbeResult};
use crate::sandbox::POD_UID_LABEL;
use crate::{cni, containerd, cri, images, node, probes, volumes, Config, Kubelet};

const PLEG_PERIOD: Duration = Duration::from_secs(1);
const NODE_STATUS_PERIOD: Duration = Duration::from_secs(10);
/// Status is written at least this often even when nothing changed.
const NODE_STATUS_REPORT: Duration = Duration::from_secs(60);
const LEASE_RENEW: Duration = Duration::from_secs(10);
const LOG_ROTATE_PERIOD: Duration = Duration::from_secs(10);

type Workers = Arc<Mutex<HashMap<String, Arc<Notify>>>>;

/// Runs the agent until `shutdown`.
pub async fn run(
    client: kube::Client,
    config: Config,
    informers: client::informer::Informers,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    for dir in [
        config.root.clone(),
        config.pods_dir(),
        config.logs_dir(),
        config.images_dir(),
    ] {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let layout = containerd::Layout::new(&config.root);
    let cni_layout = cni::Layout::new(&config.root);
    let mut own_containerd = None;
    let endpoint = match &config.container_runtime_endpoint {
        Some(e) => e.clone(),
        None => {
            let registry_toml = images::registries_toml(&config.private_registry, &layout.dir)
                .context("reading the private registry configuration")?;
            let bin = cni::default_bin_dir();
            let c = containerd::Containerd::start(
                &layout,
                &containerd::Settings {
                    sandbox_image: &config.sandbox_image,
                    cni_bin_dir: &bin,
                    cni_conf_dir: &cni_layout.conf_dir,
                    registry_toml: &registry_toml,
                },
            )
            .await?;
            let socket = c.socket.display().to_string();
            own_containerd = Some(c);
            socket
        }
    };
    let rt = cri::Runtime::connect(&endpoint, Duration::from_secs(30)).await?;
    let socket = rt.socket.clone();
    match images::import_dir(&socket, &config.images_dir()).await {
        Ok(names) if !names.is_empty() => tracing::info!(images = ?names, "imported images"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "importing images failed"),
    }
    let version = rt.version().await?;
    let runtime_version = format!("{}://{}", version.runtime_name, version.runtime_version);
    let machine = node::Machine::read(&config.root, &runtime_version);
    let node_ip = config.node_ip.unwrap_or_else(node::default_node_ip);
    let mut labels = node::well_known_labels(&config.node_name);
    if config.control_plane {
        labels.insert(
            "node-role.kubernetes.io/control-plane".into(),
            "true".into(),
        );
    }
    labels.extend(config.node_labels.clone());
    let registration = node::Registration {
        name: config.node_name.clone(),
        labels,
        taints: config.node_taints.clone(),
        address: node_ip,
        kubelet_port: config.kubelet_port,
        max_pods: config.max_pods,
    };
    let registered = retry_forever(&shutdown, || node::register(&client, &registration)).await;
    let Some(registered) = registered else {
        return Ok(());
    };
    tracing::info!(node = %config.node_name, ip = %node_ip, "node registered");

    let recorder = client::events::Recorder::new(client.clone(), "kubelet", &config.node_name);
    let (probes, mut probe_updates) = probes::ProbeManager::new(rt.clone(), recorder.clone());
    let kubelet = Arc::new(Kubelet {
        images: images::ImageManager::new(rt.clone(), recorder.clone()),
        volumes: volumes::VolumeManager::new(
            config.pods_dir(),
            client.clone(),
            config.cluster_domain.clone(),
        ),
        probes,
        stats: Arc::new(
            crate::stats::StatsProvider::new(rt.clone())
                .with_paths(config.root.clone(), Some(config.logs_dir())),
        ),
        services: informers.get(),
        client: client.clone(),
        rt: rt.clone(),
        node_ip: node_ip.to_string(),
        machine,
        recorder,
        host_resolv_conf: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        pods: Default::default(),
        observed: Default::default(),
        graces: Default::default(),
        states: Default::default(),
        liveness_failed: Default::default(),
        config: config.clone(),
    });
    kubelet
        .volumes
        .set_node_allocatable(kubelet.machine.capacity(config.max_pods));
    let workers: Workers = Default::default();
    let mut tasks = tokio::task::JoinSet::new();

    tasks.spawn(node_status_loop(
        kubelet.clone(),
        registration,
        registered.clone(),
        cni_layout,
        shutdown.clone(),
    ));
    tasks.spawn(lease_loop(client.clone(), registered, shutdown.clone()));
    {
        let (k, w, stop) = (kubelet.clone(), workers.clone(), shutdown.clone());
        tasks.spawn(async move {
            loop {
                let update = tokio::select! {
                    u = probe_updates.recv() => match u { Some(u) => u, None => return },
                    _ = stop.cancelled() => return,
                };
                if update.result == ProbeResult::Failure
                    && matches!(update.kind, ProbeKind::Liveness | ProbeKind::Startup)
                {
                    let kind = if update.kind == ProbeKind::Liveness {
                        "liveness"
                    } else {
                        "startup"
                    };
                    k.liveness_failed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(update.container_id.clone(), kind);
                }
                kick(&k, &w, &update.pod_uid, &stop);
            }
        });
    }
    let synced_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tasks.spawn(pleg(
        kubelet.clone(),
        workers.clone(),
        synced_flag.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(rotate_logs(kubelet.clone(), shutdown.clone()));
    {
        let server_config = crate::server::ServerConfig {
            addr: std::net::SocketAddr::new(
                std::net::IpAddr::from([0, 0, 0, 0]),
                config.kubelet_port,
            ),
            cert_pem: config.tls_cert_pem.clone(),
            key_pem: config.tls_key_pem.clone(),
            client_ca_pem: config.client_ca_pem.clone(),
        };
        let (k, rt, stop) = (kubelet.clone(), rt.clone(), shutdown.clone());
        tasks.spawn(async move {
            if let Err(e) = crate::server::serve(server_config, rt, k, stop).await {
                tracing::error!(error = %e, "the kubelet server stopped");
            }
        });
    }

    // The pods bound to this node.
    let api: Api<Pod> = Api::all(client.clone());
    let wc = watcher::Config::default().fields(&format!("spec.nodeName={}", config.node_name));
    let mut stream = watcher::watcher(api, wc).boxed();
    let mut listing: Option<Vec<String>> = None;
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = shutdown.cancelled() => break,
        };
        match event {
            Some(Ok(watcher::Event::Apply(pod))) | Some(Ok(watcher::Event::InitApply(pod))) => {
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                if let Some(l) = listing.as_mut() {
                    l.push(uid.clone());
                }
                kubelet.upsert(pod);
                kick(&kubelet, &workers, &uid, &shutdown);
            }
            Some(Ok(watcher::Event::Delete(pod))) => {
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                kubelet.remove(&uid);
                kick(&kubelet, &workers, &uid, &shutdown);
            }
            Some(Ok(watcher::Event::Init)) => listing = Some(Vec::new()),
            Some(Ok(watcher::Event::InitDone)) => {
                // Pods deleted while the watch was down.
                let seen = listing.take().unwrap_or_default();
                for uid in kubelet.known_uids() {
                    if !seen.contains(&uid) {
                        kubelet.remove(&uid);
                        kick(&kubelet, &workers, &uid, &shutdown);
                    }
                }
                synced_flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "pod watch error");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            None => break,
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    if let Some(mut c) = own_containerd {
        c.stop().await;
    }
    Ok(())
}

impl Kubelet {
    fn upsert(&self, pod: Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let grace = crate::pod_workers::grace_of(&pod);
        self.graces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.clone(), grace);
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid, Arc::new(pod));
    }

    fn remove(&self, uid: &str) {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }

    fn known_uids(&self) -> Vec<String> {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// A pod by namespace and name, with its UID.
    pub(crate) fn pod_by_name(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|p| {
                p.metadata.namespace.as_deref() == Some(namespace)
                    && p.metadata.name.as_deref() == Some(name)
            })
            .cloned()
    }

    pub(crate) fn observed_of(&self, uid: &str) -> Option<crate::runtime_view::PodRuntime> {
        self.observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .cloned()
    }

    pub(crate) fn all_pods(&self) -> Vec<Arc<Pod>> {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// Wakes the pod's worker, starting one if it has none.
fn kick(kubelet: &Arc<Kubelet>, workers: &Workers, uid: &str, stop: &CancellationToken) {
    let mut map = workers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = map.get(uid) {
        n.notify_one();
        return;
    }
    let notify = Arc::new(Notify::new());
    map.insert(uid.to_string(), notify.clone());
    let (k, w, uid, stop) = (
        kubelet.clone(),
        workers.clone(),
        uid.to_string(),
        stop.clone(),
    );
    tokio::spawn(async move {
        loop {
            let next = k.sync_pod(&uid).await;
            let Some(next) = next else { break };
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(next) => {}
                _ = stop.cancelled() => return,
            }
        }
        let mut map = w.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&uid);
        // A pod of the same UID may have come back meanwhile.
        if k.desired(&uid).is_some() {
            drop(map);
            kick(&k, &w, &uid, &stop);
        }
    });
}

/// The pod lifecycle event generator: relists the runtime every second and
/// wakes the worker of each pod whose sandboxes or containers changed state
/// (a container killed from outside is noticed here). Sandboxes of pods
/// the API no longer has are handed to a worker too, which removes them.
async fn pleg(
    k: Arc<Kubelet>,
    workers: Workers,
    synced: Arc<std::sync::atomic::AtomicBool>,
    stop: CancellationToken,
) {
    let mut last: HashMap<String, Vec<(String, i32)>> = HashMap::new();
    let mut tick = tokio::time::interval(PLEG_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let mut rt = k.rt.runtime.clone();
        let Ok(sandboxes) = rt
            .list_pod_sandbox(ListPodSandboxRequest { filter: None })
            .await
        else {
            continue;
        };
        let Ok(containers) = rt
            .list_containers(ListContainersRequest { filter: None })
            .await
        else {
            continue;
        };
        let mut now: HashMap<String, Vec<(String, i32)>> = HashMap::new();
        for s in sandboxes.into_inner().items {
            if let Some(uid) = s.labels.get(POD_UID_LABEL) {
                now.entry(uid.clone()).or_default().push((s.id, s.state));
            }
        }
        for c in containers.into_inner().containers {
            if let Some(uid) = c.labels.get(POD_UID_LABEL) {
                now.entry(uid.clone())
                    .or_default()
                    .push((c.id, 100 + c.state));
            }
        }
        for v in now.values_mut() {
            v.sort();
        }
        let synced = synced.load(std::sync::atomic::Ordering::SeqCst);
        for (uid, state) in &now {
            let known = k.desired(uid).is_some();
            let changed = last.get(uid) != Some(state);
            if changed && (known || synced) {
                kick(&k, &workers, uid, &stop);
            }
        }
        last = now;
    }
}

/// The container log manager: running containers' logs are rotated past
/// `containerLogMaxSize` (10 MiB), keeping `containerLogMaxFiles` (5).
async fn rotate_logs(k: Arc<Kubelet>, stop: CancellationToken) {
    const MAX_SIZE: u64 = 10 * 1024 * 1024;
    const MAX_FILES: usize = 5;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(LOG_ROTATE_PERIOD) => {}
            _ = stop.cancelled() => return,
        }
        let running: Vec<(String, String)> = k
            .observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flat_map(|v| v.running())
            .filter_map(|c| {
                let path = c.status.as_ref()?.log_path.clone();
                (!path.is_empty()).then(|| (c.id.clone(), path))
            })
            .collect();
        for (id, path) in running {
            let path = std::path::PathBuf::from(path);
            if let Err(e) =
                crate::logs::rotate_if_needed(&k.rt, &id, &path, MAX_SIZE, MAX_FILES).await
            {
                tracing::debug!(container = id, error = %e, "rotating a container log failed");
            }
        }
    }
}

async fn node_status_loop(
    k: Arc<Kubelet>,
    reg: node::Registration,
    mut current: Node,
    cni_layout: cni::Layout,
    stop: CancellationToken,
) {
    let mut last: Option<serde_json::Value> = None;
    let mut last_write = tokio::time::Instant::now();
    let api: Api<Node> = Api::all(k.client.clone());
    loop {
        // The pod network exists once the node has a podCIDR.
        if let Some(cidr) = current.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) {
            match cni::write(&cni_layout, cidr) {
                Ok(true) => tracing::info!(pod_cidr = cidr, "pod network configured"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "writing the CNI config failed"),
            }
        }
        let observed = node::observe(&k.rt).await;
        let status = node::status(&reg, &k.machine, &observed, current.status.as_ref());
        let meaningful = node::meaningful(&status);
        if last.as_ref() != Some(&meaningful) || last_write.elapsed() >= NODE_STATUS_REPORT {
            match node::patch_status(&k.client, &reg.name, &status).await {
                Ok(n) => {
                    current = n;
                    last = Some(meaningful);
                    last_write = tokio::time::Instant::now();
                }
                Err(e) => tracing::warn!(error = %e, "node status update failed"),
            }
        } else if let Ok(n) = api.get(&reg.name).await {
            current = n;
        }
        let period = if current
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_ref())
            .is_none()
            || !observed.network_ready
        {
            Duration::from_secs(1)
        } else {
            NODE_STATUS_PERIOD
        };
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn lease_loop(client: kube::Client, node: Node, stop: CancellationToken) {
    loop {
        if let Err(e) = node::renew_lease(&client, &node).await {
            tracing::warn!(error = %e, "renewing the node lease failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(LEASE_RENEW) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn retry_forever<T, F, Fut>(stop: &CancellationToken, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = kube::Result<T>>,
{
    let mut delay = Duration::from_millis(200);
    loop {
        match f().await {
            Ok(v) => return Some(v),
            Err(e) => tracing::warn!(error = %e, "node registration failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return None,
        }
        delay = (delay * 2).min(Duration::from_secs(7));
    }
}
