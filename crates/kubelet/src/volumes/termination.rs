//! The termination-message file: each container instance gets an empty
//! file `<pod dir>/containers/<name>/<random id>` mounted at its
//! `terminationMessagePath`; the kubelet reads it back when the container
//! exits (`status.containerStatuses[].state.terminated.message`).

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;

use crate::cri::api;

/// Bytes of the termination file that are kept (the end of it).
pub const MAX_MESSAGE_BYTES: u64 = 4096;
/// With `FallbackToLogsOnError`: the last lines / bytes of the log.
pub const MAX_LOG_LINES: usize = 80;
pub const MAX_LOG_BYTES: usize = 2048;

/// Creates a fresh, world-writable file for one container instance (the
/// container may run as any user).
pub fn create_file(pod_dir: &Path, container: &str) -> io::Result<PathBuf> {
    let dir = pod_dir.join("containers").join(container);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(&dir)?;
    let id = uuid::Uuid::new_v4().as_u128() as u32;
    let path = dir.join(format!("{id:08x}"));
    fs::File::create(&path)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666))?;
    Ok(path)
}

/// The termination message of an exited container, as the kubelet computes
/// it: the end of the file mounted at `terminationMessagePath` (found in the
/// container's CRI status mounts); with `terminationMessagePolicy:
/// FallbackToLogsOnError` and a non-zero exit code, the last log lines when
/// the file is empty or missing. `log_tail` is only called then, and should
/// return the decoded log text (at least its last 80 lines).
pub fn termination_message(
    container: &Container,
    status_mounts: &[api::Mount],
    exit_code: i32,
    log_tail: impl FnOnce() -> String,
) -> String {
    let fallback = container.termination_message_policy.as_deref() == Some("FallbackToLogsOnError")
        && exit_code != 0;
    let path = container
        .termination_message_path
        .as_deref()
        .unwrap_or_default();
    let (message, check_logs) = if path.is_empty() {
        (String::new(), fallback)
    } else {
        match status_mounts.iter().find(|m| m.container_path == path) {
            None => (String::new(), fallback),
            Some(m) => match read_tail(Path::new(&m.host_path), MAX_MESSAGE_BYTES) {
                Ok(data) => {
                    let empty = data.is_empty();
                    (
                        String::from_utf8_lossy(&data).into_owned(),
                        fallback && empty,
                    )
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => (String::new(), fallback),
                Err(e) => (
                    format!("Error on reading termination log {}: {e}", m.host_path),
                    false,
                ),
            },
        }
    };
    if check_logs {
        last_log_lines(&log_tail())
    } else {
        message
    }
}

/// The last `MAX_LOG_LINES` lines, then at most the last `MAX_LOG_BYTES`.
pub fn last_log_lines(log: &str) -> String {
    let mut start = log.len();
    let trimmed = log.strip_suffix('\n').unwrap_or(log);
    let mut lines = 0;
    for (i, _) in trimmed.rmatch_indices('\n') {
        lines += 1;
        if lines == MAX_LOG_LINES {
            start = i + 1;
            break;
        }
    }
    if lines < MAX_LOG_LINES {
        start = 0;
    }
    let tail = &log[start..];
    if tail.len() <= MAX_LOG_BYTES {
        return tail.to_string();
    }
    let bytes = &tail.as_bytes()[tail.len() - MAX_LOG_BYTES..];
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_tail(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let mut f = fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        f.seek(SeekFrom::Start(len - max))?;
    }
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(policy: &str) -> Container {
        Container {
            name: "app".into(),
            termination_message_path: Some("/dev/termination-log".into()),
            termination_message_policy: Some(policy.into()),
            ..Default::default()
        }
    }

    #[test]
    fn file_then_logs() {
        let tmp = tempfile::tempdir().unwrap();
        let f = create_file(tmp.path(), "app").unwrap();
        assert!(f.starts_with(tmp.path().join("containers/app")));
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o666
        );
        let mounts = [api::Mount {
            container_path: "/dev/termination-log".into(),
            host_path: f.to_string_lossy().into_owned(),
            ..Default::default()
        }];
        let logs = || "line1\nboom\n".to_string();
        let file_policy = container("File");
        let fallback = container("FallbackToLogsOnError");
        // Empty file: only the fallback policy on failure reads logs.
        assert_eq!(termination_message(&file_policy, &mounts, 1, logs), "");
        assert_eq!(termination_message(&fallback, &mounts, 0, logs), "");
        assert_eq!(
            termination_message(&fallback, &mounts, 1, logs),
            "line1\nboom\n"
        );
        // A written file wins.
        fs::write(&f, "bye").unwrap();
        assert_eq!(termination_message(&fallback, &mounts, 1, logs), "bye");
        // Only the last 4096 bytes.
        fs::write(&f, format!("{}{}", "x".repeat(10), "y".repeat(4096))).unwrap();
        assert_eq!(
            termination_message(&file_policy, &mounts, 0, logs),
            "y".repeat(4096)
        );
        // No mount known: fall back to logs.
        assert_eq!(
            termination_message(&fallback, &[], 2, logs),
            "line1\nboom\n"
        );
    }

    #[test]
    fn log_limits() {
        let log: String = (0..100).map(|i| format!("l{i}\n")).collect();
        let got = last_log_lines(&log);
        assert!(got.starts_with("l20\n") && got.ends_with("l99\n"), "{got}");
        let long = "z".repeat(5000);
        assert_eq!(last_log_lines(&long).len(), MAX_LOG_BYTES);
        assert_eq!(last_log_lines("a\nb"), "a\nb");
    }
}
