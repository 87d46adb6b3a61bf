//! `skiff server`: flags, and the composition of the control plane.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// (data) Folder to hold state
    #[arg(short = 'd', long, env = "SKIFF_DATA_DIR", help_heading = "Data")]
    pub data_dir: Option<PathBuf>,

    /// (listener) Address the API server listens on
    #[arg(
        long,
        env = "SKIFF_BIND_ADDRESS",
        default_value = "0.0.0.0",
        help_heading = "Listener"
    )]
    pub bind_address: IpAddr,

    /// (listener) HTTPS listen port
    #[arg(
        long,
        env = "SKIFF_HTTPS_LISTEN_PORT",
        default_value_t = 6443,
        help_heading = "Listener"
    )]
    pub https_listen_port: u16,

    /// (listener) Address advertised to clients and in the `kubernetes` Endpoints (default: first non-loopback address, else 127.0.0.1)
    #[arg(long, env = "SKIFF_ADVERTISE_ADDRESS", help_heading = "Listener")]
    pub advertise_address: Option<IpAddr>,

    /// (listener) Extra hostnames or IPs for the serving certificate
    #[arg(
        long = "tls-san",
        env = "SKIFF_TLS_SAN",
        value_delimiter = ',',
        help_heading = "Listener"
    )]
    pub tls_san: Vec<String>,

    /// (client) Write the admin kubeconfig to this file [default: <data-dir>/kubeconfig.yaml]
    #[arg(
        short = 'o',
        long,
        env = "SKIFF_WRITE_KUBECONFIG",
        help_heading = "Client"
    )]
    pub write_kubeconfig: Option<PathBuf>,

    /// (db) Storage: a SQLite file (`sqlite:///path/state.db` or a path) [default: <data-dir>/server/db/state.db]
    #[arg(long, env = "SKIFF_DATASTORE_ENDPOINT", help_heading = "Database")]
    pub datastore_endpoint: Option<String>,

    /// (networking) IPv4 range for Service cluster IPs
    #[arg(
        long,
        env = "SKIFF_SERVICE_CIDR",
        default_value = "10.43.0.0/16",
        help_heading = "Networking"
    )]
    pub service_cidr: String,

    /// (networking) Port range for NodePort Services
    #[arg(
        long,
        env = "SKIFF_SERVICE_NODE_PORT_RANGE",
        default_value = "30000-32767",
        help_heading = "Networking"
    )]
    pub service_node_port_range: String,

    /// (components) Run only the control plane, no node agent on this machine
    #[arg(long, env = "SKIFF_DISABLE_AGENT", help_heading = "Components")]
    pub disable_agent: bool,

    /// (components) Do not run the scheduler in this server
    #[arg(long, env = "SKIFF_DISABLE_SCHEDULER", help_heading = "Components")]
    pub disable_scheduler: bool,

    /// (components) Do not run the controller manager in this server
    #[arg(
        long,
        env = "SKIFF_DISABLE_CONTROLLER_MANAGER",
        help_heading = "Components"
    )]
    pub disable_controller_manager: bool,

    /// (api) How long events are kept after their last occurrence (seconds)
    #[arg(
        long,
        env = "SKIFF_EVENT_TTL",
        default_value_t = 3600,
        help_heading = "API"
    )]
    pub event_ttl: u64,

    /// (db) How often history is compacted (seconds)
    #[arg(
        long,
        env = "SKIFF_COMPACTION_INTERVAL",
        default_value_t = 300,
        help_heading = "Database"
    )]
    pub compaction_interval: u64,

    #[command(flatten)]
    pub controllers: ControllerArgs,

    #[command(flatten)]
    pub node: super::agent::NodeArgs,
}

/// The controller manager's flags (kube-controller-manager's names), shared
/// by `skiff server` and `skiff controller-manager`.
#[derive(Args, Debug, Clone)]
pub struct ControllerArgs {
    /// (controllers) The range node pod CIDRs are cut from
    #[arg(
        long,
        env = "SKIFF_CLUSTER_CIDR",
        default_value = "10.42.0.0/16",
        value_parser = parse_cluster_cidr,
        help_heading = "Controllers"
    )]
    pub cluster_cidr: String,

    /// (controllers) The prefix length of each node's pod CIDR
    #[arg(
        long,
        env = "SKIFF_NODE_CIDR_MASK_SIZE",
        default_value_t = 24,
        value_parser = clap::value_parser!(u8).range(1..=30),
        help_heading = "Controllers"
    )]
    pub node_cidr_mask_size: u8,

    /// (controllers) How long a node may stay silent before it is marked
    /// Unknown (seconds, or a duration: 40s, 2m, 500ms)
    #[arg(
        long,
        env = "SKIFF_NODE_MONITOR_GRACE_PERIOD",
        default_value = "40s",
        value_parser = parse_duration,
        help_heading = "Controllers"
    )]
    pub node_monitor_grace_period: Duration,

    /// (controllers) Finished pods kept at most before the oldest are
    /// deleted (0: keep all)
    #[arg(
        long,
        env = "SKIFF_TERMINATED_POD_GC_THRESHOLD",
        default_value_t = 12500,
        help_heading = "Controllers"
    )]
    pub terminated_pod_gc_threshold: usize,

    /// (components) Do not run a packaged component (repeatable or
    /// comma-separated): servicelb
    #[arg(
        long,
        env = "SKIFF_DISABLE",
        value_delimiter = ',',
        value_parser = clap::builder::PossibleValuesParser::new(DISABLABLE),
        help_heading = "Components"
    )]
    pub disable: Vec<String>,
}

/// The components `--disable` can turn off (k3s' names).
pub const DISABLABLE: &[&str] = &["servicelb"];

impl ControllerArgs {
    pub fn config(&self) -> controllers::Config {
        controllers::Config {
            cluster_cidr: self.cluster_cidr.clone(),
            node_cidr_mask_size: self.node_cidr_mask_size,
            node_monitor_grace_period: self.node_monitor_grace_period,
            terminated_pod_gc_threshold: self.terminated_pod_gc_threshold,
            servicelb: !self.disabled("servicelb"),
        }
    }

    /// Whether `--disable` names this component.
    pub fn disabled(&self, component: &str) -> bool {
        self.disable.iter().any(|d| d == component)
    }
}

/// An IPv4 range, checked the way the node IPAM controller will use it.
fn parse_cluster_cidr(s: &str) -> Result<String, String> {
    controllers::nodeipam::CidrSet::new(s, 30)
        .map(|_| s.to_string())
        .or_else(|e| match e {
            controllers::nodeipam::CidrError::Invalid(_) => Err(e.to_string()),
            // Only the range is checked here; the mask size at start.
            controllers::nodeipam::CidrError::MaskSize { .. } => Ok(s.to_string()),
        })
}

/// `40` (seconds), `40s`, `2m`, `1h`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 40s, 2m, 500ms"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!(
            "invalid duration {s:?}: expected e.g. 40s, 2m, 500ms"
        )),
    }
}

fn default_data_dir() -> PathBuf {
    // /proc/self belongs to the effective user: root gets the system location.
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if is_root {
        PathBuf::from("/var/lib/skiff")
    } else {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".local/share/skiff")
    }
}

fn parse_port_range(s: &str) -> anyhow::Result<(u16, u16)> {
    let (a, b) = s
        .split_once('-')
        .with_context(|| format!("--service-node-port-range {s:?}: expected FROM-TO"))?;
    let (a, b): (u16, u16) = (a.trim().parse()?, b.trim().parse()?);
    if a == 0 || a > b {
        bail!("--service-node-port-range {s:?}: invalid range");
    }
    Ok((a, b))
}

fn sqlite_path(endpoint: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = endpoint.strip_prefix("sqlite://") {
        return Ok(PathBuf::from(p.split('?').next().unwrap_or(p)));
    }
    if endpoint.contains("://") {
        bail!("--datastore-endpoint {endpoint:?}: only SQLite is supported by this build (etcd comes later)");
    }
    Ok(PathBuf::from(endpoint))
}

fn first_host_address() -> Option<IpAddr> {
    // The address the kernel would use to reach a routable destination; no
    // packet is sent by connecting a UDP socket.
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let service_cidr =
        api::allocator::Cidr::parse(&args.service_cidr).map_err(anyhow::Error::msg)?;
    let node_port_range = parse_port_range(&args.service_node_port_range)?;
    let ipam = &args.controllers;
    controllers::nodeipam::CidrSet::new(&ipam.cluster_cidr, ipam.node_cidr_mask_size)
        .context("--cluster-cidr / --node-cidr-mask-size")?;

    let db_path = match &args.datastore_endpoint {
        Some(e) => sqlite_path(e)?,
        None => data_dir.join("server/db/state.db"),
    };
    if let Some(parent) = db_path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let storage: Arc<dyn store::Storage> = store::sqlite::SqliteStore::open(&db_path)
        .with_context(|| format!("opening the datastore {}", db_path.display()))?;

    let advertise = args
        .advertise_address
        .or_else(|| (!args.bind_address.is_unspecified()).then_some(args.bind_address))
        .or_else(first_host_address)
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let mut extra = args.tls_san.clone();
    extra.push(advertise.to_string());
    if !args.bind_address.is_unspecified() {
        extra.push(args.bind_address.to_string());
    }
    let (sans_dns, sans_ip) = api::pki::default_sans(IpAddr::V4(service_cidr.first()), &extra);
    let pki = api::pki::Pki::load_or_create(&api::pki::PkiConfig {
        dir: data_dir.join("server/tls"),
        sans_dns,
        sans_ip,
    })?;
    let tls = pki.server_config()?;

    let kubeconfig_path = args
        .write_kubeconfig
        .clone()
        .unwrap_or_else(|| data_dir.join("kubeconfig.yaml"));
    let local = if args.bind_address.is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        match args.bind_address {
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        }
    };
    let url = format!("https://{local}:{}", args.https_listen_port);
    api::kubeconfig::write(
        &kubeconfig_path,
        &api::kubeconfig::render(
            &url,
            &pki.ca_cert_pem,
            &pki.admin_cert_pem,
            &pki.admin_key_pem,
        ),
    )
    .with_context(|| format!("writing {}", kubeconfig_path.display()))?;

    let cfg = api::Config {
        bind_address: args.bind_address,
        port: args.https_listen_port,
        advertise_address: match advertise {
            IpAddr::V6(a) => format!("[{a}]:{}", args.https_listen_port),
            a => format!("{a}:{}", args.https_listen_port),
        },
        service_cidr,
        node_port_range,
        event_ttl: Duration::from_secs(args.event_ttl.max(1)),
        compaction_interval: Duration::from_secs(args.compaction_interval.max(1)),
        // Kubelets (logs, exec, attach, port-forward) are reached with a
        // client certificate of the API server's own.
        kubelet_client: Some(pki.kubelet_client_config()?),
        // The agents' `--cluster-dns` (its first address) is the cluster IP
        // of `kube-system/kube-dns`.
        cluster_dns: match args.node.cluster_dns.first() {
            Some(ip) => Some(
                ip.parse()
                    .with_context(|| format!("--cluster-dns {ip:?}: not an IP address"))?,
            ),
            None => None,
        },
    };
    // The agent of a server is a control-plane node; its kubelet endpoint
    // accepts the API server's client certificate, signed by the cluster CA.
    let agent_config = if args.disable_agent {
        None
    } else {
        Some(args.node.config(&data_dir, true, pki.ca_cert_pem.clone())?)
    };

    // A signal stops the components first (they release their leases
    // through the API), then the API server.
    let stop = CancellationToken::new();
    let shutdown = CancellationToken::new();
    let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(false);
    let mut api_task = tokio::spawn(api::run(cfg, storage, tls, ready_tx, shutdown.clone()));
    let signals = tokio::spawn(super::wait_for_signal(stop.clone()));
    tokio::select! {
        r = ready_rx.wait_for(|r| *r) => {
            if r.is_ok() {
                eprintln!("skiff server ready in {:?}; kubeconfig: {}", started.elapsed(), kubeconfig_path.display());
                eprintln!("  export KUBECONFIG={}", kubeconfig_path.display());
            }
        }
        _ = stop.cancelled() => {}
    }
    // The scheduler and the controllers are clients of the API like any
    // other; they start once it serves and use the admin credentials.
    let mut components = tokio::task::JoinSet::new();
    if !stop.is_cancelled()
        && (!args.disable_scheduler || !args.disable_controller_manager || agent_config.is_some())
    {
        let client = client::from_kubeconfig(&kubeconfig_path).await?;
        if !args.disable_scheduler {
            let (client, stop) = (client.clone(), stop.clone());
            components.spawn(async move {
                if let Err(e) = scheduler::run(client, scheduler::Config::default(), stop).await {
                    tracing::error!(error = %e, "scheduler stopped");
                }
            });
        }
        if !args.disable_controller_manager {
            let (client, stop) = (client.clone(), stop.clone());
            let controller_config = args.controllers.config();
            components.spawn(async move {
                if let Err(e) = controllers::run(client, controller_config, stop).await {
                    tracing::error!(error = %e, "controller manager stopped");
                }
            });
        }
        if let Some(config) = agent_config {
            let (client, stop) = (client.clone(), stop.clone());
            let network = super::agent::Network {
                service_cidr: args.service_cidr.clone(),
                cluster_cidr: args.controllers.cluster_cidr.clone(),
            };
            components.spawn(async move {
                if let Err(e) = super::agent::run_node(client, config, network, stop).await {
                    tracing::error!(error = format!("{e:#}"), "node agent stopped");
                }
            });
        }
    }
    let result = tokio::select! {
        r = &mut api_task => r,
        _ = stop.cancelled() => {
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while components.join_next().await.is_some() {}
            })
            .await;
            shutdown.cancel();
            api_task.await
        }
    }
    .context("API server task panicked")?;
    components.abort_all();
    signals.abort();
    result?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("40"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("8s"), Ok(Duration::from_secs(8)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "s", "1.5s", "-1s", "10d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cluster_cidrs() {
        assert!(parse_cluster_cidr("10.42.0.0/16").is_ok());
        assert!(parse_cluster_cidr("10.42.0.0").is_err());
        assert!(parse_cluster_cidr("fd00::/48").is_err());
    }
}
