//! The node's own entry behind the `kube-system/kube-dns` Service: an
//! EndpointSlice `kube-dns-<node>` with the address this node's DNS serves
//! on. The Service has no selector (no DNS pod exists), so each node
//! publishes itself, owned by its Node so that a deleted node's entry goes
//! with it (garbage collector).

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The field manager of the slice.
const MANAGER: &str = "skiff-agent";

/// This node's DNS address, published once the server is bound.
#[derive(Clone)]
pub struct NodeEndpoint {
    pub client: kube::Client,
    pub node_name: String,
    pub address: std::net::IpAddr,
}

/// Publishes `ep` until it is written: the Node it names is registered by
/// the kubelet at the same time, so the first tries may find no Node.
pub async fn publish_until_written(
    ep: NodeEndpoint,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut delay = std::time::Duration::from_millis(200);
    loop {
        match publish(ep.client.clone(), &ep.node_name, ep.address).await {
            Ok(()) => return,
            Err(e) => tracing::debug!(error = %e, "kube-dns endpoint not published yet"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(std::time::Duration::from_secs(10));
    }
}

/// Writes (server-side apply) this node's kube-dns EndpointSlice.
pub async fn publish(
    client: kube::Client,
    node_name: &str,
    address: std::net::IpAddr,
) -> Result<(), kube::Error> {
    let node = Api::<Node>::all(client.clone()).get(node_name).await?;
    let name = format!("kube-dns-{node_name}");
    let family = if address.is_ipv4() { "IPv4" } else { "IPv6" };
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": "kube-system",
            "labels": {
                "kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": MANAGER,
            },
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Node",
                "name": node_name,
                "uid": node.metadata.uid.unwrap_or_default(),
            }],
        },
        "addressType": family,
        "endpoints": [{
            "addresses": [address.to_string()],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": node_name,
        }],
        "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        ],
    });
    Api::<EndpointSlice>::namespaced(client, "kube-system")
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(slice),
        )
        .await?;
    Ok(())
}
