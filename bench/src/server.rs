//! Starts, measures and kills the real `skiff server` process, and the
//! other `skiff` processes a phase runs beside it ([`Helper`]).

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::client::{tls_config, Client};

/// The flags [`Server::start`] adds after `--disable-agent`: no scheduler
/// and no controllers, so nothing but the benchmark writes (10,000 unbound
/// pods would otherwise each get scheduling attempts).
pub const API_ONLY: &[&str] = &["--disable-scheduler", "--disable-controller-manager"];

/// A running `skiff server --disable-agent` on 127.0.0.1.
pub struct Server {
    bin: PathBuf,
    dir: PathBuf,
    flags: Vec<String>,
    pub addr: SocketAddr,
    child: Option<Child>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Server {
    /// Starts an API-only server ([`API_ONLY`]) on `dir` (created if
    /// missing) and waits until it is ready. Returns it with the time from
    /// spawn to ready.
    pub async fn start(bin: &Path, dir: &Path) -> Result<(Server, Duration)> {
        Server::start_with(bin, dir, API_ONLY).await
    }

    /// Like [`Server::start`], with `flags` in place of [`API_ONLY`] (after
    /// `server --disable-agent` and the address, port and data dir flags);
    /// `&[]` runs the in-process scheduler and controller manager.
    pub async fn start_with(bin: &Path, dir: &Path, flags: &[&str]) -> Result<(Server, Duration)> {
        std::fs::create_dir_all(dir)?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let mut server = Server {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
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
            .args(&self.flags)
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

    /// Where to connect, and the TLS settings, for tasks that open their
    /// own connections.
    pub fn endpoint(&self) -> Result<(SocketAddr, Arc<rustls::ClientConfig>)> {
        let tls = self
            .tls
            .clone()
            .context("server TLS material not loaded yet")?;
        Ok((self.addr, tls))
    }

    /// The admin kubeconfig the server wrote into its data dir.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig.yaml")
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
        rss_of(self.pid().context("server not running")?)
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
            terminate(&mut c, "server");
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The last `n` lines of the server's log.
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log_path(), n)
    }

    /// Log lines at WARN or ERROR level, labelled with the phase, for the
    /// end-of-run report.
    pub fn log_problems(&self, phase: &str) -> Vec<String> {
        log_problems(&self.log_path(), phase)
    }
}

/// Another `skiff` process run beside the server (`skiff hollow-nodes`,
/// `skiff scheduler`), its stderr in a log file. Dropping it stops it.
pub struct Helper {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
    pub started: Instant,
}

impl Helper {
    /// Spawns `bin args...` with stderr appended to `log`, at `SKIFF_LOG`
    /// from the environment or `info`.
    pub fn spawn<S: AsRef<OsStr>>(
        name: &'static str,
        bin: &Path,
        args: &[S],
        log: PathBuf,
    ) -> Result<Helper> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let started = Instant::now();
        let child = Command::new(bin)
            .args(args)
            .env(
                "SKIFF_LOG",
                std::env::var("SKIFF_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {} {name}", bin.display()))?;
        Ok(Helper {
            name,
            child: Some(child),
            log,
            started,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn rss_kib(&self) -> Result<u64> {
        rss_of(
            self.pid()
                .with_context(|| format!("{} not running", self.name))?,
        )
    }

    pub fn cpu(&self) -> Result<Duration> {
        let pid = self
            .pid()
            .with_context(|| format!("{} not running", self.name))?;
        cpu_of(&format!("/proc/{pid}/stat"))
    }

    /// Waits until the log has a line containing `needle`; fails if the
    /// process exits first or `timeout` passes.
    pub async fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Result<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            if std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .contains(needle)
            {
                return Ok(self.started.elapsed());
            }
            if let Some(status) = self.exited() {
                bail!(
                    "{} exited ({status}) before logging {needle:?}; log:\n{}",
                    self.name,
                    self.log_tail(30)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not log {needle:?} within {} s; log:\n{}",
                    self.name,
                    timeout.as_secs(),
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, self.name);
        }
    }

    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log, n)
    }

    pub fn log_problems(&self, phase: &str) -> Vec<String> {
        log_problems(&self.log, &format!("{phase} {}", self.name))
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM and wait up to 10 s for the process to exit, then SIGKILL.
fn terminate(c: &mut Child, name: &str) {
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
    eprintln!("  ! {name} did not exit within 10 s of SIGTERM; killing it");
    let _ = c.kill();
    let _ = c.wait();
}

fn log_tail(path: &Path, n: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn log_problems(path: &Path, label: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("panicked"))
        .map(|l| format!("[{label}] {l}"))
        .collect()
}

/// Resident set size of a process, in KiB.
pub fn rss_of(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
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
