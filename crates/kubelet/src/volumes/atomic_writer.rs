//! Atomic projection of a set of files into a volume directory, as upstream's
//! `AtomicWriter`: the real files live in a hidden timestamped directory,
//! `..data` is a symlink to it, and every user-visible top-level name is a
//! symlink into `..data`. An update writes a new timestamped directory and
//! swaps `..data` with one `rename(2)`, so readers see the old set of files
//! or the new one, never a mix. Names starting with `..` are reserved.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const DATA_DIR: &str = "..data";
const NEW_DATA_DIR: &str = "..data_tmp";
const MAX_FILE_NAME: usize = 255;
const MAX_PATH: usize = 4096;

/// One file of a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Relative path -> content.
pub type Payload = BTreeMap<String, FileProjection>;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    InvalidPath(String),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WriteError {
    let path = path.to_path_buf();
    move |source| WriteError::Io { op, path, source }
}

/// Projects `payload` into `target` (which must exist). `fs_group` makes the
/// files group-owned and group-readable as `SetVolumeOwnership` does for
/// read-only volumes. Returns whether anything changed on disk.
pub fn write(target: &Path, payload: &Payload, fs_group: Option<u32>) -> Result<bool, WriteError> {
    let clean = validate_payload(payload)?;
    let data_link = target.join(DATA_DIR);
    let old_ts = match fs::read_link(&data_link) {
        Ok(p) => Some(target.join(p)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("reading link", &data_link)(e)),
    };

    let mut to_remove = BTreeSet::new();
    if let Some(old) = &old_ts {
        to_remove = paths_to_remove(&clean, old).map_err(io_err("walking", old))?;
        let changed = payload_differs(&clean, old).map_err(io_err("comparing", old))?;
        if !changed && to_remove.is_empty() {
            return Ok(false);
        }
    }

    let ts_dir = new_timestamp_dir(target)?;
    let result = (|| {
        write_payload(&clean, &ts_dir)?;
        if let Some(gid) = fs_group {
            set_ownership(&ts_dir, gid).map_err(io_err("setting ownership of", &ts_dir))?;
            set_ownership_one(target, gid).map_err(io_err("setting ownership of", target))?;
        }
        create_user_visible(&clean, target)?;
        let tmp_link = target.join(NEW_DATA_DIR);
        let _ = fs::remove_file(&tmp_link); // left over by a crash mid-update
        let ts_name = ts_dir.file_name().unwrap_or_default();
        std::os::unix::fs::symlink(ts_name, &tmp_link).map_err(io_err("symlinking", &tmp_link))?;
        fs::rename(&tmp_link, &data_link).map_err(|e| {
            let _ = fs::remove_file(&tmp_link);
            io_err("renaming", &tmp_link)(e)
        })
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&ts_dir);
        return Err(e);
    }

    // Only top-level names are symlinks in the target; deeper ones vanish
    // with the old timestamped directory.
    for p in to_remove.iter().filter(|p| !p.contains('/')) {
        let path = target.join(p);
        fs::remove_file(&path).map_err(io_err("removing", &path))?;
    }
    if let Some(old) = old_ts {
        match fs::remove_dir_all(&old) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("removing", &old)(e))
            }
            _ => {}
        }
    }
    Ok(true)
}

fn validate_payload(payload: &Payload) -> Result<Payload, WriteError> {
    let mut clean = Payload::new();
    for (path, file) in payload {
        validate_path(path).map_err(WriteError::InvalidPath)?;
        clean.insert(clean_path(path), file.clone());
    }
    Ok(clean)
}

/// Upstream's rules and messages: relative, no `..` element, not starting
/// with `..`, names up to 255 and paths up to 4096 bytes.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err(format!("invalid path: must not be empty: {path:?}"));
    }
    if path.starts_with('/') {
        return Err(format!("invalid path: must be relative path: {path}"));
    }
    if path.len() > MAX_PATH {
        return Err(format!(
            "invalid path: must be less than or equal to {MAX_PATH} characters"
        ));
    }
    let items: Vec<&str> = path.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(format!("invalid path: must not contain '..': {path}"));
        }
        if item.len() > MAX_FILE_NAME {
            return Err(format!(
                "invalid path: filenames must be less than or equal to {MAX_FILE_NAME} characters"
            ));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(format!("invalid path: must not start with '..': {path}"));
    }
    if clean_path(path).is_empty() {
        return Err(format!("invalid path: must not be empty: {path:?}"));
    }
    Ok(())
}

/// `filepath.Clean` for a relative path without `..`: drops empty and `.`
/// elements.
fn clean_path(path: &str) -> String {
    path.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn payload_differs(payload: &Payload, old: &Path) -> io::Result<bool> {
    for (path, file) in payload {
        match fs::read(old.join(path)) {
            Ok(on_disk) if on_disk == file.data => {}
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Paths in the old data directory that the new payload no longer has
/// (directories that still hold new files are kept).
fn paths_to_remove(payload: &Payload, old: &Path) -> io::Result<BTreeSet<String>> {
    let mut existing = BTreeSet::new();
    match walk(old, "", &mut existing) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        r => r?,
    }
    let mut wanted = BTreeSet::new();
    for path in payload.keys() {
        let mut p = path.as_str();
        loop {
            wanted.insert(p.to_string());
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => break,
            }
        }
    }
    Ok(existing.difference(&wanted).cloned().collect())
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &rel, out)?;
        }
        out.insert(rel);
    }
    Ok(())
}

fn new_timestamp_dir(target: &Path) -> Result<PathBuf, WriteError> {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y_%m_%d_%H_%M_%S")
        .to_string();
    loop {
        let suffix = uuid::Uuid::new_v4().as_u128() as u32;
        let dir = target.join(format!("..{stamp}.{suffix}"));
        match fs::DirBuilder::new().mode(0o755).create(&dir) {
            Ok(()) => {
                // The umask must not narrow it: group/other need to traverse.
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
                    .map_err(io_err("chmod", &dir))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("creating", &dir)(e)),
        }
    }
}

fn write_payload(payload: &Payload, dir: &Path) -> Result<(), WriteError> {
    for (path, file) in payload {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(io_err("creating", parent))?;
        }
        fs::write(&full, &file.data).map_err(io_err("writing", &full))?;
        fs::set_permissions(&full, fs::Permissions::from_mode(file.mode & 0o7777))
            .map_err(io_err("chmod", &full))?;
    }
    Ok(())
}

/// `<target>/<first element>` -> `..data/<first element>` for each path.
fn create_user_visible(payload: &Payload, target: &Path) -> Result<(), WriteError> {
    for path in payload.keys() {
        let first = path.split('/').next().unwrap_or(path);
        let visible = target.join(first);
        if fs::symlink_metadata(&visible).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA_DIR).join(first), &visible)
                .map_err(io_err("symlinking", &visible))?;
        }
    }
    Ok(())
}

/// Group-owns everything under `dir` by `gid`, adding group read (and
/// traverse + setgid on directories); symlinks are left alone.
fn set_ownership(dir: &Path, gid: u32) -> io::Result<()> {
    set_ownership_one(dir, gid)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_symlink() {
            continue;
        }
        if ft.is_dir() {
            set_ownership(&entry.path(), gid)?;
        } else {
            set_ownership_one(&entry.path(), gid)?;
        }
    }
    Ok(())
}

pub(crate) fn set_ownership_one(path: &Path, gid: u32) -> io::Result<()> {
    set_group(path, gid, 0o440)
}

/// chgrp + `mode | mask` (plus setgid and group/other traverse on dirs).
pub(crate) fn set_group(path: &Path, gid: u32, mask: u32) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.gid() != gid {
        std::os::unix::fs::chown(path, None, Some(gid))?;
    }
    let mut want = meta.mode() & 0o7777 | mask;
    if meta.is_dir() {
        want |= 0o2000 | 0o110;
    }
    if want != meta.mode() & 0o7777 {
        fs::set_permissions(path, fs::Permissions::from_mode(want))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(files: &[(&str, &str, u32)]) -> Payload {
        files
            .iter()
            .map(|(p, d, m)| {
                (
                    p.to_string(),
                    FileProjection {
                        data: d.as_bytes().to_vec(),
                        mode: *m,
                    },
                )
            })
            .collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("..2"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_swaps_and_prunes() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let p1 = payload(&[
            ("a", "1", 0o644),
            ("dir/b", "2", 0o400),
            ("dir/sub/c", "3", 0o644),
        ]);
        assert!(write(t, &p1, None).unwrap());
        assert_eq!(names(t), ["..data", "a", "dir"]);
        assert_eq!(fs::read_link(t.join("a")).unwrap(), Path::new("..data/a"));
        assert_eq!(fs::read_to_string(t.join("dir/sub/c")).unwrap(), "3");
        let mode = fs::metadata(t.join("dir/b")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o400);
        let ts1 = fs::read_link(t.join("..data")).unwrap();
        assert!(ts1.to_string_lossy().starts_with("..20"), "{ts1:?}");

        // Same content: nothing is rewritten.
        assert!(!write(t, &p1, None).unwrap());
        assert_eq!(fs::read_link(t.join("..data")).unwrap(), ts1);

        // Update: `a` changes, `dir` disappears, `e` appears; one ts dir left.
        let p2 = payload(&[("a", "new", 0o644), ("e", "5", 0o644)]);
        assert!(write(t, &p2, None).unwrap());
        assert_eq!(names(t), ["..data", "a", "e"]);
        assert_eq!(fs::read_to_string(t.join("a")).unwrap(), "new");
        assert!(!t.join(&ts1).exists());
        let ts_dirs = fs::read_dir(t)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("..2")
            })
            .count();
        assert_eq!(ts_dirs, 1);

        // Removing a key only.
        assert!(write(t, &payload(&[("e", "5", 0o644)]), None).unwrap());
        assert_eq!(names(t), ["..data", "e"]);

        // Empty payload still leaves a valid `..data`.
        assert!(write(t, &Payload::new(), None).unwrap());
        assert_eq!(names(t), ["..data"]);
        assert!(t.join("..data").is_dir());
    }

    #[test]
    fn empty_payload_on_fresh_dir() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(write(tmp.path(), &Payload::new(), None).unwrap());
        assert!(tmp.path().join("..data").is_dir());
        assert!(!write(tmp.path(), &Payload::new(), None).unwrap());
    }

    #[test]
    fn fs_group_adds_group_read() {
        let tmp = tempfile::tempdir().unwrap();
        let gid = fs::metadata(tmp.path()).unwrap().gid(); // chgrp to our own group always works
        write(tmp.path(), &payload(&[("k", "v", 0o400)]), Some(gid)).unwrap();
        let m = fs::metadata(tmp.path().join("k")).unwrap();
        assert_eq!(m.mode() & 0o777, 0o440);
        assert_eq!(m.gid(), gid);
    }

    #[test]
    fn path_validation() {
        let bad = [
            ("", "invalid path: must not be empty: \"\""),
            ("/abs", "invalid path: must be relative path: /abs"),
            ("a/../b", "invalid path: must not contain '..': a/../b"),
            ("..", "invalid path: must not contain '..': .."),
            (
                "..data/x",
                "invalid path: must not start with '..': ..data/x",
            ),
            ("./", "invalid path: must not be empty: \"./\""),
        ];
        for (p, msg) in bad {
            assert_eq!(validate_path(p).unwrap_err(), msg);
        }
        let long = "x".repeat(256);
        assert!(validate_path(&long).unwrap_err().contains("255"));
        for ok in ["a", "a/b", ".hidden", "a//b/./c", "a..b"] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        assert_eq!(clean_path("a//b/./c/"), "a/b/c");
        let tmp = tempfile::tempdir().unwrap();
        let err = write(tmp.path(), &payload(&[("../x", "", 0o644)]), None).unwrap_err();
        assert_eq!(err.to_string(), "invalid path: must not contain '..': ../x");
    }
}
