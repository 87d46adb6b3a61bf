//! `volumeMounts[].subPath`: validation, creation of the sub directory inside
//! the volume, and a resolved host path that cannot escape the volume (a
//! symlink planted by a container pointing outside is refused).

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Upstream's checks before anything touches the disk.
pub fn validate(sub: &str) -> Result<(), String> {
    if sub.starts_with('/') {
        return Err(format!(
            "error SubPath `{sub}` must not be an absolute path"
        ));
    }
    if sub.split('/').any(|p| p == "..") {
        return Err(format!(
            "unable to provision SubPath `{sub}`: must not contain '..'"
        ));
    }
    Ok(())
}

/// Creates `<volume>/<sub>` as a directory when missing (with the volume
/// root's mode) and returns the real path it resolves to.
pub fn prepare(volume: &Path, sub: &str, mount: &str, container: &str) -> Result<PathBuf, String> {
    let base = fs::canonicalize(volume).map_err(|e| {
        tracing::warn!(volume = %volume.display(), error = %e, "subPath volume missing");
        format!("failed to prepare subPath for volumeMount {mount:?} of container {container:?}")
    })?;
    let target = volume.join(sub);
    if fs::symlink_metadata(&target).is_err() {
        make_dir(&base, volume, sub).map_err(|e| {
            tracing::warn!(path = %target.display(), error = %e, "creating subPath");
            format!(
                "failed to create subPath directory for volumeMount {mount:?} of container {container:?}"
            )
        })?;
    }
    match fs::canonicalize(&target) {
        Ok(real) if real.starts_with(&base) => Ok(real),
        other => {
            tracing::warn!(path = %target.display(), result = ?other, "subPath outside its volume");
            Err(format!(
                "failed to prepare subPath for volumeMount {mount:?} of container {container:?}"
            ))
        }
    }
}

/// Walks the existing part of `sub` (which must stay inside `base`), then
/// creates the rest one directory at a time.
fn make_dir(base: &Path, volume: &Path, sub: &str) -> io::Result<()> {
    let mode = fs::metadata(volume)?.mode() & 0o7777;
    let parts: Vec<&Path> = Path::new(sub)
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(Path::new(p)),
            _ => None,
        })
        .collect();
    let mut existing = volume.to_path_buf();
    let mut i = 0;
    while i < parts.len() && fs::symlink_metadata(existing.join(parts[i])).is_ok() {
        existing.push(parts[i]);
        i += 1;
    }
    let mut cur = fs::canonicalize(&existing)?;
    if !cur.starts_with(base) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "path escapes the volume",
        ));
    }
    for p in &parts[i..] {
        cur.push(p);
        match fs::create_dir(&cur) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        if fs::symlink_metadata(&cur)?.file_type().is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "symlink in subPath",
            ));
        }
        fs::set_permissions(&cur, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert_eq!(
            validate("/etc").unwrap_err(),
            "error SubPath `/etc` must not be an absolute path"
        );
        assert_eq!(
            validate("a/../../b").unwrap_err(),
            "unable to provision SubPath `a/../../b`: must not contain '..'"
        );
        assert!(validate("a/b..c/d").is_ok());
        assert!(validate("..a").is_ok());
    }

    #[test]
    fn creates_and_resolves() {
        let tmp = tempfile::tempdir().unwrap();
        let vol = tmp.path().join("vol");
        fs::create_dir(&vol).unwrap();
        fs::set_permissions(&vol, fs::Permissions::from_mode(0o777)).unwrap();
        let got = prepare(&vol, "a/b", "data", "app").unwrap();
        assert_eq!(got, fs::canonicalize(&vol).unwrap().join("a/b"));
        assert_eq!(fs::metadata(&got).unwrap().mode() & 0o777, 0o777);
        // Existing file (as a configMap key) resolves through its symlink.
        fs::write(vol.join("real"), "x").unwrap();
        std::os::unix::fs::symlink("real", vol.join("key")).unwrap();
        assert!(prepare(&vol, "key", "data", "app")
            .unwrap()
            .ends_with("vol/real"));
        // A symlink out of the volume is refused, existing or as a parent.
        std::os::unix::fs::symlink(tmp.path(), vol.join("out")).unwrap();
        assert_eq!(
            prepare(&vol, "out", "data", "app").unwrap_err(),
            "failed to prepare subPath for volumeMount \"data\" of container \"app\""
        );
        assert_eq!(
            prepare(&vol, "out/new", "data", "app").unwrap_err(),
            "failed to create subPath directory for volumeMount \"data\" of container \"app\""
        );
        assert!(!tmp.path().join("new").exists());
    }
}
