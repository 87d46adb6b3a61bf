//! hostPath type checks (`spec.volumes[].hostPath.type`), with upstream's
//! messages.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Checks (and for `*OrCreate`, creates) `path` as its `type` demands.
pub fn check_type(path: &str, kind: Option<&str>) -> Result<(), String> {
    let p = Path::new(path);
    match kind.unwrap_or("") {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if !p.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .create(p)
                    .map_err(|e| format!("mkdir {path}: {}", os_text(&e)))?;
                // umask must not narrow what upstream creates (0755).
                set_mode(p, 0o755)?;
            }
            matches(path, "Directory", "directory")
        }
        "Directory" => matches(path, "Directory", "directory"),
        "FileOrCreate" => {
            if !p.exists() {
                fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o644)
                    .open(p)
                    .map_err(|e| format!("open {path}: {}", os_text(&e)))?;
            }
            matches(path, "File", "file")
        }
        "File" => matches(path, "File", "file"),
        "Socket" => matches(path, "Socket", "socket file"),
        "CharDevice" => matches(path, "CharDevice", "character device"),
        "BlockDevice" => matches(path, "BlockDevice", "block device"),
        other => Err(format!("{other} is an invalid volume type")),
    }
}

fn set_mode(p: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {}", p.display(), os_text(&e)))
}

fn matches(path: &str, want: &str, description: &str) -> Result<(), String> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(_) => return Err(format!("hostPath {path} doesn't exist")),
    };
    let ft = meta.file_type();
    let actual = if ft.is_dir() {
        "Directory"
    } else if ft.is_file() {
        "File"
    } else if ft.is_socket() {
        "Socket"
    } else if ft.is_char_device() {
        "CharDevice"
    } else if ft.is_block_device() {
        "BlockDevice"
    } else {
        return Err(format!(
            "hostPath type check failed, {path} is not a {description}, unable to determine its type: \
             only recognise file, directory, socket, block device and character device"
        ));
    };
    if actual != want {
        return Err(format!(
            "hostPath type check failed: {path} is not a {description}, it's a {actual}"
        ));
    }
    Ok(())
}

/// Go-style error text (`no such file or directory`), without Rust's
/// ` (os error 2)` suffix.
pub(crate) fn os_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_str().unwrap().to_string();
        let file = format!("{dir}/f");
        fs::write(&file, "x").unwrap();
        let missing = format!("{dir}/missing");

        assert!(check_type(&missing, None).is_ok());
        assert!(check_type(&missing, Some("")).is_ok());
        assert!(check_type(&dir, Some("Directory")).is_ok());
        assert!(check_type(&file, Some("File")).is_ok());
        assert_eq!(
            check_type(&file, Some("Directory")).unwrap_err(),
            format!("hostPath type check failed: {file} is not a directory, it's a File")
        );
        assert_eq!(
            check_type(&dir, Some("Socket")).unwrap_err(),
            format!("hostPath type check failed: {dir} is not a socket file, it's a Directory")
        );
        assert_eq!(
            check_type(&missing, Some("File")).unwrap_err(),
            format!("hostPath {missing} doesn't exist")
        );
        assert!(check_type("/dev/null", Some("CharDevice")).is_ok());
        assert_eq!(
            check_type("/dev/null", Some("BlockDevice")).unwrap_err(),
            "hostPath type check failed: /dev/null is not a block device, it's a CharDevice"
        );
        assert_eq!(
            check_type(&dir, Some("Bogus")).unwrap_err(),
            "Bogus is an invalid volume type"
        );

        let new_dir = format!("{dir}/a/b");
        check_type(&new_dir, Some("DirectoryOrCreate")).unwrap();
        assert!(Path::new(&new_dir).is_dir());
        let new_file = format!("{dir}/a/new");
        check_type(&new_file, Some("FileOrCreate")).unwrap();
        assert!(Path::new(&new_file).is_file());
        // FileOrCreate on an existing directory is a type error.
        assert!(check_type(&new_dir, Some("FileOrCreate"))
            .unwrap_err()
            .contains("is not a file"));
        // FileOrCreate does not create parents, as upstream.
        let deep = format!("{dir}/x/y/z");
        assert!(check_type(&deep, Some("FileOrCreate"))
            .unwrap_err()
            .contains("no such file or directory"));
    }
}
