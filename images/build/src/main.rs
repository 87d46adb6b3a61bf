//! `image-build`: turns a root filesystem directory into a one-layer OCI image
//! layout tarball that `ctr images import` (and so `skiff images import`)
//! loads under a fully qualified name.
//!
//! ```text
//! image-build --name localhost/pause:3.10 --rootfs DIR --out pause.tar \
//!     [--entrypoint '["/pause"]'] [--cmd '["sh"]'] [--env K=V]... [--workdir /] \
//!     [--user U] [--port 8080/tcp]...
//! ```
//!
//! The output is deterministic (entries sorted, uid/gid 0, mtime 0, gzip
//! header without time), and an existing output with the same bytes is left
//! untouched, so its mtime only changes when the image does; the agent skips
//! re-importing tarballs whose size and mtime it has seen.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct Args {
    name: String,
    rootfs: PathBuf,
    out: PathBuf,
    entrypoint: Option<Value>,
    cmd: Option<Value>,
    env: Vec<String>,
    workdir: String,
    user: Option<String>,
    ports: Vec<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: image-build --name REF --rootfs DIR --out FILE [--entrypoint JSON] [--cmd JSON] \
         [--env K=V]... [--workdir DIR] [--user U] [--port 8080/tcp]..."
    );
    std::process::exit(2)
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut name, mut rootfs, mut out) = (None, None, None);
    let mut args = Args {
        name: String::new(),
        rootfs: PathBuf::new(),
        out: PathBuf::new(),
        entrypoint: None,
        cmd: None,
        env: Vec::new(),
        workdir: "/".into(),
        user: None,
        ports: Vec::new(),
    };
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            usage();
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let json_array = |v: &str| -> Result<Value, String> {
            let parsed: Value =
                serde_json::from_str(v).map_err(|e| format!("{flag}: not JSON: {e}"))?;
            if !parsed.is_array() {
                return Err(format!("{flag}: want a JSON array of strings"));
            }
            Ok(parsed)
        };
        match flag.as_str() {
            "--name" => name = Some(value),
            "--rootfs" => rootfs = Some(PathBuf::from(value)),
            "--out" => out = Some(PathBuf::from(value)),
            "--entrypoint" => args.entrypoint = Some(json_array(&value)?),
            "--cmd" => args.cmd = Some(json_array(&value)?),
            "--env" => args.env.push(value),
            "--workdir" => args.workdir = value,
            "--user" => args.user = Some(value),
            "--port" => args.ports.push(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    args.name = name.ok_or("--name is required")?;
    args.rootfs = rootfs.ok_or("--rootfs is required")?;
    args.out = out.ok_or("--out is required")?;
    Ok(args)
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// All paths under `root`, relative, sorted so the layer is reproducible.
fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for name in entries {
        let path = rel.join(name);
        out.push(path.clone());
        let meta = fs::symlink_metadata(root.join(&path))?;
        if meta.is_dir() {
            walk(root, &path, out)?;
        }
    }
    Ok(())
}

/// The layer: an uncompressed tar of the root filesystem with owner root and
/// time zero on every entry.
fn layer_tar(root: &Path) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::MetadataExt;
    let mut paths = Vec::new();
    walk(root, Path::new(""), &mut paths)
        .map_err(|e| format!("reading {}: {e}", root.display()))?;
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for rel in paths {
        let full = root.join(&rel);
        let meta = fs::symlink_metadata(&full).map_err(|e| format!("{}: {e}", full.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_mode(meta.mode() & 0o7777);
        let io = |e: std::io::Error| format!("{}: {e}", full.display());
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&full).map_err(io)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder
                .append_link(&mut header, &rel, &target)
                .map_err(io)?;
        } else if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder
                .append_data(&mut header, &rel, std::io::empty())
                .map_err(io)?;
        } else if meta.is_file() {
            let data = fs::read(&full).map_err(io)?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(data.len() as u64);
            builder
                .append_data(&mut header, &rel, data.as_slice())
                .map_err(io)?;
        } else {
            return Err(format!("{}: unsupported file type", full.display()));
        }
    }
    builder.into_inner().map_err(|e| e.to_string())
}

fn gzip(data: &[u8]) -> Result<Vec<u8>, String> {
    // GzBuilder writes mtime 0 unless told otherwise: reproducible bytes.
    let mut enc = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    enc.write_all(data).map_err(|e| e.to_string())?;
    enc.finish().map_err(|e| e.to_string())
}

/// The tag part of a reference (`localhost/pause:3.10` → `3.10`), for the
/// `org.opencontainers.image.ref.name` annotation.
fn tag_of(name: &str) -> &str {
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag,
        None => "latest",
    }
}

fn build(args: &Args) -> Result<Vec<u8>, String> {
    let layer = layer_tar(&args.rootfs)?;
    let diff_id = format!("sha256:{}", sha256_hex(&layer));
    let layer_gz = gzip(&layer)?;
    let layer_digest = sha256_hex(&layer_gz);

    let mut env = vec![DEFAULT_PATH.to_string()];
    env.extend(args.env.iter().cloned());
    let mut config = json!({ "Env": env, "WorkingDir": args.workdir });
    if let Some(e) = &args.entrypoint {
        config["Entrypoint"] = e.clone();
    }
    if let Some(c) = &args.cmd {
        config["Cmd"] = c.clone();
    }
    if let Some(u) = &args.user {
        config["User"] = json!(u);
    }
    if !args.ports.is_empty() {
        let ports: serde_json::Map<String, Value> =
            args.ports.iter().map(|p| (p.clone(), json!({}))).collect();
        config["ExposedPorts"] = Value::Object(ports);
    }
    let image_config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created_by": "skiff image-build", "comment": args.name }],
    });
    let config_bytes = serde_json::to_vec(&image_config).map_err(|e| e.to_string())?;
    let config_digest = sha256_hex(&config_bytes);

    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_digest}"),
            "size": config_bytes.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{layer_digest}"),
            "size": layer_gz.len(),
        }],
    });
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    let manifest_digest = sha256_hex(&manifest_bytes);

    // The full name in io.containerd.image.name: without it containerd
    // invents `import-<date>:<tag>`, which confuses CRI's image cache.
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest_bytes.len(),
            "platform": { "architecture": "amd64", "os": "linux" },
            "annotations": {
                "io.containerd.image.name": args.name,
                "org.opencontainers.image.ref.name": tag_of(&args.name),
            },
        }],
    });
    let index_bytes = serde_json::to_vec(&index).map_err(|e| e.to_string())?;

    let mut outer = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], dir: bool| -> Result<(), String> {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if dir {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
        }
        h.set_size(data.len() as u64);
        outer
            .append_data(&mut h, path, data)
            .map_err(|e| format!("{path}: {e}"))
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, false)?;
    add("index.json", &index_bytes, false)?;
    add("blobs/", b"", true)?;
    add("blobs/sha256/", b"", true)?;
    add(
        &format!("blobs/sha256/{config_digest}"),
        &config_bytes,
        false,
    )?;
    add(&format!("blobs/sha256/{layer_digest}"), &layer_gz, false)?;
    add(
        &format!("blobs/sha256/{manifest_digest}"),
        &manifest_bytes,
        false,
    )?;
    outer.into_inner().map_err(|e| e.to_string())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("image-build: {e}");
            usage();
        }
    };
    let bytes = match build(&args) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("image-build: {e}");
            std::process::exit(1);
        }
    };
    if fs::read(&args.out).ok().as_deref() == Some(bytes.as_slice()) {
        println!("{} unchanged: {}", args.name, args.out.display());
        return;
    }
    let tmp = args.out.with_extension("tar.tmp");
    let written = fs::write(&tmp, &bytes).and_then(|_| fs::rename(&tmp, &args.out));
    if let Err(e) = written {
        eprintln!("image-build: writing {}: {e}", args.out.display());
        std::process::exit(1);
    }
    println!(
        "{} written: {} ({} bytes)",
        args.name,
        args.out.display(),
        bytes.len()
    );
}
