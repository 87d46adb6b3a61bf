//! Pod volumes, as the kubelet's volume manager and in-tree volume plugins:
//! every volume of a pod is set up under `<pods dir>/<uid>/volumes/<plugin>/
//! <name>` before its containers start (and refreshed on each sync), then
//! bind-mounted into containers through CRI mounts, with the pod's
//! `/etc/hosts` and each container's termination-message file.
//!
//! Plugins: emptyDir (disk, or tmpfs for `medium: Memory`), configMap,
//! secret, downwardAPI, projected (configMap/secret/downwardAPI/
//! serviceAccountToken), hostPath, persistentVolumeClaim and ephemeral
//! bound to hostPath/local PVs.

pub mod atomic_writer;
pub mod claims;
pub mod downward;
pub mod host_path;
pub mod hosts;
pub mod mount;
pub mod objects;
pub mod payload;
pub mod subpath;
pub mod termination;
pub mod token;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::api::core::v1::{Container, Pod, Volume, VolumeProjection};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use resources::validation::quantity::parse_quantity;

use crate::cri::api;
pub use objects::{ObjectCache, ObjectSource};
use payload::{mode_of, DEFAULT_MODE};
pub use termination::termination_message;

const EMPTY_DIR: &str = "kubernetes.io~empty-dir";
const CONFIG_MAP: &str = "kubernetes.io~configmap";
const SECRET: &str = "kubernetes.io~secret";
const DOWNWARD_API: &str = "kubernetes.io~downward-api";
const PROJECTED: &str = "kubernetes.io~projected";
const ETC_HOSTS: &str = "/etc/hosts";

/// A volume that cannot be set up yet; `message` is the FailedMount event
/// text (`MountVolume.SetUp failed for volume "x" : ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct VolumeError {
    pub volume: String,
    pub message: String,
}

impl VolumeError {
    fn setup(volume: &str, spec_name: &str, err: impl std::fmt::Display) -> Self {
        VolumeError {
            volume: volume.to_string(),
            message: format!("MountVolume.SetUp failed for volume {spec_name:?} : {err}"),
        }
    }
}

/// A set-up volume: its directory (or file) on the host, and whether the
/// plugin always mounts it read-only.
#[derive(Clone, Debug)]
struct Mounted {
    path: PathBuf,
    read_only: bool,
}

/// Sets up pod volumes and computes container mounts.
///
/// Calls for one pod must not overlap (the pod worker serializes them);
/// different pods may be set up concurrently.
pub struct VolumeManager {
    pods_dir: PathBuf,
    cluster_domain: String,
    objects: Arc<ObjectCache>,
    tokens: token::TokenManager,
    client: kube::Client,
    /// Secrets, downwardAPI and projected volumes on tmpfs (needs root).
    memory_backed: bool,
    node_allocatable: RwLock<BTreeMap<String, Quantity>>,
    pods: Mutex<HashMap<String, Arc<HashMap<String, Mounted>>>>,
}

impl VolumeManager {
    pub fn new(pods_dir: PathBuf, client: kube::Client, cluster_domain: String) -> Self {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        VolumeManager {
            pods_dir,
            cluster_domain,
            objects: Arc::new(ObjectCache::new(client.clone(), objects::DEFAULT_TTL)),
            tokens: token::TokenManager::new(client.clone()),
            client,
            memory_backed: root,
            node_allocatable: RwLock::new(BTreeMap::new()),
            pods: Mutex::new(HashMap::new()),
        }
    }

    /// Whether secret/downwardAPI/projected volumes go on tmpfs (default:
    /// when running as root). emptyDir `medium: Memory` always does.
    pub fn with_memory_backed_volumes(mut self, on: bool) -> Self {
        self.memory_backed = on;
        self
    }

    /// The ConfigMap/Secret cache, shared with [`crate::env::container_env`].
    pub fn objects(&self) -> &Arc<ObjectCache> {
        &self.objects
    }

    /// Node allocatable (for downward API limits and tmpfs sizes).
    pub fn set_node_allocatable(&self, allocatable: BTreeMap<String, Quantity>) {
        *self
            .node_allocatable
            .write()
            .unwrap_or_else(|p| p.into_inner()) = allocatable;
    }

    pub fn pod_dir(&self, pod_uid: &str) -> PathBuf {
        self.pods_dir.join(pod_uid)
    }

    /// Sets up every volume of the pod. Idempotent: called on each sync, it
    /// refreshes configMap/secret/downwardAPI/projected contents. All volumes
    /// are attempted; the first failure of a volume never set up before is
    /// returned (the FailedMount event; containers must not start yet).
    pub async fn setup(&self, pod: &Pod) -> Result<(), VolumeError> {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        if uid.is_empty() {
            return Err(VolumeError {
                volume: String::new(),
                message: "pod has no uid".into(),
            });
        }
        let previous = objects::lock(&self.pods).get(uid).cloned();
        if previous.is_none() {
            // A pod seen for the first time reads its objects fresh.
            self.invalidate_references(pod);
        }
        let pod_dir = self.pod_dir(uid);
        for dir in [pod_dir.clone(), pod_dir.join("volumes")] {
            mkdir(&dir, 0o750).map_err(|e| VolumeError {
                volume: String::new(),
                message: format!("error making pod data directories: {e}"),
            })?;
        }

        let mut mounted = HashMap::new();
        let mut first_error = None;
        for vol in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let known = previous.as_ref().and_then(|p| p.get(&vol.name));
            match self.setup_volume(pod, &pod_dir, vol, known).await {
                Ok(m) => {
                    mounted.insert(vol.name.clone(), m);
                }
                // A volume set up before keeps its last contents when a
                // refresh fails (e.g. its ConfigMap was deleted), as upstream.
                Err(e) => match known {
                    Some(k) => {
                        tracing::warn!(pod = uid, volume = %vol.name, error = %e.message, "volume refresh");
                        mounted.insert(vol.name.clone(), k.clone());
                    }
                    None => {
                        tracing::debug!(pod = uid, volume = %vol.name, error = %e.message, "volume setup");
                        first_error.get_or_insert(e);
                    }
                },
            }
        }
        objects::lock(&self.pods).insert(uid.to_string(), Arc::new(mounted));
        first_error.map_or(Ok(()), Err)
    }

    fn invalidate_references(&self, pod: &Pod) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let Some(spec) = pod.spec.as_ref() else {
            return;
        };
        for v in spec.volumes.iter().flatten() {
            if let Some(c) = &v.config_map {
                self.objects.invalidate_config_map(ns, &c.name);
            }
            if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) {
                self.objects.invalidate_secret(ns, s);
            }
            for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
                if let Some(c) = &src.config_map {
                    self.objects.invalidate_config_map(ns, &c.name);
                }
                if let Some(s) = &src.secret {
                    self.objects.invalidate_secret(ns, &s.name);
                }
            }
        }
        let containers = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten());
        for c in containers {
            for e in c.env_from.iter().flatten() {
                if let Some(r) = &e.config_map_ref {
                    self.objects.invalidate_config_map(ns, &r.name);
                }
                if let Some(r) = &e.secret_ref {
                    self.objects.invalidate_secret(ns, &r.name);
                }
            }
            for e in c.env.iter().flatten() {
                let Some(vf) = &e.value_from else { continue };
                if let Some(r) = &vf.config_map_key_ref {
                    self.objects.invalidate_config_map(ns, &r.name);
                }
                if let Some(r) = &vf.secret_key_ref {
                    self.objects.invalidate_secret(ns, &r.name);
                }
            }
        }
    }

    async fn setup_volume(
        &self,
        pod: &Pod,
        pod_dir: &Path,
        vol: &Volume,
        known: Option<&Mounted>,
    ) -> Result<Mounted, VolumeError> {
        let name = vol.name.as_str();
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let fs_group = pod
            .spec
            .as_ref()
            .and_then(|s| s.security_context.as_ref())
            .and_then(|s| s.fs_group)
            .map(|g| g as u32);
        let err = |e: String| VolumeError::setup(name, name, e);
        let dir_of = |plugin: &str| pod_dir.join("volumes").join(plugin).join(name);

        if let Some(ed) = &vol.empty_dir {
            let dir = dir_of(EMPTY_DIR);
            if known.is_none() {
                self.setup_empty_dir(
                    pod,
                    &dir,
                    ed.medium.as_deref(),
                    ed.size_limit.as_ref(),
                    fs_group,
                )
                .map_err(err)?;
            }
            return Ok(rw(dir));
        }
        if let Some(hp) = &vol.host_path {
            host_path::check_type(&hp.path, hp.type_.as_deref()).map_err(err)?;
            return Ok(rw(PathBuf::from(&hp.path)));
        }
        if let Some(src) = &vol.config_map {
            let optional = src.optional.unwrap_or(false);
            let cm = self.objects.config_map(ns, &src.name).await.map_err(err)?;
            if cm.is_none() && !optional {
                return Err(err(objects::not_found("configmap", &src.name)));
            }
            let mode = mode_of(src.default_mode, DEFAULT_MODE);
            let payload = payload::config_map(src.items.as_deref(), cm.as_deref(), mode, optional)
                .map_err(err)?;
            let dir = dir_of(CONFIG_MAP);
            self.prepare_dir(pod, &dir, false).map_err(err)?;
            atomic_writer::write(&dir, &payload, fs_group).map_err(|e| err(e.to_string()))?;
            return Ok(ro(dir));
        }
        if let Some(src) = &vol.secret {
            let optional = src.optional.unwrap_or(false);
            let secret_name = src.secret_name.as_deref().unwrap_or_default();
            let secret = self.objects.secret(ns, secret_name).await.map_err(err)?;
            if secret.is_none() && !optional {
                return Err(err(objects::not_found("secret", secret_name)));
            }
            let mode = mode_of(src.default_mode, DEFAULT_MODE);
            let payload = payload::secret(src.items.as_deref(), secret.as_deref(), mode, optional)
                .map_err(err)?;
            let dir = dir_of(SECRET);
            self.prepare_dir(pod, &dir, self.memory_backed)
                .map_err(err)?;
            atomic_writer::write(&dir, &payload, fs_group).map_err(|e| err(e.to_string()))?;
            return Ok(ro(dir));
        }
        if let Some(src) = &vol.downward_api {
            let mode = mode_of(src.default_mode, DEFAULT_MODE);
            let alloc = self.allocatable();
            let items = src.items.as_deref().unwrap_or_default();
            let payload = payload::downward_api(items, pod, mode, &alloc).map_err(err)?;
            let dir = dir_of(DOWNWARD_API);
            self.prepare_dir(pod, &dir, self.memory_backed)
                .map_err(err)?;
            atomic_writer::write(&dir, &payload, fs_group).map_err(|e| err(e.to_string()))?;
            return Ok(ro(dir));
        }
        if let Some(src) = &vol.projected {
            let mode = mode_of(src.default_mode, DEFAULT_MODE);
            let sources = src.sources.as_deref().unwrap_or_default();
            let payload = self
                .projected_payload(pod, name, sources, mode)
                .await
                .map_err(err)?;
            let dir = dir_of(PROJECTED);
            self.prepare_dir(pod, &dir, self.memory_backed)
                .map_err(err)?;
            atomic_writer::write(&dir, &payload, fs_group).map_err(|e| err(e.to_string()))?;
            return Ok(ro(dir));
        }
        let claim = match (&vol.persistent_volume_claim, &vol.ephemeral) {
            (Some(pvc), _) => Some((
                pvc.claim_name.clone(),
                pvc.read_only.unwrap_or(false),
                false,
            )),
            (None, Some(_)) => {
                let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
                Some((format!("{pod_name}-{name}"), false, true))
            }
            _ => None,
        };
        if let Some((claim, read_only, ephemeral)) = claim {
            if let Some(k) = known {
                return Ok(k.clone()); // bound claims do not move
            }
            return match claims::resolve(&self.client, pod, &claim, ephemeral).await {
                Ok(c) => Ok(Mounted {
                    path: PathBuf::from(c.path),
                    read_only,
                }),
                Err(e) => match e.pv {
                    Some(pv) => Err(VolumeError::setup(name, &pv, e.message)),
                    None => Err(VolumeError {
                        volume: name.to_string(),
                        message: format!(
                            "Unable to attach or mount volumes: unmounted volumes=[{name}], \
                             unattached volumes=[], failed to process volumes=[{name}]: {}",
                            e.message
                        ),
                    }),
                },
            };
        }
        Err(err("volume type is not supported on this node yet".into()))
    }

    fn allocatable(&self) -> BTreeMap<String, Quantity> {
        self.node_allocatable
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The contents of a projected volume; every failing source is reported.
    async fn projected_payload(
        &self,
        pod: &Pod,
        volume: &str,
        sources: &[VolumeProjection],
        default_mode: u32,
    ) -> Result<atomic_writer::Payload, String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mut out = atomic_writer::Payload::new();
        let mut errors = Vec::new();
        for src in sources {
            let part = if let Some(c) = &src.config_map {
                let optional = c.optional.unwrap_or(false);
                match self.objects.config_map(ns, &c.name).await {
                    Ok(None) if !optional => Err(objects::not_found("configmap", &c.name)),
                    Ok(cm) => payload::config_map(
                        c.items.as_deref(),
                        cm.as_deref(),
                        default_mode,
                        optional,
                    ),
                    Err(e) => Err(e),
                }
            } else if let Some(s) = &src.secret {
                let optional = s.optional.unwrap_or(false);
                match self.objects.secret(ns, &s.name).await {
                    Ok(None) if !optional => Err(objects::not_found("secret", &s.name)),
                    Ok(sec) => {
                        payload::secret(s.items.as_deref(), sec.as_deref(), default_mode, optional)
                    }
                    Err(e) => Err(e),
                }
            } else if let Some(d) = &src.downward_api {
                let items = d.items.as_deref().unwrap_or_default();
                payload::downward_api(items, pod, default_mode, &self.allocatable())
            } else if let Some(t) = &src.service_account_token {
                self.token_payload(pod, volume, t, default_mode).await
            } else if src.cluster_trust_bundle.is_some() {
                Err("clusterTrustBundle projections are not supported on this node yet".into())
            } else {
                Ok(atomic_writer::Payload::new())
            };
            match part {
                Ok(p) => out.extend(p),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(payload::aggregate(errors))
        }
    }

    async fn token_payload(
        &self,
        pod: &Pod,
        volume: &str,
        t: &k8s_openapi::api::core::v1::ServiceAccountTokenProjection,
        mode: u32,
    ) -> Result<atomic_writer::Payload, String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.as_deref())
            .filter(|s| !s.is_empty())
            .unwrap_or("default");
        let pod_ref = (
            pod.metadata.name.as_deref().unwrap_or_default(),
            pod.metadata.uid.as_deref().unwrap_or_default(),
        );
        let outcome = self
            .tokens
            .token(ns, sa, t.audience.as_deref(), t.expiration_seconds, pod_ref)
            .await?;
        let mut out = atomic_writer::Payload::new();
        match outcome {
            token::TokenOutcome::Token(tok) => {
                out.insert(
                    t.path.clone(),
                    atomic_writer::FileProjection {
                        data: tok.into_bytes(),
                        mode,
                    },
                );
            }
            token::TokenOutcome::NotServed => tracing::warn!(
                pod = %format!("{ns}/{}", pod_ref.0),
                volume,
                path = %t.path,
                "serviceAccountToken projection skipped: the API server does not serve serviceaccounts/token"
            ),
        }
        Ok(out)
    }

    /// Creates a volume directory (mode 0777 as emptyDir's wrapper does),
    /// on tmpfs when `memory`; falls back to disk when tmpfs is not allowed.
    fn prepare_dir(&self, pod: &Pod, dir: &Path, memory: bool) -> Result<(), String> {
        mkdir_all_mode(dir, 0o777)
            .map_err(|e| format!("mkdir {}: {}", dir.display(), host_path::os_text(&e)))?;
        if memory {
            let size = self.tmpfs_size(pod, None);
            if let Err(e) = mount::mount_tmpfs(dir, size) {
                if e.raw_os_error() != Some(libc::EPERM) {
                    return Err(format!(
                        "mount tmpfs on {}: {}",
                        dir.display(),
                        host_path::os_text(&e)
                    ));
                }
                tracing::debug!(dir = %dir.display(), "no tmpfs allowed, volume stays on disk");
            }
        }
        Ok(())
    }

    fn setup_empty_dir(
        &self,
        pod: &Pod,
        dir: &Path,
        medium: Option<&str>,
        size_limit: Option<&Quantity>,
        fs_group: Option<u32>,
    ) -> Result<(), String> {
        match medium.unwrap_or("") {
            "" => {
                mkdir_all_mode(dir, 0o777)
                    .map_err(|e| format!("mkdir {}: {}", dir.display(), host_path::os_text(&e)))?;
            }
            "Memory" => {
                mkdir_all_mode(dir, 0o777)
                    .map_err(|e| format!("mkdir {}: {}", dir.display(), host_path::os_text(&e)))?;
                mount::mount_tmpfs(dir, self.tmpfs_size(pod, size_limit)).map_err(|e| {
                    format!(
                        "mount tmpfs on {}: {}",
                        dir.display(),
                        host_path::os_text(&e)
                    )
                })?;
            }
            other => {
                return Err(format!(
                    "unsupported emptyDir medium {other:?} on this node"
                ))
            }
        }
        if let Some(gid) = fs_group {
            // Writable by the group, as SetVolumeOwnership for rw volumes.
            atomic_writer::set_group(dir, gid, 0o660)
                .map_err(|e| format!("chown {}: {}", dir.display(), host_path::os_text(&e)))?;
        }
        Ok(())
    }

    /// tmpfs size: node allocatable memory, lowered to the pod's memory
    /// limit and the volume's sizeLimit when those are smaller
    /// (`calculateEmptyDirMemorySize`). None = kernel default.
    fn tmpfs_size(&self, pod: &Pod, size_limit: Option<&Quantity>) -> Option<u64> {
        let bytes = |q: &Quantity| parse_quantity(&q.0).ok().map(|v| v.value());
        let mut size = self.allocatable().get("memory").and_then(bytes);
        let mut lower = |candidate: Option<i128>| {
            if let Some(c) = candidate.filter(|c| *c > 0) {
                if size.is_none_or(|s| c <= s) {
                    size = Some(c);
                }
            }
        };
        lower(pod_memory_limit(pod));
        lower(size_limit.and_then(bytes));
        size.filter(|s| *s > 0).map(|s| s as u64)
    }

    /// CRI mounts for one container: its volumeMounts (with subPath /
    /// subPathExpr expanded against `env`), `/etc/hosts`, and the
    /// termination-message file. `Err` is the CreateContainerConfigError
    /// message.
    pub fn mounts(
        &self,
        pod: &Pod,
        container: &Container,
        pod_ips: &[String],
        env: &[api::KeyValue],
    ) -> Result<Vec<api::Mount>, String> {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let pod_dir = self.pod_dir(uid);
        let state = objects::lock(&self.pods)
            .get(uid)
            .cloned()
            .unwrap_or_default();
        let spec = pod.spec.as_ref();
        let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
        let mut mount_hosts = !pod_ips.is_empty() || host_network;
        let mut out = Vec::new();
        for vm in container.volume_mounts.iter().flatten() {
            mount_hosts = mount_hosts && vm.mount_path != ETC_HOSTS;
            let Some(vol) = state.get(&vm.name) else {
                return Err(format!(
                    "cannot find volume {:?} to mount into container {:?}",
                    vm.name, container.name
                ));
            };
            let mut sub = vm.sub_path.clone().unwrap_or_default();
            if let Some(expr) = vm.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
                sub = expand_sub_path(expr, env)?;
            }
            let mut host = vol.path.clone();
            if !sub.is_empty() {
                subpath::validate(&sub)?;
                host = subpath::prepare(&vol.path, &sub, &vm.name, &container.name)?;
            }
            let read_only = vm.read_only.unwrap_or(false) || vol.read_only;
            out.push(api::Mount {
                container_path: absolute(&vm.mount_path),
                host_path: host.to_string_lossy().into_owned(),
                readonly: read_only,
                propagation: propagation(vm.mount_propagation.as_deref())? as i32,
                recursive_read_only: recursive_read_only(vm)?,
                ..Default::default()
            });
        }
        if mount_hosts {
            let file = pod_dir.join("etc-hosts");
            hosts::ensure(&file, pod, pod_ips, &self.cluster_domain)
                .map_err(|e| format!("open {}: {}", file.display(), host_path::os_text(&e)))?;
            out.push(api::Mount {
                container_path: ETC_HOSTS.into(),
                host_path: file.to_string_lossy().into_owned(),
                ..Default::default()
            });
        }
        if let Some(path) = container
            .termination_message_path
            .as_deref()
            .filter(|p| !p.is_empty())
        {
            match termination::create_file(&pod_dir, &container.name) {
                Ok(file) => out.push(api::Mount {
                    container_path: absolute(path),
                    host_path: file.to_string_lossy().into_owned(),
                    ..Default::default()
                }),
                // As upstream: a missing termination file is logged, not fatal.
                Err(e) => {
                    tracing::warn!(container = %container.name, error = %e, "termination-log file")
                }
            }
        }
        Ok(out)
    }

    /// Unmounts the pod's tmpfs volumes and removes `<pods dir>/<uid>`
    /// (call once the sandbox is gone). Refuses to delete anything while a
    /// mount below it remains.
    pub async fn cleanup(&self, pod_uid: &str) -> io::Result<()> {
        objects::lock(&self.pods).remove(pod_uid);
        self.tokens.forget_pod(pod_uid);
        if pod_uid.is_empty() || pod_uid.contains('/') || pod_uid.starts_with('.') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad pod uid"));
        }
        let dir = self.pod_dir(pod_uid);
        tokio::task::spawn_blocking(move || remove_pod_dir(&dir))
            .await
            .map_err(io::Error::other)?
    }

    /// UIDs of the pod directories on disk (to clean orphans after a restart).
    pub fn pod_dirs(&self) -> Vec<String> {
        let Ok(rd) = fs::read_dir(&self.pods_dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn remove_pod_dir(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for m in mount::mounts_under(dir)? {
        if let Err(e) = mount::unmount(&m) {
            tracing::warn!(path = %m.display(), error = %e, "unmounting pod volume");
        }
    }
    let left = mount::mounts_under(dir)?;
    if !left.is_empty() {
        return Err(io::Error::other(format!(
            "{} still mounted under {}",
            left[0].display(),
            dir.display()
        )));
    }
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rw(path: PathBuf) -> Mounted {
    Mounted {
        path,
        read_only: false,
    }
}

fn ro(path: PathBuf) -> Mounted {
    Mounted {
        path,
        read_only: true,
    }
}

fn mkdir(dir: &Path, mode: u32) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(mode).create(dir)
}

/// mkdir -p, then the exact mode on the last directory whatever the umask.
fn mkdir_all_mode(dir: &Path, mode: u32) -> io::Result<()> {
    mkdir(dir, 0o750)?;
    let meta = fs::metadata(dir)?;
    // A tmpfs root keeps its own (sticky) mode.
    if meta.mode() & 0o777 != mode && !mount::is_mount_point(dir)? {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// `MakeAbsolutePath` on Linux.
fn absolute(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// `ExpandContainerVolumeMounts`: every referenced variable must be set.
fn expand_sub_path(expr: &str, env: &[api::KeyValue]) -> Result<String, String> {
    let vars: HashMap<&str, &str> = env
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_str()))
        .collect();
    let missing = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let out = crate::env::expand(expr, &|name| match vars.get(name) {
        Some(v) if !v.is_empty() => Some((*v).to_string()),
        _ => {
            missing.borrow_mut().insert(name.to_string());
            Some(String::new())
        }
    });
    let missing = missing.into_inner();
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "missing value for {}",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ))
    }
}

fn propagation(mode: Option<&str>) -> Result<api::MountPropagation, String> {
    Ok(match mode {
        None | Some("None") => api::MountPropagation::PropagationPrivate,
        Some("HostToContainer") => api::MountPropagation::PropagationHostToContainer,
        Some("Bidirectional") => api::MountPropagation::PropagationBidirectional,
        Some(other) => return Err(format!("invalid MountPropagation mode: {other:?}")),
    })
}

/// containerd 1.6 has no recursive read-only mounts, so `Enabled` fails and
/// `IfPossible` is a plain read-only mount.
fn recursive_read_only(vm: &k8s_openapi::api::core::v1::VolumeMount) -> Result<bool, String> {
    let mode = match vm.recursive_read_only.as_deref() {
        None | Some("Disabled") => return Ok(false),
        Some(m) => m,
    };
    let prefix = "failed to resolve recursive read-only mode: ";
    if !vm.read_only.unwrap_or(false) {
        return Err(format!(
            "{prefix}volume {:?} requested recursive read-only mode, but it is not read-only",
            vm.name
        ));
    }
    if let Some(p) = vm.mount_propagation.as_deref().filter(|p| *p != "None") {
        return Err(format!(
            "{prefix}volume {:?} requested recursive read-only mode, but it is not compatible with propagation {p:?}",
            vm.name
        ));
    }
    match mode {
        "IfPossible" => Ok(false),
        "Enabled" => Err(format!(
            "{prefix}volume {:?} requested recursive read-only mode, but it is not supported by the runtime",
            vm.name
        )),
        other => Err(format!("{prefix}unknown recursive read-only mode {other:?}")),
    }
}

/// The pod's memory limit when every app container has one (the larger of
/// their sum and the largest init container limit), as the pod cgroup.
fn pod_memory_limit(pod: &Pod) -> Option<i128> {
    let spec = pod.spec.as_ref()?;
    let limit = |c: &Container| -> Option<i128> {
        let q = c.resources.as_ref()?.limits.as_ref()?.get("memory")?;
        parse_quantity(&q.0).ok().map(|q| q.value())
    };
    let mut sum = 0i128;
    for c in &spec.containers {
        sum += limit(c)?;
    }
    let init_max = spec
        .init_containers
        .iter()
        .flatten()
        .filter_map(limit)
        .max()
        .unwrap_or(0);
    Some(sum.max(init_max))
}

#[cfg(test)]
mod tests;
