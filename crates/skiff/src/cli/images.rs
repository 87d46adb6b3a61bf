//! `skiff images import FILE...` and `skiff images list`: the node's images
//! in its containerd (as `k3s ctr images import` / `crictl images`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub command: ImagesCommand,
}

#[derive(Subcommand, Debug)]
pub enum ImagesCommand {
    /// Import image tarballs (OCI layout or `docker save` archives, optionally gzipped) into the node's containerd.
    Import(ImportArgs),
    /// List the images the node's container runtime has.
    List(RuntimeArgs),
}

#[derive(Args, Debug)]
pub struct RuntimeArgs {
    /// CRI socket [default: unix://<data-dir>/agent/containerd/containerd.sock]
    #[arg(long, env = "SKIFF_CONTAINER_RUNTIME_ENDPOINT")]
    pub container_runtime_endpoint: Option<String>,

    /// The agent's data directory
    #[arg(long, env = "SKIFF_DATA_DIR", default_value = "/var/lib/skiff")]
    pub data_dir: PathBuf,
}

impl RuntimeArgs {
    fn socket(&self) -> PathBuf {
        match &self.container_runtime_endpoint {
            Some(e) => PathBuf::from(e.strip_prefix("unix://").unwrap_or(e)),
            None => self.data_dir.join("agent/containerd/containerd.sock"),
        }
    }
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Tarballs to import
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

pub async fn run(args: ImagesArgs) -> anyhow::Result<()> {
    match args.command {
        ImagesCommand::Import(a) => import(a).await,
        ImagesCommand::List(a) => list(a).await,
    }
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let socket = args.runtime.socket();
    for file in &args.files {
        eprint!("importing {} ... ", file.display());
        let start = Instant::now();
        let names = kubelet::images::import_file(&socket, file).await?;
        eprintln!("done in {:.1}s", start.elapsed().as_secs_f64());
        for name in names {
            println!("{name}");
        }
    }
    Ok(())
}

async fn list(args: RuntimeArgs) -> anyhow::Result<()> {
    let socket = args.socket();
    let rt =
        kubelet::cri::Runtime::connect(&socket.to_string_lossy(), Duration::from_secs(5)).await?;
    let images = kubelet::images::list(&rt).await?;
    // crictl images' columns.
    let mut rows = vec![[
        "IMAGE".to_string(),
        "TAG".to_string(),
        "IMAGE ID".to_string(),
        "SIZE".to_string(),
    ]];
    for image in &images {
        let id = image.id.strip_prefix("sha256:").unwrap_or(&image.id);
        let short_id = id.get(..13).unwrap_or(id).to_string();
        let size = human_size(image.size);
        let tags: Vec<(String, String)> = if image.repo_tags.is_empty() {
            let repo = image
                .repo_digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map_or("<none>", |(r, _)| r);
            vec![(repo.to_string(), "<none>".to_string())]
        } else {
            image
                .repo_tags
                .iter()
                .map(|t| match t.rsplit_once(':') {
                    Some((r, tag)) if !tag.contains('/') => (r.to_string(), tag.to_string()),
                    _ => (t.clone(), "<none>".to_string()),
                })
                .collect()
        };
        for (repo, tag) in tags {
            rows.push([repo, tag, short_id.clone(), size.clone()]);
        }
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        println!(
            "{:<w0$}   {:<w1$}   {:<w2$}   {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    Ok(())
}

/// `crictl`'s sizes: `1.05MB`, `663kB` (decimal units, 3 significant digits).
fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let text = if value >= 100.0 || unit == 0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", units[unit])
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_like_crictl() {
        assert_eq!(super::human_size(512), "512B");
        assert_eq!(super::human_size(663_040), "663kB");
        assert_eq!(super::human_size(1_040_896), "1.04MB");
        assert_eq!(super::human_size(12_500_000), "12.5MB");
    }
}
