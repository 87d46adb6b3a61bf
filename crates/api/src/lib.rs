//! The Kubernetes API server: REST and watch over every kind in the
//! registry, discovery, OpenAPI, Table output, x509 authentication.
//!
//! **Architecture invariant:** only this crate knows HTTP, and it reaches
//! state only through `store::Storage`.

pub mod admission;
pub mod allocator;
pub mod apply;
pub mod authn;
pub mod bootstrap;
pub mod connect;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod handlers;
pub mod kubeconfig;
pub mod object;
pub mod openapi;
pub mod patch;
pub mod pki;
pub mod rest;
pub mod selectors;
pub mod server;
pub mod subresources;
pub mod table;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use error::ApiError;

/// What the API server needs to run; built by the `skiff` binary from flags.
#[derive(Clone, Debug)]
pub struct Config {
    pub bind_address: std::net::IpAddr,
    pub port: u16,
    /// The address clients should use (`serverAddressByClientCIDRs`).
    pub advertise_address: String,
    pub service_cidr: allocator::Cidr,
    pub node_port_range: (u16, u16),
    /// Events are deleted this long after their last occurrence.
    pub event_ttl: Duration,
    /// History older than this is compacted away.
    pub compaction_interval: Duration,
    /// How the API server reaches kubelets for logs, exec, attach and
    /// port-forward (its `--kubelet-client-certificate`,
    /// [`pki::Pki::kubelet_client_config`]); without it those are refused.
    pub kubelet_client: Option<Arc<rustls::ClientConfig>>,
    /// The cluster DNS address: the `kube-system/kube-dns` Service's
    /// cluster IP (`None`: no such Service is created).
    pub cluster_dns: Option<std::net::IpAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("bootstrapping the cluster's built-in objects failed: {0}")]
    Bootstrap(#[source] ApiError),
}

/// Serves the API until `shutdown` fires. `ready` turns true once the
/// built-in objects exist and the listener accepts connections.
pub async fn run(
    cfg: Config,
    storage: Arc<dyn store::Storage>,
    tls: Arc<rustls::ServerConfig>,
    ready: tokio::sync::watch::Sender<bool>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let addr = SocketAddr::new(cfg.bind_address, cfg.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let rest = Arc::new(rest::Rest::new(
        storage,
        &rest::Config {
            service_cidr: cfg.service_cidr.clone(),
            node_port_range: cfg.node_port_range,
        },
    ));
    // Stored CRDs are served from the first request on.
    crd::controller::load(&rest)
        .await
        .map_err(Error::Bootstrap)?;
    let state = Arc::new(handlers::AppState {
        rest: rest.clone(),
        server_address: cfg.advertise_address.clone(),
        ready: ready.subscribe(),
        openapi: openapi::OpenApiCache::default(),
        kubelet_client: cfg.kubelet_client.clone(),
    });
    let app = handlers::router(state);
    let server = tokio::spawn(server::serve(listener, tls, app, shutdown.clone()));
    bootstrap::run(&rest, &cfg)
        .await
        .map_err(Error::Bootstrap)?;
    let _ = ready.send(true);
    tracing::info!(%addr, "API server ready");
    let namespaces = tokio::spawn(admission::run_namespace_cache(
        rest.clone(),
        shutdown.clone(),
    ));
    let priority_classes = tokio::spawn(admission::run_priority_class_cache(
        rest.clone(),
        shutdown.clone(),
    ));
    let crds = tokio::spawn(crd::controller::run(rest.clone(), shutdown.clone()));
    let background = bootstrap::spawn_maintenance(rest, cfg, shutdown.clone());
    let _ = server.await;
    background.abort();
    crds.abort();
    namespaces.abort();
    priority_classes.abort();
    Ok(())
}
