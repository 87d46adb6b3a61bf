//! Images on the node: importing tarballs into containerd (as k3s does for
//! air-gapped installs), listing them, pulling through CRI with the kubelet's
//! imagePullPolicy, pull back-off, events and imagePullSecrets, and the
//! registry mirror configuration from a k3s-style `registries.yaml`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use client::events::{EventType, Recorder};
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod, Secret};
use serde::{Deserialize, Serialize};

use crate::cri::{self, api};

/// containerd namespace the CRI plugin uses.
pub const CRI_NAMESPACE: &str = "k8s.io";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("running ctr: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("importing {file}: {message}")]
    Import { file: PathBuf, message: String },
    #[error("CRI {call}: {status}")]
    Cri {
        call: &'static str,
        #[source]
        status: Box<tonic::Status>,
    },
    #[error("{path}: {source}")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

// ---------------------------------------------------------------------------
// Import of tarballs through `ctr`

/// What was imported from one tarball, so an agent restart skips it.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
struct Imported {
    size: u64,
    mtime_ns: i128,
    names: Vec<String>,
}

const STATE_FILE: &str = ".skiff-imported.json";

fn is_tarball(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.ends_with(".tar") || name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

fn stamp(meta: &std::fs::Metadata) -> (u64, i128) {
    use std::os::unix::fs::MetadataExt;
    (
        meta.len(),
        meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
    )
}

/// Imports every `*.tar` / `*.tar.gz` in `dir` into containerd's `k8s.io`
/// namespace (unpacked for CRI) and returns the image names they hold.
/// Tarballs already imported with the same size and mtime, whose images are
/// all still present, are skipped; the record lives in `dir/.skiff-imported.json`.
/// A missing dir is no images.
pub async fn import_dir(socket: &Path, dir: &Path) -> Result<Vec<String>, ImageError> {
    let mut files = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let path = entry.map_err(io_err(dir))?.path();
                if is_tarball(&path) && path.is_file() {
                    files.push(path);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    }
    files.sort();
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let state_path = dir.join(STATE_FILE);
    let old: BTreeMap<String, Imported> = std::fs::read(&state_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let present = ctr_image_names(socket).await.unwrap_or_default();
    let mut state = BTreeMap::new();
    let mut names = Vec::new();
    for file in files {
        let meta = std::fs::metadata(&file).map_err(io_err(&file))?;
        let (size, mtime_ns) = stamp(&meta);
        let key = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let seen = old.get(&key).filter(|i| {
            i.size == size
                && i.mtime_ns == mtime_ns
                && !i.names.is_empty()
                && i.names.iter().all(|n| present.contains(n))
        });
        let imported = match seen {
            Some(i) => {
                tracing::debug!(file = %file.display(), "image tarball already imported");
                i.clone()
            }
            None => {
                let start = Instant::now();
                let got = import_file(socket, &file).await?;
                tracing::info!(file = %file.display(), images = ?got, elapsed = ?start.elapsed(), "imported image tarball");
                Imported {
                    size,
                    mtime_ns,
                    names: got,
                }
            }
        };
        for name in &imported.names {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        state.insert(key, imported);
    }
    if state != old {
        // Best effort: a read-only images dir only costs re-imports.
        if let Ok(bytes) = serde_json::to_vec_pretty(&state) {
            let tmp = dir.join(format!("{STATE_FILE}.tmp"));
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &state_path);
            }
        }
    }
    Ok(names)
}

/// Imports one tarball (OCI layout or `docker save` archive, optionally
/// gzipped) with `ctr -a SOCKET -n k8s.io images import`; returns its image
/// names. ctr unpacks into the default (overlayfs) snapshotter, which CRI
/// needs, and CRI sees the images at once.
pub async fn import_file(socket: &Path, file: &Path) -> Result<Vec<String>, ImageError> {
    let gzipped = {
        use std::io::Read;
        let mut magic = [0u8; 2];
        let mut f = std::fs::File::open(file).map_err(io_err(file))?;
        f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b]
    };
    let mut cmd = tokio::process::Command::new("ctr");
    cmd.arg("-a")
        .arg(socket)
        .args(["-n", CRI_NAMESPACE, "images", "import"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // ctr reads only plain tar: feed it a gunzipped stream on stdin.
    let mut gunzip = None;
    if gzipped {
        let mut child = tokio::process::Command::new("gzip")
            .arg("-dc")
            .arg(file)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(ImageError::Spawn)?;
        let stdout: Stdio = child
            .stdout
            .take()
            .ok_or_else(|| ImageError::Import {
                file: file.to_path_buf(),
                message: "gzip has no stdout".into(),
            })?
            .try_into()
            .map_err(ImageError::Spawn)?;
        cmd.arg("-").stdin(stdout);
        gunzip = Some(child);
    } else {
        cmd.arg(file).stdin(Stdio::null());
    }
    let out = cmd.output().await.map_err(ImageError::Spawn)?;
    if let Some(mut g) = gunzip {
        let _ = g.wait().await;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(ImageError::Import {
            file: file.to_path_buf(),
            message: format!("{} {}", stderr.trim(), stdout.trim())
                .trim()
                .to_string(),
        });
    }
    Ok(parse_ctr_import(&stdout))
}

/// Image names from ctr's `unpacking NAME (sha256:...)...done` lines.
fn parse_ctr_import(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("unpacking "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

async fn ctr_image_names(socket: &Path) -> Result<HashSet<String>, ImageError> {
    let out = tokio::process::Command::new("ctr")
        .arg("-a")
        .arg(socket)
        .args(["-n", CRI_NAMESPACE, "images", "ls", "-q"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(ImageError::Spawn)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

// ---------------------------------------------------------------------------
// Listing

/// One image as CRI reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size: u64,
}

/// All images the runtime has (CRI ListImages), sorted by first name.
pub async fn list(rt: &cri::Runtime) -> Result<Vec<ImageInfo>, ImageError> {
    let resp = rt
        .images
        .clone()
        .list_images(api::ListImagesRequest { filter: None })
        .await
        .map_err(|s| ImageError::Cri {
            call: "ListImages",
            status: Box::new(s),
        })?
        .into_inner();
    let mut images: Vec<ImageInfo> = resp
        .images
        .into_iter()
        .map(|i| ImageInfo {
            id: i.id,
            repo_tags: i.repo_tags,
            repo_digests: i.repo_digests,
            size: i.size,
        })
        .collect();
    images.sort_by(|a, b| a.repo_tags.first().cmp(&b.repo_tags.first()));
    Ok(images)
}

/// `containerStatuses[].imageID` for an image: its first repo digest
/// (`localhost/busybox@sha256:...`, what containerd also reports as a
/// container's `image_ref`), else its id.
pub fn image_id(image: &api::Image) -> String {
    image
        .repo_digests
        .first()
        .cloned()
        .unwrap_or_else(|| image.id.clone())
}

// ---------------------------------------------------------------------------
// Image references (github.com/distribution/reference grammar)

/// A parsed, normalized image reference (`nginx` → `docker.io`,
/// `library/nginx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// `domain/path`, what credentials are matched against.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
}

static REFERENCE: LazyLock<regex::Regex> = LazyLock::new(|| {
    let alnum = "[a-z0-9]+";
    let sep = "(?:[._]|__|[-]+)";
    let component = format!("{alnum}(?:{sep}{alnum})*");
    let domain_part = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let host = format!(r"(?:{domain_part}(?:\.{domain_part})*|\[[a-fA-F0-9:]+\])");
    let domain = format!("{host}(?::[0-9]+)?");
    let name = format!("(?:{domain}/)?{component}(?:/{component})*");
    let tag = r"[\w][\w.-]{0,127}";
    let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    let pattern = format!("^({name})(?::({tag}))?(?:@({digest}))?$");
    regex::Regex::new(&pattern).unwrap_or_else(|e| panic!("reference regex: {e}"))
});

static HEX64: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new("^[a-f0-9]{64}$").unwrap_or_else(|e| panic!("hex regex: {e}"))
});

/// Parses like `reference.ParseNormalizedNamed`, with its error texts.
pub fn parse_reference(s: &str) -> Result<Reference, String> {
    if HEX64.is_match(s) {
        return Err(format!(
            "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        ));
    }
    // Split the domain off as docker does: a first component is a domain only
    // if it has a dot or a port, or is `localhost`, or has uppercase letters.
    let (mut domain, mut remainder) = match s.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), s.to_string()),
    };
    if domain == "index.docker.io" {
        domain = "docker.io".into();
    }
    if domain == "docker.io" && !remainder.contains('/') {
        remainder = format!("library/{remainder}");
    }
    // Only the name before the first ':' must be lowercase (tags may not).
    let remote_name = remainder.split(':').next().unwrap_or_default();
    if remote_name.to_lowercase() != remote_name {
        return Err(format!(
            "invalid reference format: repository name ({remote_name}) must be lowercase"
        ));
    }
    let full = format!("{domain}/{remainder}");
    let Some(caps) = REFERENCE.captures(&full) else {
        if REFERENCE.is_match(&full.to_lowercase()) {
            return Err("repository name must be lowercase".into());
        }
        return Err("invalid reference format".into());
    };
    let name = caps.get(1).map_or("", |m| m.as_str());
    if name.len() > 255 {
        return Err("repository name must not be more than 255 characters".into());
    }
    let path = name
        .strip_prefix(&format!("{domain}/"))
        .unwrap_or(name)
        .to_string();
    Ok(Reference {
        domain,
        path,
        tag: caps.get(2).map(|m| m.as_str().to_string()),
        digest: caps.get(3).map(|m| m.as_str().to_string()),
    })
}

/// The image as written plus `:latest` when it has neither tag nor digest
/// (not fully qualified: CRI normalizes names itself).
pub fn apply_default_tag(image: &str) -> Result<String, String> {
    let r = parse_reference(image)
        .map_err(|e| format!("couldn't parse image reference {image:?}: {e}"))?;
    if r.tag.is_none() && r.digest.is_none() {
        Ok(format!("{image}:latest"))
    } else {
        Ok(image.to_string())
    }
}

/// The policy in effect: the container's, else the API default (`Always` for
/// `:latest` or no tag, else `IfNotPresent`).
pub fn pull_policy(container: &Container) -> &'static str {
    match container.image_pull_policy.as_deref() {
        Some("Always") => "Always",
        Some("Never") => "Never",
        Some("IfNotPresent") => "IfNotPresent",
        _ => {
            let image = container.image.as_deref().unwrap_or_default();
            match parse_reference(image) {
                Ok(r) if r.digest.is_some() && r.tag.is_none() => "IfNotPresent",
                Ok(r) if r.tag.as_deref().unwrap_or("latest") != "latest" => "IfNotPresent",
                _ => "Always",
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Pull back-off (client-go flowcontrol.Backoff semantics)

pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct Backoff {
    entries: HashMap<String, (Duration, Instant)>,
}

impl Backoff {
    /// Whether `key` failed less than its current back-off before `now`.
    pub fn in_backoff(&self, key: &str, now: Instant) -> bool {
        self.entries.get(key).is_some_and(|(backoff, last)| {
            let since = now.saturating_duration_since(*last);
            since <= 2 * BACKOFF_MAX && since < *backoff
        })
    }

    /// Records a failure: the first (or first after a long quiet) waits the
    /// initial period, each next one twice the last, up to the max.
    pub fn next(&mut self, key: &str, now: Instant) {
        let entry = self
            .entries
            .entry(key.to_string())
            .or_insert((Duration::ZERO, now));
        let expired = now.saturating_duration_since(entry.1) > 2 * BACKOFF_MAX;
        entry.0 = if entry.0.is_zero() || expired {
            BACKOFF_INITIAL
        } else {
            (entry.0 * 2).min(BACKOFF_MAX)
        };
        entry.1 = now;
    }

    /// Drops entries quiet for long enough to have expired.
    pub fn gc(&mut self, now: Instant) {
        self.entries
            .retain(|_, (_, last)| now.saturating_duration_since(*last) <= 2 * BACKOFF_MAX);
    }
}

// ---------------------------------------------------------------------------
// Pull credentials (pkg/credentialprovider keyring semantics)

#[derive(Deserialize, Default)]
struct DockerConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, DockerConfigEntry>,
}

#[derive(Deserialize, Default, Clone)]
struct DockerConfigEntry {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
}

/// Credentials from imagePullSecrets, keyed as the kubelet keys them
/// (`host[:port][/path]`), in the kubelet's lookup order.
#[derive(Debug, Default, Clone)]
pub struct Keyring {
    entries: Vec<(String, api::AuthConfig)>,
}

const DEFAULT_REGISTRY_HOST: &str = "index.docker.io";

/// The keyring key for a config location: scheme dropped, `/v1/` or `/v2/`
/// path prefixes mean the host itself.
fn keyring_key(location: &str) -> String {
    let rest = location
        .strip_prefix("https://")
        .or_else(|| location.strip_prefix("http://"))
        .unwrap_or(location);
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let path = if path.starts_with("/v1/") || path.starts_with("/v2/") {
        &path[3..]
    } else {
        path
    };
    if path.is_empty() || path == "/" {
        host.to_string()
    } else {
        format!("{host}{path}")
    }
}

impl Keyring {
    /// Reads `kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg`
    /// secrets; other types are ignored.
    pub fn from_secrets(secrets: &[Secret]) -> Result<Keyring, String> {
        let mut entries = Vec::new();
        for secret in secrets {
            let data = secret.data.clone().unwrap_or_default();
            let parsed: BTreeMap<String, DockerConfigEntry> = match secret.type_.as_deref() {
                Some("kubernetes.io/dockerconfigjson") => match data.get(".dockerconfigjson") {
                    Some(b) if !b.0.is_empty() => {
                        serde_json::from_slice::<DockerConfigJson>(&b.0)
                            .map_err(|e| format!("secret {:?}: {e}", secret.metadata.name))?
                            .auths
                    }
                    _ => continue,
                },
                Some("kubernetes.io/dockercfg") => match data.get(".dockercfg") {
                    Some(b) if !b.0.is_empty() => serde_json::from_slice(&b.0)
                        .map_err(|e| format!("secret {:?}: {e}", secret.metadata.name))?,
                    _ => continue,
                },
                _ => continue,
            };
            for (location, entry) in parsed {
                let (mut username, mut password) = (entry.username, entry.password);
                if !entry.auth.is_empty() {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(entry.auth.trim())
                        .map_err(|e| format!("secret {:?}: auth: {e}", secret.metadata.name))?;
                    let text = String::from_utf8_lossy(&decoded);
                    let (u, p) = text.split_once(':').ok_or_else(|| {
                        format!("secret {:?}: auth: no colon", secret.metadata.name)
                    })?;
                    username = u.to_string();
                    password = p.to_string();
                }
                let auth = api::AuthConfig {
                    username,
                    password,
                    ..Default::default()
                };
                entries.push((keyring_key(&location), auth));
            }
        }
        // Keys in reverse lexicographic order, as the kubelet's index (so
        // `host/path` comes before `host`).
        entries.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(Keyring { entries })
    }

    /// Every credential whose key matches `repository` (`domain/path`),
    /// then the default registry's for Docker Hub images.
    pub fn lookup(&self, repository: &str) -> Vec<api::AuthConfig> {
        let found: Vec<_> = self
            .entries
            .iter()
            .filter(|(k, _)| urls_match(k, repository))
            .map(|(_, a)| a.clone())
            .collect();
        if !found.is_empty() {
            return found;
        }
        if is_default_registry(repository) {
            return self
                .entries
                .iter()
                .filter(|(k, _)| k == DEFAULT_REGISTRY_HOST)
                .map(|(_, a)| a.clone())
                .collect();
        }
        Vec::new()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn is_default_registry(image: &str) -> bool {
    match image.split_once('/') {
        None => !image.is_empty(),
        Some(("", _)) => false,
        Some((first, _)) => {
            first == "docker.io" || first == "index.docker.io" || !first.contains(['.', ':'])
        }
    }
}

/// `host[:port]` and path of a schemeless URL.
fn split_url(s: &str) -> (Vec<&str>, &str, &str) {
    let (authority, path) = match s.find('/') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, p),
        _ => (authority, ""),
    };
    (host.split('.').collect(), port, path)
}

/// A keyring key (with `*` globs per host label) against a repository.
fn urls_match(glob: &str, target: &str) -> bool {
    let (g_parts, g_port, g_path) = split_url(glob);
    let (t_parts, t_port, t_path) = split_url(target);
    g_port == t_port
        && g_parts.len() == t_parts.len()
        && t_path.starts_with(g_path)
        && g_parts.iter().zip(&t_parts).all(|(g, t)| glob_match(g, t))
}

/// `filepath.Match` for one host label: `*` and `?`.
fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some((b'?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

// ---------------------------------------------------------------------------
// Ensuring a container's image (the kubelet's image manager)

/// Why a container's image is not there: `reason` is the container's
/// waiting reason (`ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull`,
/// `InvalidImageName`, `ImageInspectError`), `message` its waiting message.
/// The pod worker also records a `Failed` event `Error: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct ImagePullError {
    pub reason: &'static str,
    pub message: String,
}

pub const ERR_IMAGE_PULL: &str = "ErrImagePull";
pub const IMAGE_PULL_BACK_OFF: &str = "ImagePullBackOff";
pub const ERR_IMAGE_NEVER_PULL: &str = "ErrImageNeverPull";
pub const INVALID_IMAGE_NAME: &str = "InvalidImageName";
pub const IMAGE_INSPECT_ERROR: &str = "ImageInspectError";

/// Pulls images for pods as the kubelet does. Cheap to clone.
#[derive(Clone)]
pub struct ImageManager {
    rt: cri::Runtime,
    recorder: Option<Recorder>,
    backoff: Arc<Mutex<Backoff>>,
    /// Back-off key → the last pull error, for the back-off message.
    last_error: Arc<Mutex<HashMap<String, String>>>,
}

/// Go's `status.Error(...).Error()` text: the kubelet shows CRI errors so.
pub fn grpc_error_text(status: &tonic::Status) -> String {
    use tonic::Code;
    let code = match status.code() {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    };
    format!("rpc error: code = {code} desc = {}", status.message())
}

/// Go's `time.Duration.String()` for a duration truncated to milliseconds
/// (`313ms`, `1.594s`, `1m2.5s`), as in the `Pulled` event.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut seconds = s.to_string();
    if frac > 0 {
        seconds = format!("{s}.{frac:03}").trim_end_matches('0').to_string();
    }
    match (h, m) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `involvedObject` for a container's events: the pod with the container's
/// field path (`spec.containers{web}`), as the kubelet's container refs.
pub fn container_reference(pod: &Pod, container: &Container) -> ObjectReference {
    let spec = pod.spec.as_ref();
    let is_in = |list: Option<&Vec<Container>>| {
        list.is_some_and(|l| l.iter().any(|c| c.name == container.name))
    };
    let field = if is_in(spec.map(|s| &s.containers)) {
        "spec.containers"
    } else if is_in(spec.and_then(|s| s.init_containers.as_ref())) {
        "spec.initContainers"
    } else {
        "spec.ephemeralContainers"
    };
    let mut r = client::events::reference(pod);
    r.field_path = Some(format!("{field}{{{}}}", container.name));
    r
}

impl ImageManager {
    /// Takes a `Recorder` (or `Some`/`None` of one).
    pub fn new(rt: cri::Runtime, recorder: impl Into<Option<Recorder>>) -> ImageManager {
        ImageManager {
            recorder: recorder.into(),
            ..ImageManager::without_events(rt)
        }
    }

    /// A manager that only logs its events (tools, tests).
    pub fn without_events(rt: cri::Runtime) -> ImageManager {
        ImageManager {
            rt,
            recorder: None,
            backoff: Default::default(),
            last_error: Default::default(),
        }
    }

    fn event(&self, obj: &ObjectReference, kind: EventType, reason: &str, message: String) {
        tracing::debug!(pod = ?obj.name, reason, %message, "image event");
        if let Some(r) = &self.recorder {
            r.record(obj.clone(), kind, reason, "", message);
        }
    }

    /// The image's id if the runtime has it (CRI ImageStatus).
    async fn image_status(&self, image: &str) -> Result<Option<api::Image>, tonic::Status> {
        let resp = self
            .rt
            .images
            .clone()
            .image_status(api::ImageStatusRequest {
                image: Some(api::ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await?
            .into_inner();
        Ok(resp.image.filter(|i| !i.id.is_empty()))
    }

    /// Makes sure the container's image is present, honoring its
    /// imagePullPolicy, pull back-off and the pod's pull secrets, and records
    /// the kubelet's events on the pod. Returns the image ref (id) to put in
    /// CreateContainer's `image.image`.
    pub async fn ensure_image(
        &self,
        pod: &Pod,
        container: &Container,
        pull_secrets: &[Secret],
    ) -> Result<String, ImagePullError> {
        let obj = container_reference(pod, container);
        let requested = container.image.clone().unwrap_or_default();
        let fail = |reason: &'static str, message: String| ImagePullError { reason, message };

        let image = match apply_default_tag(&requested) {
            Ok(i) => i,
            Err(e) => {
                let msg = format!("Failed to apply default image tag {requested:?}: {e}");
                self.event(&obj, EventType::Warning, "InspectFailed", msg.clone());
                return Err(fail(INVALID_IMAGE_NAME, msg));
            }
        };
        let policy = pull_policy(container);
        if policy != "Always" {
            match self.image_status(&image).await {
                Ok(Some(found)) => {
                    let msg = format!("Container image {requested:?} already present on machine");
                    self.event(&obj, EventType::Normal, "Pulled", msg);
                    return Ok(found.id);
                }
                Ok(None) if policy == "Never" => {
                    let msg = format!(
                        "Container image {requested:?} is not present with pull policy of Never"
                    );
                    self.event(&obj, EventType::Warning, "ErrImageNeverPull", msg.clone());
                    return Err(fail(ERR_IMAGE_NEVER_PULL, msg));
                }
                Ok(None) => {}
                Err(status) => {
                    // Upstream quotes the (still empty) image ref here.
                    let msg = format!("Failed to inspect image \"\": {}", grpc_error_text(&status));
                    self.event(&obj, EventType::Warning, "InspectFailed", msg.clone());
                    return Err(fail(IMAGE_INSPECT_ERROR, msg));
                }
            }
        }

        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = format!("{uid}_{requested}");
        let in_backoff = self
            .backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .in_backoff(&key, Instant::now());
        if in_backoff {
            let mut msg = format!("Back-off pulling image {requested:?}");
            self.event(&obj, EventType::Normal, "BackOff", msg.clone());
            if let Some(prev) = self.lock_last_error().get(&key) {
                msg = format!("{msg}: {prev}");
            }
            return Err(fail(IMAGE_PULL_BACK_OFF, msg));
        }
        self.lock_last_error().remove(&key);

        let repository = parse_reference(&image)
            .map(|r| r.repository())
            .unwrap_or_default();
        let creds = match Keyring::from_secrets(pull_secrets) {
            Ok(k) => k.lookup(&repository),
            Err(e) => return Err(fail(ERR_IMAGE_PULL, e)),
        };

        self.event(
            &obj,
            EventType::Normal,
            "Pulling",
            format!("Pulling image {requested:?}"),
        );
        let start = Instant::now();
        match self.pull(&image, creds).await {
            Ok((image_ref, pull_time)) => {
                let size = match self.image_status(&image_ref).await {
                    Ok(Some(i)) => i.size,
                    _ => 0,
                };
                let msg = format!(
                    "Successfully pulled image {requested:?} in {} ({} including waiting). Image size: {size} bytes.",
                    go_duration(pull_time),
                    go_duration(start.elapsed()),
                );
                self.event(&obj, EventType::Normal, "Pulled", msg);
                self.backoff
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .gc(Instant::now());
                Ok(image_ref)
            }
            Err(err) => {
                self.event(
                    &obj,
                    EventType::Warning,
                    "Failed",
                    format!("Failed to pull image {requested:?}: {err}"),
                );
                self.backoff
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .next(&key, Instant::now());
                self.lock_last_error()
                    .insert(key, format!("{ERR_IMAGE_PULL}: {err}"));
                Err(fail(ERR_IMAGE_PULL, err))
            }
        }
    }

    fn lock_last_error(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// CRI PullImage, once per matching credential until one works (or once
    /// without any). Returns the image ref and the time the pull took.
    async fn pull(
        &self,
        image: &str,
        creds: Vec<api::AuthConfig>,
    ) -> Result<(String, Duration), String> {
        let attempts: Vec<Option<api::AuthConfig>> = if creds.is_empty() {
            vec![None]
        } else {
            creds.into_iter().map(Some).collect()
        };
        let mut errors = Vec::new();
        for auth in attempts {
            let start = Instant::now();
            let result = self
                .rt
                .images
                .clone()
                .pull_image(api::PullImageRequest {
                    image: Some(api::ImageSpec {
                        image: image.to_string(),
                        ..Default::default()
                    }),
                    auth,
                    sandbox_config: None,
                })
                .await;
            match result {
                Ok(resp) => return Ok((resp.into_inner().image_ref, start.elapsed())),
                Err(status) => errors.push(grpc_error_text(&status)),
            }
        }
        // utilerrors.NewAggregate's text.
        Err(match errors.len() {
            1 => errors.remove(0),
            _ => format!("[{}]", errors.join(", ")),
        })
    }
}

// ---------------------------------------------------------------------------
// Registry mirrors and credentials (k3s registries.yaml → containerd config)

#[derive(Deserialize, Default, Debug)]
struct RegistriesYaml {
    #[serde(default)]
    mirrors: BTreeMap<String, Mirror>,
    #[serde(default)]
    configs: BTreeMap<String, RegistryConfig>,
}

#[derive(Deserialize, Default, Debug)]
struct Mirror {
    #[serde(default)]
    endpoint: Vec<String>,
}

#[derive(Deserialize, Default, Debug)]
struct RegistryConfig {
    auth: Option<RegistryAuth>,
    tls: Option<RegistryTls>,
}

#[derive(Deserialize, Default, Debug)]
struct RegistryAuth {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
    #[serde(default)]
    identity_token: String,
}

#[derive(Deserialize, Default, Debug)]
struct RegistryTls {
    #[serde(default)]
    cert_file: String,
    #[serde(default)]
    key_file: String,
    #[serde(default)]
    ca_file: String,
    #[serde(default)]
    insecure_skip_verify: bool,
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `host[:port]` of an endpoint URL or bare host.
fn endpoint_host(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// hosts.toml lines for TLS settings (if any), each after `indent`.
fn tls_lines(tls: Option<&RegistryTls>, indent: &str) -> String {
    let Some(t) = tls else {
        return String::new();
    };
    let mut s = String::new();
    if t.insecure_skip_verify {
        s.push_str(&format!("{indent}skip_verify = true\n"));
    }
    if !t.ca_file.is_empty() {
        s.push_str(&format!("{indent}ca = {}\n", toml_str(&t.ca_file)));
    }
    if !t.cert_file.is_empty() && !t.key_file.is_empty() {
        s.push_str(&format!(
            "{indent}client = [[{}, {}]]\n",
            toml_str(&t.cert_file),
            toml_str(&t.key_file)
        ));
    }
    s
}

/// The upstream server containerd falls back to for a registry name.
fn default_server(registry: &str) -> String {
    match registry {
        "docker.io" => "https://registry-1.docker.io".into(),
        _ => format!("https://{registry}"),
    }
}

/// Reads a k3s-style `registries.yaml` and returns the TOML to append to
/// containerd's config: `config_path = "<out_dir>/certs.d"` for the CRI
/// registry plus per-host `auth` sections; writes
/// `<out_dir>/certs.d/<registry>/hosts.toml` for every mirror and TLS-configured
/// registry (stale ones removed). A missing file means no mirrors: "".
pub fn registries_toml(registries_yaml: &Path, out_dir: &Path) -> Result<String, ImageError> {
    let text = match std::fs::read_to_string(registries_yaml) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(io_err(registries_yaml)(e)),
    };
    let reg: RegistriesYaml = if text.trim().is_empty() {
        RegistriesYaml::default()
    } else {
        serde_yaml::from_str(&text).map_err(|source| ImageError::Yaml {
            path: registries_yaml.to_path_buf(),
            source,
        })?
    };
    let certs = out_dir.join("certs.d");
    if certs.exists() {
        std::fs::remove_dir_all(&certs).map_err(io_err(&certs))?;
    }
    std::fs::create_dir_all(&certs).map_err(io_err(&certs))?;

    // Config keys may be written with a scheme; TLS/auth apply per host.
    let config_for = |host: &str| -> Option<&RegistryConfig> {
        reg.configs
            .iter()
            .find(|(k, _)| endpoint_host(k) == host)
            .map(|(_, c)| c)
    };
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for (registry, mirror) in &reg.mirrors {
        // containerd 1.6 has no wildcard dir; `_default` is what 1.7 reads.
        let dir = if registry == "*" {
            "_default"
        } else {
            registry.as_str()
        };
        let mut toml = String::new();
        if registry != "*" {
            toml.push_str(&format!(
                "server = {}\n",
                toml_str(&default_server(registry))
            ));
            if let Some(tls) = config_for(registry).and_then(|c| c.tls.as_ref()) {
                toml.push_str(&tls_lines(Some(tls), ""));
            }
        }
        for endpoint in &mirror.endpoint {
            let url = if endpoint.contains("://") {
                endpoint.clone()
            } else {
                format!("https://{endpoint}")
            };
            toml.push_str(&format!("\n[host.{}]\n", toml_str(&url)));
            toml.push_str("  capabilities = [\"pull\", \"resolve\"]\n");
            toml.push_str(&tls_lines(
                config_for(endpoint_host(&url)).and_then(|c| c.tls.as_ref()),
                "  ",
            ));
        }
        files.insert(dir.to_string(), toml);
    }
    for (key, config) in &reg.configs {
        let host = endpoint_host(key);
        if files.contains_key(host) || config.tls.is_none() {
            continue;
        }
        let scheme = if key.starts_with("http://") {
            "http"
        } else {
            "https"
        };
        let mut toml = format!("server = {}\n", toml_str(&format!("{scheme}://{host}")));
        toml.push_str(&tls_lines(config.tls.as_ref(), ""));
        files.insert(host.to_string(), toml);
    }
    for (dir, toml) in &files {
        let d = certs.join(dir);
        std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        let f = d.join("hosts.toml");
        std::fs::write(&f, toml).map_err(io_err(&f))?;
    }

    let mut out = format!(
        "\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = {}\n",
        toml_str(&certs.to_string_lossy())
    );
    for (key, config) in &reg.configs {
        let Some(auth) = &config.auth else { continue };
        out.push_str(&format!(
            "\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.{}.auth]\n",
            toml_str(endpoint_host(key))
        ));
        for (field, value) in [
            ("username", &auth.username),
            ("password", &auth.password),
            ("auth", &auth.auth),
            ("identitytoken", &auth.identity_token),
        ] {
            if !value.is_empty() {
                out.push_str(&format!("  {field} = {}\n", toml_str(value)));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    #[test]
    fn references_parse_and_normalize() {
        let r = parse_reference("nginx").unwrap();
        assert_eq!(
            (r.domain.as_str(), r.path.as_str(), r.tag),
            ("docker.io", "library/nginx", None)
        );
        let r = parse_reference("localhost/skiff-demo:0.1").unwrap();
        assert_eq!(
            (r.domain.as_str(), r.path.as_str(), r.tag.as_deref()),
            ("localhost", "skiff-demo", Some("0.1"))
        );
        let r = parse_reference("127.0.0.1:5000/team/app@sha256:0123456789abcdef0123456789abcdef")
            .unwrap();
        assert_eq!(r.repository(), "127.0.0.1:5000/team/app");
        assert!(r.digest.is_some());
        assert_eq!(
            parse_reference("Nginx").unwrap_err(),
            "invalid reference format: repository name (library/Nginx) must be lowercase"
        );
        assert_eq!(
            parse_reference("nginx:").unwrap_err(),
            "invalid reference format"
        );
        assert_eq!(
            parse_reference("a b").unwrap_err(),
            "invalid reference format"
        );
        assert_eq!(apply_default_tag("busybox").unwrap(), "busybox:latest");
        assert_eq!(
            apply_default_tag("localhost/busybox:1.35").unwrap(),
            "localhost/busybox:1.35"
        );
        assert_eq!(
            apply_default_tag("bad//name").unwrap_err(),
            "couldn't parse image reference \"bad//name\": invalid reference format"
        );
    }

    fn container(image: &str, policy: Option<&str>) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            image_pull_policy: policy.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn pull_policy_defaults_like_the_api() {
        assert_eq!(pull_policy(&container("nginx", None)), "Always");
        assert_eq!(pull_policy(&container("nginx:latest", None)), "Always");
        assert_eq!(pull_policy(&container("nginx:1.27", None)), "IfNotPresent");
        assert_eq!(
            pull_policy(&container(
                "nginx@sha256:0123456789abcdef0123456789abcdef",
                None
            )),
            "IfNotPresent"
        );
        assert_eq!(
            pull_policy(&container("nginx:1.27", Some("Always"))),
            "Always"
        );
        assert_eq!(pull_policy(&container("nginx", Some("Never"))), "Never");
    }

    #[test]
    fn backoff_doubles_to_five_minutes_and_expires() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert!(!b.in_backoff("k", t0));
        b.next("k", t0);
        assert!(b.in_backoff("k", t0 + Duration::from_secs(9)));
        assert!(!b.in_backoff("k", t0 + Duration::from_secs(10)));
        let t1 = t0 + Duration::from_secs(10);
        b.next("k", t1);
        assert!(b.in_backoff("k", t1 + Duration::from_secs(19)));
        assert!(!b.in_backoff("k", t1 + Duration::from_secs(20)));
        let mut t = t1;
        for _ in 0..10 {
            t += Duration::from_secs(1);
            b.next("k", t);
        }
        assert!(b.in_backoff("k", t + Duration::from_secs(299)));
        assert!(!b.in_backoff("k", t + Duration::from_secs(300)));
        // Quiet for more than twice the max: starts over at 10 s.
        let later = t + Duration::from_secs(601);
        b.next("k", later);
        assert!(!b.in_backoff("k", later + Duration::from_secs(10)));
        b.gc(later + Duration::from_secs(601));
        assert!(b.entries.is_empty());
    }

    fn secret(type_: &str, key: &str, json: &str) -> Secret {
        Secret {
            type_: Some(type_.into()),
            data: Some([(key.to_string(), ByteString(json.as_bytes().to_vec()))].into()),
            ..Default::default()
        }
    }

    #[test]
    fn keyring_matches_registry_hosts() {
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:pw2");
        let secrets = [
            secret(
                "kubernetes.io/dockerconfigjson",
                ".dockerconfigjson",
                &format!(
                    r#"{{"auths":{{"127.0.0.1:5000":{{"username":"alice","password":"pw1"}},
                    "https://index.docker.io/v1/":{{"auth":"{auth}"}},
                    "*.example.com/team":{{"username":"carol","password":"pw3"}}}}}}"#
                ),
            ),
            secret(
                "kubernetes.io/dockercfg",
                ".dockercfg",
                r#"{"registry.example.com":{"username":"dave","password":"pw4"}}"#,
            ),
            secret("Opaque", ".dockerconfigjson", "not json"),
        ];
        let k = Keyring::from_secrets(&secrets).unwrap();
        let users = |repo: &str| -> Vec<String> {
            k.lookup(repo).into_iter().map(|a| a.username).collect()
        };
        assert_eq!(users("127.0.0.1:5000/app"), ["alice"]);
        assert_eq!(users("127.0.0.1:5001/app"), Vec::<String>::new());
        assert_eq!(users("docker.io/library/nginx"), ["bob"]);
        // Reverse lexicographic key order, as the kubelet's keyring index.
        assert_eq!(users("registry.example.com/team/app"), ["dave", "carol"]);
        assert_eq!(users("registry.example.com/other/app"), ["dave"]);
        assert_eq!(users("quay.io/x/y"), Vec::<String>::new());
        let bob = &k.lookup("docker.io/library/nginx")[0];
        assert_eq!(bob.password, "pw2");
        assert!(Keyring::from_secrets(&[secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            "{"
        )])
        .is_err());
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::from_micros(313_400)), "313ms");
        assert_eq!(go_duration(Duration::from_millis(1594)), "1.594s");
        assert_eq!(go_duration(Duration::from_millis(1200)), "1.2s");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(Duration::from_millis(62_500)), "1m2.5s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn ctr_output_names() {
        let out = "unpacking localhost/pause:3.10 (sha256:4dd9)...done\nunpacking docker.io/library/x:1 (sha256:1)...done\n";
        assert_eq!(
            parse_ctr_import(out),
            ["localhost/pause:3.10", "docker.io/library/x:1"]
        );
    }

    #[test]
    fn registries_yaml_to_containerd_config() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("registries.yaml");
        assert_eq!(registries_toml(&yaml, dir.path()).unwrap(), "");
        std::fs::write(
            &yaml,
            r#"
mirrors:
  docker.io:
    endpoint: ["http://127.0.0.1:5000"]
  registry.example.com:
    endpoint: ["https://mirror.example.com:8443"]
configs:
  "127.0.0.1:5000":
    auth: {username: alice, password: "p\"w"}
  "mirror.example.com:8443":
    tls: {insecure_skip_verify: true, ca_file: /etc/ca.pem}
  "secure.example.com":
    tls: {ca_file: /etc/other.pem}
"#,
        )
        .unwrap();
        let toml = registries_toml(&yaml, dir.path()).unwrap();
        let certs = dir.path().join("certs.d");
        assert!(toml.contains(&format!("config_path = \"{}\"", certs.display())));
        assert!(toml.contains(
            "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"127.0.0.1:5000\".auth]\n  username = \"alice\"\n  password = \"p\\\"w\"\n"
        ));
        let docker = std::fs::read_to_string(certs.join("docker.io/hosts.toml")).unwrap();
        assert_eq!(
            docker,
            "server = \"https://registry-1.docker.io\"\n\n[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        );
        let example =
            std::fs::read_to_string(certs.join("registry.example.com/hosts.toml")).unwrap();
        assert!(example.contains("[host.\"https://mirror.example.com:8443\"]"));
        assert!(example.contains("  skip_verify = true\n  ca = \"/etc/ca.pem\"\n"));
        let secure = std::fs::read_to_string(certs.join("secure.example.com/hosts.toml")).unwrap();
        assert_eq!(
            secure,
            "server = \"https://secure.example.com\"\nca = \"/etc/other.pem\"\n"
        );
        // A bad file is an error, not silently no mirrors.
        std::fs::write(&yaml, "mirrors: [").unwrap();
        assert!(registries_toml(&yaml, dir.path()).is_err());
    }

    /// Prints the containerd config fragment for `SKIFF_TEST_REGISTRIES`
    /// (writing hosts.toml files under `SKIFF_TEST_OUT`), for the manual setup.
    #[test]
    #[ignore = "manual setup helper"]
    fn print_registries_toml() {
        let yaml = PathBuf::from(std::env::var("SKIFF_TEST_REGISTRIES").unwrap());
        let out = PathBuf::from(std::env::var("SKIFF_TEST_OUT").unwrap());
        println!("{}", registries_toml(&yaml, &out).unwrap());
    }

    /// By hand, as root, against a containerd that has the registries of
    /// `registries_toml` configured (see the module's report for the setup):
    /// `SKIFF_TEST_CRI_SOCKET=/tmp/x/containerd.sock SKIFF_TEST_IMAGES_DIR=... \
    ///  cargo test -p kubelet --lib images::tests::against_containerd -- --ignored --nocapture`
    #[tokio::test]
    #[ignore = "needs root, a running containerd and the test registries"]
    async fn against_containerd() {
        let socket = PathBuf::from(std::env::var("SKIFF_TEST_CRI_SOCKET").unwrap());
        let dir = PathBuf::from(std::env::var("SKIFF_TEST_IMAGES_DIR").unwrap());
        let t = Instant::now();
        let names = import_dir(&socket, &dir).await.unwrap();
        println!("import_dir: {names:?} in {:?}", t.elapsed());
        let t = Instant::now();
        let again = import_dir(&socket, &dir).await.unwrap();
        println!("import_dir again: {again:?} in {:?}", t.elapsed());
        assert_eq!(names, again);
        let rt = cri::Runtime::connect(&socket.to_string_lossy(), Duration::from_secs(5))
            .await
            .unwrap();
        for i in list(&rt).await.unwrap() {
            println!("{:?} {} {}", i.repo_tags, i.id, i.size);
        }
        let m = ImageManager::without_events(rt);
        let mut pod = Pod::default();
        pod.metadata.uid = Some("uid-1".into());
        async fn ensure_one(
            m: &ImageManager,
            pod: &Pod,
            image: &str,
            policy: Option<&str>,
        ) -> Result<String, ImagePullError> {
            let r = m.ensure_image(pod, &container(image, policy), &[]).await;
            println!("{image} {policy:?}: {r:?}");
            r
        }
        let ensure = |image: &'static str, policy: Option<&'static str>, _: Vec<Secret>| {
            ensure_one(&m, &pod, image, policy)
        };
        assert!(ensure("localhost/skiff-demo:0.1", None, vec![])
            .await
            .is_ok());
        let never = ensure("localhost/nope:1", Some("Never"), vec![])
            .await
            .unwrap_err();
        assert_eq!(never.reason, ERR_IMAGE_NEVER_PULL);
        let bad = ensure("Bad/Name", None, vec![]).await.unwrap_err();
        assert_eq!(bad.reason, INVALID_IMAGE_NAME);
        // docker.io mirrored to the plain-HTTP registry on 127.0.0.1:5000.
        assert!(ensure("nginx:1.0", Some("Always"), vec![]).await.is_ok());
        // The private registry on 127.0.0.1:5001 wants alice's password.
        let private = "127.0.0.1:5001/private/demo:0.1";
        // Not present from an earlier run (IfNotPresent would not pull).
        let _ = std::process::Command::new("ctr")
            .arg("-a")
            .arg(&socket)
            .args(["-n", CRI_NAMESPACE, "images", "rm", private])
            .output();
        let denied = ensure(private, None, vec![]).await.unwrap_err();
        assert_eq!(denied.reason, ERR_IMAGE_PULL);
        let backoff = ensure(private, None, vec![]).await.unwrap_err();
        assert_eq!(backoff.reason, IMAGE_PULL_BACK_OFF);
        let mut pod2 = pod.clone();
        pod2.metadata.uid = Some("uid-2".into());
        let cfg = r#"{"auths":{"127.0.0.1:5001":{"username":"alice","password":"s3cret"}}}"#;
        let s = secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson", cfg);
        let r = m.ensure_image(&pod2, &container(private, None), &[s]).await;
        println!("{private} with secret: {r:?}");
        assert!(r.is_ok());
        run_demo_pod(&m.rt).await;
    }

    /// A pod with the pause sandbox and the demo container; the demo's own
    /// client mode fetches its page over the pod's localhost (ExecSync), and
    /// `SKIFF_TEST_NETNS` (containerd's netns) curls it over the pod IP.
    async fn run_demo_pod(rt: &cri::Runtime) {
        let mut runtime = rt.runtime.clone();
        let sandbox_config = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: "demo".into(),
                uid: "images-test-uid".into(),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: "demo-pod".into(),
            ..Default::default()
        };
        let sandbox = runtime
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(sandbox_config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .pod_sandbox_id;
        let created = runtime
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
                config: Some(api::ContainerConfig {
                    metadata: Some(api::ContainerMetadata {
                        name: "demo".into(),
                        attempt: 0,
                    }),
                    image: Some(api::ImageSpec {
                        image: "localhost/skiff-demo:0.1".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                sandbox_config: Some(sandbox_config),
            })
            .await
            .unwrap()
            .into_inner()
            .container_id;
        runtime
            .start_container(api::StartContainerRequest {
                container_id: created.clone(),
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let exec = runtime
            .exec_sync(api::ExecSyncRequest {
                container_id: created.clone(),
                cmd: vec![
                    "/demo".into(),
                    "get".into(),
                    "http://127.0.0.1:8080/".into(),
                ],
                timeout: 5,
            })
            .await
            .unwrap()
            .into_inner();
        let body = String::from_utf8_lossy(&exec.stdout).to_string();
        println!("exec demo get: rc={} {body:?}", exec.exit_code);
        assert_eq!(body, "hello from demo-pod\n");
        let status = runtime
            .pod_sandbox_status(api::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner();
        let ip = status
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default();
        if let Ok(netns) = std::env::var("SKIFF_TEST_NETNS") {
            let out = std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &netns,
                    "curl",
                    "-s",
                    &format!("http://{ip}:8080/"),
                ])
                .output()
                .unwrap();
            println!("curl {ip}: {}", String::from_utf8_lossy(&out.stdout));
            assert_eq!(out.stdout, b"hello from demo-pod\n");
        }
        let t = Instant::now();
        runtime
            .stop_container(api::StopContainerRequest {
                container_id: created.clone(),
                timeout: 10,
            })
            .await
            .unwrap();
        println!("demo stopped by SIGTERM in {:?}", t.elapsed());
        assert!(t.elapsed() < Duration::from_secs(5));
        runtime
            .remove_container(api::RemoveContainerRequest {
                container_id: created,
            })
            .await
            .unwrap();
        runtime
            .stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: sandbox.clone(),
            })
            .await
            .unwrap();
        runtime
            .remove_pod_sandbox(api::RemovePodSandboxRequest {
                pod_sandbox_id: sandbox,
            })
            .await
            .unwrap();
    }

    #[test]
    fn container_references_name_the_field() {
        let pod = Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                containers: vec![container("a", None)],
                init_containers: Some(vec![Container {
                    name: "init".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = container_reference(&pod, &container("a", None));
        assert_eq!(r.field_path.as_deref(), Some("spec.containers{c}"));
        let init = Container {
            name: "init".into(),
            ..Default::default()
        };
        assert_eq!(
            container_reference(&pod, &init).field_path.as_deref(),
            Some("spec.initContainers{init}")
        );
    }
}
