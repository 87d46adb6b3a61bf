//! The agent's own containerd: a child process with a config written under
//! `<root>/containerd/` (own root, state and socket; CRI on; overlayfs;
//! cgroupfs driver), as k3s runs its embedded containerd. The settings that
//! matter on these machines are explained in the project's runtime notes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

/// Where the containerd of an agent rooted at `root` lives.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(agent_root: &Path) -> Layout {
        Layout {
            dir: agent_root.join("containerd"),
        }
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }
}

pub struct Settings<'a> {
    pub sandbox_image: &'a str,
    pub cni_bin_dir: &'a Path,
    pub cni_conf_dir: &'a Path,
    /// Extra TOML for the CRI registry section (mirrors and credentials).
    pub registry_toml: &'a str,
}

/// The containerd config. Paths are absolute: containerd expands nothing.
pub fn config_toml(layout: &Layout, s: &Settings) -> String {
    let d = layout.dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
oom_score = 0

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{sandbox}"
    enable_selinux = false
    disable_apparmor = true
    # Root here may lack CAP_SYS_RESOURCE: negative oom_score_adj values fail.
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_unprivileged_ports = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{bin}"
      conf_dir = "{conf}"
      max_conf_num = 1
{registry}"#,
        sandbox = s.sandbox_image,
        bin = s.cni_bin_dir.display(),
        conf = s.cni_conf_dir.display(),
        registry = s.registry_toml,
    )
}

/// A running containerd child. Dropping it leaves containerd running: pods
/// must survive an agent restart, so the process is only stopped on
/// purpose (see [`Containerd::stop`]).
pub struct Containerd {
    child: Option<Child>,
    pub socket: PathBuf,
}

impl Containerd {
    /// Starts containerd unless one already answers on the socket (an agent
    /// restart adopts the containerd its predecessor started, and with it
    /// every running container).
    pub async fn start(layout: &Layout, settings: &Settings<'_>) -> anyhow::Result<Containerd> {
        std::fs::create_dir_all(&layout.dir)
            .with_context(|| format!("creating {}", layout.dir.display()))?;
        let config = config_toml(layout, settings);
        let socket = layout.socket();
        let unchanged = std::fs::read_to_string(layout.config()).ok().as_deref() == Some(&config);
        if unchanged && answers(&socket).await {
            tracing::info!(socket = %socket.display(), "adopting the running containerd");
            return Ok(Containerd {
                child: None,
                socket,
            });
        }
        std::fs::write(layout.config(), &config)
            .with_context(|| format!("writing {}", layout.config().display()))?;
        let _ = std::fs::remove_file(&socket);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(layout.log())
            .with_context(|| format!("opening {}", layout.log().display()))?;
        let mut cmd = Command::new("containerd");
        cmd.arg("--config")
            .arg(layout.config())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C meant for skiff must not stop
            // the containers' runtime with it.
            .process_group(0)
            .kill_on_drop(false);
        let child = cmd
            .spawn()
            .context("starting containerd (is the `containerd` package installed?)")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !answers(&socket).await {
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "containerd did not serve {} within 30s; see {}",
                    socket.display(),
                    layout.log().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tracing::info!(pid = child.id(), socket = %socket.display(), "containerd started");
        Ok(Containerd {
            child: Some(child),
            socket,
        })
    }

    /// Stops the containerd this agent started (containers keep running in
    /// their shims; a later start adopts them).
    pub async fn stop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(pid) = child.id() {
                // SAFETY: plain kill(2) on our own child's pid.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }
}

async fn answers(socket: &Path) -> bool {
    socket.exists() && tokio::net::UnixStream::connect(socket).await.is_ok()
}
