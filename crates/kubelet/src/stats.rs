//! `/stats/summary` (the kubelet's `statsapi.Summary`): node figures from
//! /proc and statvfs, pod and container figures from CRI
//! `ListContainerStats` (summed per pod, since containerd 1.6 has no
//! `ListPodSandboxStats`). CPU rates (`usageNanoCores`) come from the
//! difference between this and the previous sample, as the kubelet's CRI
//! stats provider computes them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Map, Value};

use crate::cri::{api, Runtime};

/// One cumulative CPU reading: when, and core-nanoseconds used so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuSample {
    pub at_ns: i64,
    pub usage_ns: u64,
}

/// Cores in use between two samples, in nanocores (1e9 = one core busy).
pub fn nano_cores(prev: Option<CpuSample>, cur: CpuSample) -> Option<u64> {
    let prev = prev?;
    let elapsed = cur.at_ns.checked_sub(prev.at_ns).filter(|d| *d > 0)?;
    let used = cur.usage_ns.checked_sub(prev.usage_ns)?;
    Some((used as u128 * 1_000_000_000 / elapsed as u128) as u64)
}

/// Serves summaries and remembers the previous CPU samples for rates.
pub struct StatsProvider {
    rt: Runtime,
    fs_root: PathBuf,
    log_root: Option<PathBuf>,
    samples: Mutex<Samples>,
}

#[derive(Default)]
struct Samples {
    node: Option<CpuSample>,
    containers: HashMap<String, CpuSample>,
}

/// Node-level figures read from /proc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// Busy time of all CPUs (user+nice+system+irq+softirq+steal), in ns.
    pub cpu_busy_ns: u64,
    /// Boot time, seconds since the epoch.
    pub boot_time: i64,
}

/// Parses /proc/stat; `ticks_per_sec` is `sysconf(_SC_CLK_TCK)`.
pub fn parse_proc_stat(text: &str, ticks_per_sec: u64) -> ProcStat {
    let mut out = ProcStat::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let v: Vec<u64> = fields.map(|f| f.parse().unwrap_or(0)).collect();
                let get = |i: usize| v.get(i).copied().unwrap_or(0);
                // user nice system idle iowait irq softirq steal
                let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
                out.cpu_busy_ns = busy.saturating_mul(1_000_000_000) / ticks_per_sec.max(1);
            }
            Some("btime") => {
                out.boot_time = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0)
            }
            _ => {}
        }
    }
    out
}

/// Parses /proc/meminfo into bytes by key (`MemTotal`, `Inactive(file)`, ...).
pub fn parse_meminfo(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let mut parts = rest.split_whitespace();
            let n: u64 = parts.next()?.parse().ok()?;
            let unit = if parts.next() == Some("kB") { 1024 } else { 1 };
            Some((key.to_string(), n * unit))
        })
        .collect()
}

/// Parses /proc/vmstat (`pgfault 123`) by key.
pub fn parse_vmstat(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (k, v) = line.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The node's memory as the kubelet reports it: working set is usage less
/// inactive file pages; available is capacity less working set.
pub fn node_memory(
    meminfo: &HashMap<String, u64>,
    vmstat: &HashMap<String, u64>,
    time: &str,
) -> Value {
    let get = |k: &str| meminfo.get(k).copied().unwrap_or(0);
    let total = get("MemTotal");
    let usage = total.saturating_sub(get("MemFree"));
    let working_set = usage.saturating_sub(get("Inactive(file)"));
    json!({
        "time": time,
        "availableBytes": total.saturating_sub(working_set),
        "usageBytes": usage,
        "workingSetBytes": working_set,
        "rssBytes": get("AnonPages"),
        "pageFaults": vmstat.get("pgfault").copied().unwrap_or(0),
        "majorPageFaults": vmstat.get("pgmajfault").copied().unwrap_or(0),
    })
}

/// metav1.Time: RFC 3339, whole seconds, UTC.
fn time_ns(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(ns as i128)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

/// Capacity and free space of the filesystem holding `path`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FsInfo {
    pub(crate) capacity: u64,
    available: u64,
    used: u64,
    inodes: u64,
    inodes_free: u64,
}

pub(crate) fn statvfs(path: &Path) -> Option<FsInfo> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized
    // out-parameter that statvfs fills on success.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return None;
        }
        st
    };
    let frsize = st.f_frsize as u64;
    Some(FsInfo {
        capacity: st.f_blocks as u64 * frsize,
        available: st.f_bavail as u64 * frsize,
        used: (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * frsize,
        inodes: st.f_files as u64,
        inodes_free: st.f_ffree as u64,
    })
}

/// statsapi.FsStats; `used`/`inodes_used` override the filesystem-wide
/// figures for a container's or pod's own share.
fn fs_stats(time: &str, fs: Option<FsInfo>, used: Option<u64>, inodes_used: Option<u64>) -> Value {
    let mut m = Map::new();
    m.insert("time".into(), json!(time));
    if let Some(fs) = fs {
        m.insert("availableBytes".into(), json!(fs.available));
        m.insert("capacityBytes".into(), json!(fs.capacity));
        m.insert("inodesFree".into(), json!(fs.inodes_free));
        m.insert("inodes".into(), json!(fs.inodes));
    }
    let used = used.or(fs.map(|f| f.used));
    if let Some(u) = used {
        m.insert("usedBytes".into(), json!(u));
    }
    let inodes_used = inodes_used.or(fs.map(|f| f.inodes.saturating_sub(f.inodes_free)));
    if let Some(i) = inodes_used {
        m.insert("inodesUsed".into(), json!(i));
    }
    Value::Object(m)
}

/// Bytes and files under a directory (a container's log files).
fn dir_usage(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let (mut bytes, mut files) = (0, 0);
    for e in entries.flatten() {
        if let Ok(m) = e.metadata() {
            if m.is_file() {
                bytes += m.len();
                files += 1;
            }
        }
    }
    (bytes, files)
}

fn opt(v: &Option<api::UInt64Value>) -> Option<u64> {
    v.as_ref().map(|v| v.value)
}

/// Sums of a pod's containers.
#[derive(Default)]
struct PodTotals {
    time_ns: i64,
    cpu_usage: u64,
    nano_cores: Option<u64>,
    all_rates: bool,
    memory: [Option<u64>; 5],
    rootfs_used: u64,
    rootfs_inodes: u64,
    logs_used: u64,
    logs_inodes: u64,
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

impl StatsProvider {
    pub fn new(rt: Runtime) -> Self {
        StatsProvider {
            rt,
            fs_root: PathBuf::from("/"),
            log_root: None,
            samples: Default::default(),
        }
    }

    /// The node filesystem to report (the agent's root dir) and the pod log
    /// root (`<root>/logs`, holding `<ns>_<name>_<uid>/<container>/`).
    pub fn with_paths(mut self, fs_root: PathBuf, log_root: Option<PathBuf>) -> Self {
        self.fs_root = fs_root;
        self.log_root = log_root;
        self
    }

    pub async fn summary(&self, node_name: &str, pods: &[Pod]) -> Value {
        let node = self.node_stats(node_name).await;
        let pods = match self.pod_stats(pods).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e.message(), "listing container stats failed");
                Vec::new()
            }
        };
        json!({ "node": node, "pods": pods })
    }

    async fn node_stats(&self, node_name: &str) -> Value {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let stat = parse_proc_stat(&read("/proc/stat"), ticks);
        let at_ns = now_ns();
        let time = time_ns(at_ns);
        let sample = CpuSample {
            at_ns,
            usage_ns: stat.cpu_busy_ns,
        };
        let rate = {
            let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            let rate = nano_cores(s.node, sample);
            s.node = Some(sample);
            rate
        };
        let mut cpu = json!({"time": time, "usageCoreNanoSeconds": stat.cpu_busy_ns});
        if let Some(r) = rate {
            cpu["usageNanoCores"] = json!(r);
        }
        let memory = node_memory(
            &parse_meminfo(&read("/proc/meminfo")),
            &parse_vmstat(&read("/proc/vmstat")),
            &time,
        );
        let fs = fs_stats(&time, statvfs(&self.fs_root), None, None);
        let image_fs = self.image_fs(&time).await;
        json!({
            "nodeName": node_name,
            "startTime": time_ns(stat.boot_time.saturating_mul(1_000_000_000)),
            "cpu": cpu,
            "memory": memory,
            "fs": fs,
            "runtime": {"imageFs": image_fs.clone(), "containerFs": image_fs},
        })
    }

    async fn image_fs(&self, time: &str) -> Value {
        let resp = self
            .rt
            .images
            .clone()
            .image_fs_info(api::ImageFsInfoRequest {})
            .await;
        let Ok(resp) = resp else {
            return fs_stats(time, None, None, None);
        };
        let Some(u) = resp.into_inner().image_filesystems.into_iter().next() else {
            return fs_stats(time, None, None, None);
        };
        let fs = u
            .fs_id
            .as_ref()
            .and_then(|id| statvfs(Path::new(&id.mountpoint)));
        fs_stats(time, fs, opt(&u.used_bytes), opt(&u.inodes_used))
    }

    async fn pod_stats(&self, pods: &[Pod]) -> Result<Vec<Value>, tonic::Status> {
        let mut runtime = self.rt.runtime.clone();
        let sandboxes = runtime
            .list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
            .await?
            .into_inner()
            .items;
        let containers = runtime
            .list_containers(api::ListContainersRequest { filter: None })
            .await?
            .into_inner()
            .containers;
        let stats = runtime
            .list_container_stats(api::ListContainerStatsRequest { filter: None })
            .await?
            .into_inner()
            .stats;
        let wanted: Vec<&str> = pods
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref())
            .collect();
        // The newest ready sandbox of each pod.
        let mut by_uid: HashMap<String, &api::PodSandbox> = HashMap::new();
        for s in &sandboxes {
            let Some(meta) = &s.metadata else { continue };
            let ready = s.state == api::PodSandboxState::SandboxReady as i32;
            if !ready || (!wanted.is_empty() && !wanted.contains(&meta.uid.as_str())) {
                continue;
            }
            let newer = by_uid
                .get(&meta.uid)
                .is_none_or(|o| o.created_at < s.created_at);
            if newer {
                by_uid.insert(meta.uid.clone(), s);
            }
        }
        let stats: HashMap<&str, &api::ContainerStats> = stats
            .iter()
            .filter_map(|s| Some((s.attributes.as_ref()?.id.as_str(), s)))
            .collect();
        let now = now_ns();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = HashMap::new();
        let mut out = Vec::new();
        let mut uids: Vec<&String> = by_uid.keys().collect();
        uids.sort();
        for uid in uids {
            let sandbox = by_uid[uid];
            let Some(meta) = &sandbox.metadata else {
                continue;
            };
            let mut totals = PodTotals {
                all_rates: true,
                ..Default::default()
            };
            let mut entries = Vec::new();
            let running = containers.iter().filter(|c| {
                c.pod_sandbox_id == sandbox.id
                    && c.state == api::ContainerState::ContainerRunning as i32
            });
            for c in running {
                let name = c
                    .metadata
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default();
                let Some(s) = stats.get(c.id.as_str()) else {
                    continue;
                };
                let rate = s.cpu.as_ref().and_then(|cpu| {
                    let usage = opt(&cpu.usage_core_nano_seconds)?;
                    let sample = CpuSample {
                        at_ns: cpu.timestamp,
                        usage_ns: usage,
                    };
                    seen.insert(c.id.clone(), sample);
                    // The runtime's own figure when it has one.
                    opt(&cpu.usage_nano_cores)
                        .filter(|v| *v > 0)
                        .or_else(|| nano_cores(samples.containers.get(&c.id).copied(), sample))
                });
                let logs_dir = self.log_root.as_ref().map(|r| {
                    r.join(format!("{}_{}_{}", meta.namespace, meta.name, meta.uid))
                        .join(&name)
                });
                let logs = logs_dir.as_deref().map(dir_usage);
                entries.push(container_entry(c, &name, s, rate, logs, &mut totals));
            }
            out.push(pod_entry(meta, sandbox.created_at, entries, &totals, now));
        }
        samples.containers = seen;
        Ok(out)
    }
}

/// statsapi.ContainerStats from one CRI sample; adds it to the pod totals.
fn container_entry(
    c: &api::Container,
    name: &str,
    s: &api::ContainerStats,
    rate: Option<u64>,
    logs: Option<(u64, u64)>,
    totals: &mut PodTotals,
) -> Value {
    let mut entry = json!({"name": name, "startTime": time_ns(c.created_at)});
    if let Some(cpu) = &s.cpu {
        let mut v = json!({"time": time_ns(cpu.timestamp)});
        if let Some(u) = opt(&cpu.usage_core_nano_seconds) {
            v["usageCoreNanoSeconds"] = json!(u);
            totals.cpu_usage += u;
        }
        match rate {
            Some(r) => {
                v["usageNanoCores"] = json!(r);
                totals.nano_cores = Some(totals.nano_cores.unwrap_or(0) + r);
            }
            None => totals.all_rates = false,
        }
        totals.time_ns = totals.time_ns.max(cpu.timestamp);
        entry["cpu"] = v;
    }
    if let Some(m) = &s.memory {
        let fields = [
            ("usageBytes", &m.usage_bytes),
            ("workingSetBytes", &m.working_set_bytes),
            ("rssBytes", &m.rss_bytes),
            ("pageFaults", &m.page_faults),
            ("majorPageFaults", &m.major_page_faults),
        ];
        let mut v = json!({"time": time_ns(m.timestamp)});
        if let Some(a) = opt(&m.available_bytes).filter(|a| *a > 0) {
            v["availableBytes"] = json!(a);
        }
        for (i, (key, value)) in fields.iter().enumerate() {
            if let Some(x) = opt(value) {
                v[*key] = json!(x);
                totals.memory[i] = add(totals.memory[i], Some(x));
            }
        }
        totals.time_ns = totals.time_ns.max(m.timestamp);
        entry["memory"] = v;
    }
    if let Some(w) = &s.writable_layer {
        let fs = w
            .fs_id
            .as_ref()
            .and_then(|id| statvfs(Path::new(&id.mountpoint)));
        let (used, inodes) = (opt(&w.used_bytes), opt(&w.inodes_used));
        totals.rootfs_used += used.unwrap_or(0);
        totals.rootfs_inodes += inodes.unwrap_or(0);
        entry["rootfs"] = fs_stats(&time_ns(w.timestamp), fs, Some(used.unwrap_or(0)), inodes);
    }
    if let Some((bytes, files)) = logs {
        totals.logs_used += bytes;
        totals.logs_inodes += files;
        entry["logs"] = fs_stats(&time_ns(now_ns()), None, Some(bytes), Some(files));
    }
    entry
}

/// statsapi.PodStats: containers plus their sums.
fn pod_entry(
    meta: &api::PodSandboxMetadata,
    created_at: i64,
    containers: Vec<Value>,
    t: &PodTotals,
    now: i64,
) -> Value {
    let time = time_ns(if t.time_ns > 0 { t.time_ns } else { now });
    let mut cpu = json!({"time": time, "usageCoreNanoSeconds": t.cpu_usage});
    if let (true, Some(r)) = (t.all_rates && !containers.is_empty(), t.nano_cores) {
        cpu["usageNanoCores"] = json!(r);
    }
    let mut memory = json!({"time": time});
    let keys = [
        "usageBytes",
        "workingSetBytes",
        "rssBytes",
        "pageFaults",
        "majorPageFaults",
    ];
    for (key, v) in keys.iter().zip(t.memory) {
        if let Some(v) = v {
            memory[*key] = json!(v);
        }
    }
    let ephemeral = fs_stats(
        &time,
        None,
        Some(t.rootfs_used + t.logs_used),
        Some(t.rootfs_inodes + t.logs_inodes),
    );
    json!({
        "podRef": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid},
        "startTime": time_ns(created_at),
        "containers": containers,
        "cpu": cpu,
        "memory": memory,
        "ephemeral-storage": ephemeral,
    })
}

/// `summary` without keeping the provider (no CPU rates).
pub async fn summary(rt: &Runtime, node_name: &str, pods: &[Pod]) -> Value {
    StatsProvider::new(rt.clone())
        .summary(node_name, pods)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_from_two_samples() {
        let a = CpuSample {
            at_ns: 1_000_000_000,
            usage_ns: 500_000_000,
        };
        let b = CpuSample {
            at_ns: 3_000_000_000,
            usage_ns: 1_500_000_000,
        };
        // 1 s of CPU over 2 s: half a core.
        assert_eq!(nano_cores(Some(a), b), Some(500_000_000));
        assert_eq!(nano_cores(None, b), None);
        assert_eq!(nano_cores(Some(b), a), None);
        assert_eq!(nano_cores(Some(a), a), None);
    }

    #[test]
    fn proc_stat() {
        let text = "cpu  100 20 30 4000 50 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\nbtime 1700000000\n";
        let s = parse_proc_stat(text, 100);
        assert_eq!(s.cpu_busy_ns, (100 + 20 + 30 + 6 + 7 + 8) * 10_000_000);
        assert_eq!(s.boot_time, 1_700_000_000);
    }

    #[test]
    fn meminfo_and_node_memory() {
        let text = "MemTotal:        2000 kB\nMemFree:          500 kB\nInactive(file):   300 kB\nAnonPages:        100 kB\nHugePages_Total:       0\n";
        let m = parse_meminfo(text);
        assert_eq!(m["MemTotal"], 2000 * 1024);
        assert_eq!(m["HugePages_Total"], 0);
        let vm = parse_vmstat("pgfault 42\npgmajfault 3\n");
        let v = node_memory(&m, &vm, "t");
        assert_eq!(v["usageBytes"], 1500 * 1024);
        assert_eq!(v["workingSetBytes"], 1200 * 1024);
        assert_eq!(v["availableBytes"], 800 * 1024);
        assert_eq!(v["rssBytes"], 100 * 1024);
        assert_eq!(v["pageFaults"], 42);
        assert_eq!(v["majorPageFaults"], 3);
    }

    #[test]
    fn this_machine_parses() {
        let s = parse_proc_stat(&std::fs::read_to_string("/proc/stat").unwrap(), 100);
        assert!(s.cpu_busy_ns > 0 && s.boot_time > 0);
        let fs = statvfs(Path::new("/")).unwrap();
        assert!(fs.capacity > 0 && fs.capacity >= fs.available);
        assert_eq!(time_ns(1_700_000_000_123_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn container_and_pod_entries() {
        let c = api::Container {
            id: "c1".into(),
            created_at: 1_700_000_000_000_000_000,
            ..Default::default()
        };
        let v = |n| Some(api::UInt64Value { value: n });
        let s = api::ContainerStats {
            cpu: Some(api::CpuUsage {
                timestamp: 1_700_000_010_000_000_000,
                usage_core_nano_seconds: v(5_000),
                usage_nano_cores: None,
            }),
            memory: Some(api::MemoryUsage {
                timestamp: 1_700_000_010_000_000_000,
                working_set_bytes: v(1024),
                usage_bytes: v(2048),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut t = PodTotals {
            all_rates: true,
            ..Default::default()
        };
        let e = container_entry(&c, "app", &s, Some(7), Some((10, 1)), &mut t);
        assert_eq!(e["cpu"]["usageNanoCores"], 7);
        assert_eq!(e["memory"]["workingSetBytes"], 1024);
        assert_eq!(e["logs"]["usedBytes"], 10);
        assert_eq!(e["startTime"], "2023-11-14T22:13:20Z");
        let meta = api::PodSandboxMetadata {
            name: "web".into(),
            uid: "u".into(),
            namespace: "default".into(),
            attempt: 0,
        };
        let p = pod_entry(&meta, c.created_at, vec![e], &t, 0);
        assert_eq!(p["podRef"]["name"], "web");
        assert_eq!(p["cpu"]["usageCoreNanoSeconds"], 5000);
        assert_eq!(p["cpu"]["usageNanoCores"], 7);
        assert_eq!(p["memory"]["usageBytes"], 2048);
        assert_eq!(p["ephemeral-storage"]["usedBytes"], 10);
        assert_eq!(p["cpu"]["time"], "2023-11-14T22:13:30Z");
    }
}
