//! The cluster DNS: `<svc>.<ns>.svc.<domain>` and the rest of the
//! Kubernetes DNS specification, answered as CoreDNS's `kubernetes` plugin
//! answers them in k3s' default Corefile (`pods insecure`, reverse zones
//! falling through, TTL 5), from the shared Service, EndpointSlice and
//! Namespace caches; every other name goes to the node's resolvers.
//!
//! [`run`] is the component; [`Cluster`] + [`Server`] are its two halves, so
//! tests can serve a fixed set of objects without an API server.

mod cluster;
mod endpoint;
mod forward;
mod kubernetes;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use cluster::Cluster;
pub use endpoint::{publish, NodeEndpoint};
pub use forward::{parse_resolv_conf, RESOLV_CONF};
pub use kubernetes::DNS_SCHEMA_VERSION;
pub use server::Server;

/// CoreDNS's `kubernetes` plugin default TTL, which k3s keeps.
pub const DEFAULT_TTL: u32 = 5;

#[derive(Clone, Debug)]
pub struct Config {
    /// UDP and TCP are served on each (port 0: a free port, the same for both).
    pub listen: Vec<SocketAddr>,
    /// The cluster zone (`--cluster-domain`), e.g. `cluster.local`.
    pub cluster_domain: String,
    /// Where other names go; empty: the `nameserver`s of the node's
    /// /etc/resolv.conf. Listen addresses are always skipped.
    pub upstreams: Vec<SocketAddr>,
    /// TTL of every answer from the cluster zone.
    pub ttl: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: Vec::new(),
            cluster_domain: "cluster.local".into(),
            upstreams: Vec::new(),
            ttl: DEFAULT_TTL,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cluster DNS has no listen address")]
    NoListenAddress,
    #[error("cluster DNS cannot bind {protocol} {address}: {source}")]
    Bind {
        protocol: &'static str,
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Serves the cluster DNS until `shutdown`, from `informers` (which the
/// caller starts; registering here before or after is fine). Bind errors
/// are returned before anything is served. Once bound, `node` (the
/// agent's own address) is published behind the `kube-dns` Service.
pub async fn run(
    informers: client::informer::Informers,
    config: Config,
    node: Option<NodeEndpoint>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let cluster = Arc::new(Cluster::new());
    let synced = cluster.watch(&informers);
    let server = Server::bind(config, cluster).await?;
    if let Some(node) = node {
        tokio::spawn(endpoint::publish_until_written(node, shutdown.clone()));
    }
    let wait_synced = async {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = synced => tracing::info!("cluster DNS caches synced"),
        }
    };
    let (served, ()) = tokio::join!(server.run(shutdown.clone()), wait_synced);
    served
}
