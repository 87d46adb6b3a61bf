//! The CRI v1 client: containerd's RuntimeService and ImageService over its
//! unix socket (gRPC), as the kubelet's remote runtime does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

pub use k8s_cri::v1 as api;

/// Both CRI services on one channel. Cloning is cheap (the channel is shared).
#[derive(Clone)]
pub struct Runtime {
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
    pub socket: PathBuf,
}

/// gRPC messages from CRI can be large (ListContainers on a full node).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

impl Runtime {
    /// Connects to the CRI socket (`unix:///path` or a bare path), waiting up
    /// to `wait` for the socket to appear and answer `Version`.
    pub async fn connect(endpoint: &str, wait: Duration) -> anyhow::Result<Runtime> {
        let socket = PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint));
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match Self::try_connect(&socket).await {
                Ok(rt) => return Ok(rt),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(e.context(format!("connecting to CRI at {}", socket.display())))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn try_connect(socket: &Path) -> anyhow::Result<Runtime> {
        let path = socket.to_path_buf();
        // The URI is required by tonic but unused: the connector dials the socket.
        let channel = Endpoint::try_from("http://cri.invalid")?
            .connect_timeout(Duration::from_secs(2))
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await?;
        let mut runtime = RuntimeServiceClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let images = ImageServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        runtime
            .version(api::VersionRequest {
                version: "v1".into(),
            })
            .await?;
        Ok(Runtime {
            runtime,
            images,
            socket: socket.to_path_buf(),
        })
    }

    /// `runtime_name runtime_version`, e.g. `containerd 1.6.20~ds1`, as the
    /// node's `containerRuntimeVersion` (`containerd://1.6.20~ds1`).
    pub async fn version(&self) -> anyhow::Result<api::VersionResponse> {
        Ok(self
            .runtime
            .clone()
            .version(api::VersionRequest {
                version: "v1".into(),
            })
            .await?
            .into_inner())
    }
}

/// The gRPC status message of a failed CRI call, which is what the kubelet
/// puts in waiting messages and events.
pub fn message(status: &tonic::Status) -> String {
    status.message().to_string()
}
