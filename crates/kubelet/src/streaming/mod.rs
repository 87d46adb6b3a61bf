//! Streaming for `kubectl exec`, `attach` and `port-forward`, as the kubelet
//! serves them: the client speaks WebSocket (`v5.channel.k8s.io`, or SPDY
//! tunnelled in WebSocket for port-forward) or SPDY/3.1, and the container
//! runtime's stream server (containerd's CRI streaming, URLs from CRI
//! `Exec`/`Attach`/`PortForward`) speaks SPDY/3.1 with the older protocol
//! versions. What upstream's API server does in its StreamTranslator and
//! TunnelingHandler happens here, next to the runtime, so the API server
//! only proxies.

pub mod portforward;
pub mod remotecommand;
pub mod spdy;
pub mod upgrade;
pub mod wsstream;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The runtime's stream server answered the upgrade with `status`.
    #[error("{message}")]
    Refused { status: u16, message: String },
    #[error(transparent)]
    Upgrade(#[from] upgrade::UpgradeError),
    #[error(transparent)]
    Spdy(#[from] spdy::SpdyError),
}
