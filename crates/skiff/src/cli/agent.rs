//! `skiff agent`: the node agent alone, against a cluster's API (as a
//! kubelet beside its own containerd). `skiff server` runs the same agent
//! in-process unless `--disable-agent`. Joining with a token comes with the
//! multi-node work; for now the agent uses a kubeconfig.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

/// The node agent's flags (the kubelet's and k3s' names), shared by
/// `skiff server` and `skiff agent`.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// (agent/node) Node name [default: the hostname]
    #[arg(long, env = "SKIFF_NODE_NAME", help_heading = "Agent/node")]
    pub node_name: Option<String>,

    /// (agent/networking) Address to advertise for the node [default: first non-loopback address]
    #[arg(long, env = "SKIFF_NODE_IP", help_heading = "Agent/networking")]
    pub node_ip: Option<IpAddr>,

    /// (agent/node) Label the node registers with (key=value; repeatable)
    #[arg(long = "node-label", value_parser = hollow::parse_label, help_heading = "Agent/node")]
    pub node_labels: Vec<(String, String)>,

    /// (agent/node) Taint the node registers with (key=value:Effect; repeatable)
    #[arg(long = "node-taint", value_parser = hollow::parse_taint, help_heading = "Agent/node")]
    pub node_taints: Vec<hollow::Taint>,

    /// (agent/runtime) An existing CRI socket to use instead of starting containerd
    #[arg(
        long,
        env = "SKIFF_CONTAINER_RUNTIME_ENDPOINT",
        help_heading = "Agent/runtime"
    )]
    pub container_runtime_endpoint: Option<String>,

    /// (agent/runtime) Registry mirrors and credentials (k3s' registries.yaml format)
    #[arg(
        long,
        env = "SKIFF_PRIVATE_REGISTRY",
        default_value = "/etc/skiff/registries.yaml",
        help_heading = "Agent/runtime"
    )]
    pub private_registry: PathBuf,

    /// (agent/runtime) The pod sandbox image
    #[arg(long, env = "SKIFF_PAUSE_IMAGE", default_value = kubelet::SANDBOX_IMAGE, help_heading = "Agent/runtime")]
    pub pause_image: String,

    /// (agent/networking) Cluster DNS address written into pods' resolv.conf
    #[arg(
        long,
        env = "SKIFF_CLUSTER_DNS",
        default_value = "10.43.0.10",
        value_delimiter = ',',
        help_heading = "Agent/networking"
    )]
    pub cluster_dns: Vec<String>,

    /// (agent/networking) Cluster domain
    #[arg(
        long,
        env = "SKIFF_CLUSTER_DOMAIN",
        default_value = "cluster.local",
        help_heading = "Agent/networking"
    )]
    pub cluster_domain: String,

    /// (agent/node) Port of the kubelet's HTTPS endpoint (logs, exec, port-forward, stats)
    #[arg(
        long,
        env = "SKIFF_KUBELET_PORT",
        default_value_t = 10250,
        help_heading = "Agent/node"
    )]
    pub kubelet_port: u16,

    /// (agent/node) Pods this node runs at most
    #[arg(
        long,
        env = "SKIFF_MAX_PODS",
        default_value_t = 110,
        help_heading = "Agent/node"
    )]
    pub max_pods: u32,

    /// (agent/runtime) Cgroup under which pods run (cgroupfs driver)
    #[arg(
        long,
        env = "SKIFF_CGROUP_ROOT",
        default_value = "/kubepods",
        help_heading = "Agent/runtime"
    )]
    pub cgroup_root: String,
}

impl NodeArgs {
    /// The agent's config; `client_ca_pem` is the CA whose client
    /// certificates (the API server's) the kubelet endpoint accepts.
    pub fn config(
        &self,
        data_dir: &Path,
        control_plane: bool,
        client_ca_pem: String,
    ) -> anyhow::Result<kubelet::Config> {
        let root = data_dir.join("agent");
        let node_name = self
            .node_name
            .clone()
            .unwrap_or_else(kubelet::node::hostname);
        let ips: Vec<IpAddr> = self.node_ip.into_iter().collect();
        let (tls_cert_pem, tls_key_pem) =
            kubelet::server::load_or_create_serving_cert(&root.join("tls"), &node_name, &ips)
                .context("the kubelet serving certificate")?;
        Ok(kubelet::Config {
            root,
            node_name,
            node_ip: self.node_ip,
            node_labels: self.node_labels.iter().cloned().collect(),
            node_taints: self.node_taints.clone(),
            control_plane,
            container_runtime_endpoint: self.container_runtime_endpoint.clone(),
            private_registry: self.private_registry.clone(),
            cluster_dns: self.cluster_dns.clone(),
            cluster_domain: self.cluster_domain.clone(),
            kubelet_port: self.kubelet_port,
            max_pods: self.max_pods,
            cgroup_root: self.cgroup_root.clone(),
            sandbox_image: self.pause_image.clone(),
            tls_cert_pem,
            tls_key_pem,
            client_ca_pem,
        })
    }
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// (cluster) Kubeconfig of the cluster to join [default: $KUBECONFIG]
    #[arg(long, env = "SKIFF_KUBECONFIG", help_heading = "Cluster")]
    pub kubeconfig: Option<PathBuf>,

    /// (data) Folder to hold state
    #[arg(
        short = 'd',
        long,
        env = "SKIFF_DATA_DIR",
        default_value = "/var/lib/skiff",
        help_heading = "Data"
    )]
    pub data_dir: PathBuf,

    /// (networking) The cluster's Service addresses (as the servers')
    #[arg(
        long,
        env = "SKIFF_SERVICE_CIDR",
        default_value = "10.43.0.0/16",
        help_heading = "Networking"
    )]
    pub service_cidr: String,

    /// (networking) The cluster's pod addresses (as the servers')
    #[arg(
        long,
        env = "SKIFF_CLUSTER_CIDR",
        default_value = "10.42.0.0/16",
        help_heading = "Networking"
    )]
    pub cluster_cidr: String,

    #[command(flatten)]
    pub node: NodeArgs,
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let kubeconfig = args
        .kubeconfig
        .clone()
        .or_else(|| std::env::var_os("KUBECONFIG").map(PathBuf::from))
        .context("--kubeconfig (or $KUBECONFIG) is required")?;
    let client = client::from_kubeconfig(&kubeconfig).await?;
    let ca = client::ca_pem_from_kubeconfig(&kubeconfig)?;
    let config = args.node.config(&args.data_dir, false, ca)?;
    let stop = CancellationToken::new();
    tokio::spawn(super::wait_for_signal(stop.clone()));
    let network = Network {
        service_cidr: args.service_cidr.clone(),
        cluster_cidr: args.cluster_cidr.clone(),
    };
    run_node(client, config, network, stop).await
}

/// The cluster's address ranges, which the node's proxy needs.
pub struct Network {
    pub service_cidr: String,
    pub cluster_cidr: String,
}

/// The node's components — kubelet, service proxy, cluster DNS — over one
/// set of shared informers.
pub async fn run_node(
    client: client::Client,
    mut config: kubelet::Config,
    network: Network,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let informers = client::informer::Informers::new(client.clone());
    // Chosen once, so the kubelet, the proxy and the DNS agree on it.
    let node_ip = *config
        .node_ip
        .get_or_insert_with(kubelet::node::default_node_ip);
    let proxy = proxy::Config::new(
        config.node_name.clone(),
        vec![node_ip],
        network.service_cidr,
        network.cluster_cidr,
    );
    let mut parts = tokio::task::JoinSet::new();
    {
        let (informers, stop) = (informers.clone(), stop.clone());
        // As kube-proxy beside the kubelet: pods keep running without it.
        parts.spawn(async move {
            if let Err(e) = proxy::run(informers, proxy, stop).await {
                tracing::error!(error = %e, "service proxy stopped");
            }
            Ok(())
        });
    }
    {
        // The node's resolver, behind the kube-dns Service (k3s runs
        // CoreDNS as a pod; here every node serves it on its own address).
        let dns = dns::Config {
            listen: vec![std::net::SocketAddr::new(node_ip, 53)],
            cluster_domain: config.cluster_domain.clone(),
            ..Default::default()
        };
        let node = dns::NodeEndpoint {
            client: client.clone(),
            node_name: config.node_name.clone(),
            address: node_ip,
        };
        let (informers, stop) = (informers.clone(), stop.clone());
        parts.spawn(async move {
            if let Err(e) = dns::run(informers, dns, Some(node), stop).await {
                tracing::error!(error = %e, "cluster DNS stopped");
            }
            Ok(())
        });
    }
    let kubelet = kubelet::run(client, config, informers.clone(), stop.clone());
    parts.spawn(kubelet);
    informers.start(stop.clone());
    while let Some(r) = parts.join_next().await {
        r.context("node component panicked")??;
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct KillallArgs {
    /// (data) The agent's data folder (`<data-dir>/agent` is cleaned)
    #[arg(
        short = 'd',
        long,
        env = "SKIFF_DATA_DIR",
        default_value = "/var/lib/skiff",
        help_heading = "Data"
    )]
    pub data_dir: PathBuf,

    /// (agent/runtime) Cgroup under which pods ran
    #[arg(long, env = "SKIFF_CGROUP_ROOT", default_value = "/kubepods")]
    pub cgroup_root: String,
}

/// Stops every pod, containerd and its shims, and unmounts what they left.
pub async fn killall(args: KillallArgs) -> anyhow::Result<()> {
    kubelet::killall::killall(&args.data_dir.join("agent"), &args.cgroup_root).await?;
    proxy::cleanup(proxy::DEFAULT_TABLE)
        .await
        .context("removing the service rules")
}
