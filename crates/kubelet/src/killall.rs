//! Stops everything an agent started (as k3s-killall.sh does): every pod
//! sandbox through CRI (so CNI releases addresses and network namespaces),
//! then containerd, then the mounts and cgroups left behind.

use std::path::Path;
use std::time::Duration;

use crate::cri::api;
use crate::{containerd, cri};

pub async fn killall(root: &Path, cgroup_root: &str) -> anyhow::Result<()> {
    let layout = containerd::Layout::new(root);
    let socket = layout.socket();
    if let Ok(rt) =
        cri::Runtime::connect(&socket.display().to_string(), Duration::from_secs(2)).await
    {
        let mut r = rt.runtime.clone();
        let containers = r
            .list_containers(api::ListContainersRequest { filter: None })
            .await
            .map(|c| c.into_inner().containers)
            .unwrap_or_default();
        for c in &containers {
            let _ = r
                .stop_container(api::StopContainerRequest {
                    container_id: c.id.clone(),
                    timeout: 0,
                })
                .await;
            let _ = r
                .remove_container(api::RemoveContainerRequest {
                    container_id: c.id.clone(),
                })
                .await;
        }
        let sandboxes = r
            .list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
            .await
            .map(|s| s.into_inner().items)
            .unwrap_or_default();
        for s in &sandboxes {
            let _ = r
                .stop_pod_sandbox(api::StopPodSandboxRequest {
                    pod_sandbox_id: s.id.clone(),
                })
                .await;
            let _ = r
                .remove_pod_sandbox(api::RemovePodSandboxRequest {
                    pod_sandbox_id: s.id.clone(),
                })
                .await;
            if let Some(uid) = s.metadata.as_ref().map(|m| m.uid.clone()) {
                crate::qos::remove_pod_cgroups(cgroup_root, &uid);
            }
        }
    }
    // containerd (and any shim still holding a mount) go next.
    for pid in processes_mentioning(&layout.dir) {
        // SAFETY: kill(2) on a pid read from /proc.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    unmount_under(root);
    Ok(())
}

/// Pids whose command line names `dir` (containerd and its shims).
fn processes_mentioning(dir: &Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(&needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Unmounts everything mounted under `root`, deepest first.
fn unmount_under(root: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = root.display().to_string();
    let mut points: Vec<String> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Ok(c) = std::ffi::CString::new(p) {
            // SAFETY: umount2 with a valid path; MNT_DETACH never blocks.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
