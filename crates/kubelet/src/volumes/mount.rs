//! tmpfs mounts for memory-backed volumes (emptyDir `medium: Memory`,
//! secrets, downwardAPI, projected) through mount(2)/umount2(2).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// Whether `path` is the root of a mount of a different filesystem than its
/// parent (enough for our tmpfs mounts, which always have their own device).
pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    let meta = fs::symlink_metadata(path)?;
    let parent = path.parent().unwrap_or(Path::new("/"));
    Ok(meta.dev() != fs::metadata(parent)?.dev())
}

/// Mounts a tmpfs on `dir` unless one is there already. `size` in bytes.
pub fn mount_tmpfs(dir: &Path, size: Option<u64>) -> io::Result<()> {
    if is_mount_point(dir)? {
        return Ok(());
    }
    let target = c_path(dir)?;
    let data = size.map(|s| format!("size={s}")).unwrap_or_default();
    let data = CString::new(data).map_err(|_| io::ErrorKind::InvalidInput)?;
    let fstype = c"tmpfs";
    // SAFETY: all pointers are valid NUL-terminated strings for the call.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Unmounts `dir`; a busy mount is detached (it goes once unused).
pub fn unmount(dir: &Path) -> io::Result<()> {
    let target = c_path(dir)?;
    // SAFETY: target is a valid NUL-terminated path.
    if unsafe { libc::umount2(target.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EBUSY) {
        // SAFETY: as above.
        if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } == 0 {
            return Ok(());
        }
        return Err(io::Error::last_os_error());
    }
    Err(err)
}

/// Mount points at or below `prefix`, deepest first, from mountinfo.
pub fn mounts_under(prefix: &Path) -> io::Result<Vec<PathBuf>> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse_mounts_under(&info, prefix))
}

fn parse_mounts_under(mountinfo: &str, prefix: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(prefix))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], oct) {
            let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            out.push(v as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_parsing() {
        let info = "\
22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw
40 22 0:50 / /data/pods/u1/volumes/kubernetes.io~secret/s rw - tmpfs tmpfs rw
41 22 0:51 / /data/pods/u1/volumes/kubernetes.io~empty-dir/a\\040b rw - tmpfs tmpfs rw
42 22 0:52 / /data/pods/u10/x rw - tmpfs tmpfs rw
43 22 0:53 / /data/pods/u1 rw - tmpfs tmpfs rw";
        let got = parse_mounts_under(info, Path::new("/data/pods/u1"));
        assert_eq!(
            got,
            [
                PathBuf::from("/data/pods/u1/volumes/kubernetes.io~secret/s"),
                PathBuf::from("/data/pods/u1/volumes/kubernetes.io~empty-dir/a b"),
                PathBuf::from("/data/pods/u1"),
            ]
        );
    }

    #[test]
    fn plain_dir_is_not_a_mount_point() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("d");
        fs::create_dir(&d).unwrap();
        assert!(!is_mount_point(&d).unwrap());
    }

    /// Needs root (CAP_SYS_ADMIN): `cargo test -p kubelet --lib volumes::mount -- --ignored`.
    #[test]
    #[ignore]
    fn tmpfs_mount_and_unmount() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("mem");
        fs::create_dir(&d).unwrap();
        mount_tmpfs(&d, Some(1 << 20)).unwrap();
        mount_tmpfs(&d, Some(1 << 20)).unwrap(); // idempotent
        assert!(is_mount_point(&d).unwrap());
        assert_eq!(mounts_under(tmp.path()).unwrap(), std::slice::from_ref(&d));
        unmount(&d).unwrap();
        assert!(!is_mount_point(&d).unwrap());
    }
}
