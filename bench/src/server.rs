//! Starts, measures and kills the real `skiff server` process.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::client::{tls_config, Client};

/// A running `skiff server --disable-agent` on 127.0.0.1.
pub struct Server {
    bin: PathBuf,
    dir: PathBuf,
    pub addr: SocketAddr,
    child: Option<Child>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Server {
    /// Starts a server on `dir` (created if missing) and waits until it is
    /// ready. Returns it with the time from spawn to ready.
    pub async fn start(bin: &Path, dir: &Path) -> Result<(Server, Duration)> {
        std::fs::create_dir_all(dir)?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let mut server = Server {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            child: None,
            tls: None,
        };
        let took = server.launch().await?;
        Ok((server, took))
    }

    /// Starts the server again on the same data dir and port.
    pub async fn start_again(&mut self) -> Result<Duration> {
        self.launch().await
    }

    async fn launch(&mut self) -> Result<Duration> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let started = Instant::now();
        let child = Command::new(&self.bin)
            .args(["server", "--disable-agent", "--bind-address", "127.0.0.1"])
            .arg("--https-listen-port")
            .arg(self.addr.port().to_string())
            .arg("--data-dir")
            .arg(&self.dir)
            .env(
                "SKIFF_LOG",
                std::env::var("SKIFF_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                let error = log
                    .lines()
                    .find(|l| l.starts_with("Error:"))
                    .unwrap_or("(no Error: line)");
                bail!(
                    "skiff server exited early ({status}): {error}\nlog:\n{}",
                    self.log_tail(30)
                );
            }
            if self.dir.join("kubeconfig.yaml").exists() && self.readyz().await {
                return Ok(started.elapsed());
            }
            if Instant::now() > deadline {
                bail!(
                    "skiff server not ready within 60 s; log:\n{}",
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn readyz(&mut self) -> bool {
        if self.tls.is_none() {
            match tls_config(&self.dir) {
                Ok(tls) => self.tls = Some(tls),
                Err(_) => return false,
            }
        }
        match self.client().await {
            Ok(mut c) => matches!(c.get("/readyz").await, Ok((s, _)) if s.is_success()),
            Err(_) => false,
        }
    }

    /// A new connection with the admin client certificate.
    pub async fn client(&self) -> Result<Client> {
        let tls = self
            .tls
            .clone()
            .context("server TLS material not loaded yet")?;
        Client::connect(self.addr, tls).await
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Resident set size of the server process, in KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        let pid = self.pid().context("server not running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc/<pid>/status")
    }

    /// CPU time (user + system) the server has used so far.
    pub fn cpu(&self) -> Result<Duration> {
        let pid = self.pid().context("server not running")?;
        cpu_of(&format!("/proc/{pid}/stat"))
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait up to 10 s for the process to exit, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("  ! server did not exit within 10 s of SIGTERM; killing it");
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The last `n` lines of the server's log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Log lines at WARN or ERROR level, labelled with the phase, for the
    /// end-of-run report.
    pub fn log_problems(&self, phase: &str) -> Vec<String> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("panicked"))
            .map(|l| format!("[{phase}] {l}"))
            .collect()
    }
}

/// User + system CPU time of a process, from its `/proc/<pid>/stat`.
pub fn cpu_of(stat_path: &str) -> Result<Duration> {
    let stat = std::fs::read_to_string(stat_path)?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, in clock ticks (USER_HZ, 100 on Linux).
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).context("no utime")?.parse::<u64>()?
        + fields.get(12).context("no stime")?.parse::<u64>()?;
    Ok(Duration::from_millis(ticks * 10))
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}
