//! Names of the per-Service chains and sets, spelled as upstream's nftables
//! proxier spells them (`service-HASH-ns/name/tcp/port`), so `nft list table`
//! reads the same.

use sha2::{Digest, Sha256};

use crate::endpoints::Endpoint;
use crate::service::ServicePortInfo;

/// The longest name nft takes, less room for the longest prefix.
const NAME_BASE_MAX: usize = 256 - 16;

/// `HASH-name`: the first 8 base32 characters of the name's SHA-256 in front,
/// so names stay unique (and tell apart at a glance) even when truncated.
fn hash_and_truncate(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut out = base32_prefix(&digest[..5]);
    out.push('-');
    out.push_str(name);
    if out.len() > NAME_BASE_MAX {
        // Names are ASCII (DNS labels, digits, '.', '/', '_'), so any index
        // is a char boundary.
        out.truncate(NAME_BASE_MAX - 3);
        out.push_str("...");
    }
    out
}

/// RFC 4648 base32 of 5 bytes: exactly 8 characters, no padding.
fn base32_prefix(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u64 = 0;
    for b in bytes.iter().take(5) {
        bits = (bits << 8) | u64::from(*b);
    }
    (0..8)
        .rev()
        .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
        .collect()
}

fn port_base(svc: &ServicePortInfo) -> String {
    hash_and_truncate(&svc.port_name_string())
}

fn endpoint_base(svc: &ServicePortInfo, ep: &Endpoint) -> String {
    hash_and_truncate(&format!(
        "{}__{}/{}",
        svc.port_name_string(),
        ep.ip,
        ep.port
    ))
}

/// The chain that spreads over the Cluster-policy endpoints.
pub fn cluster_policy_chain(svc: &ServicePortInfo) -> String {
    format!("service-{}", port_base(svc))
}

/// The chain that spreads over this node's endpoints.
pub fn local_policy_chain(svc: &ServicePortInfo) -> String {
    format!("local-{}", port_base(svc))
}

/// The chain external traffic (NodePort, load balancer, external IP) enters.
pub fn external_chain(svc: &ServicePortInfo) -> String {
    format!("external-{}", port_base(svc))
}

/// The chain that DNATs to one endpoint.
pub fn endpoint_chain(svc: &ServicePortInfo, ep: &Endpoint) -> String {
    format!("endpoint-{}", endpoint_base(svc, ep))
}

/// The set of client addresses stuck to one endpoint (`sessionAffinity`).
pub fn affinity_set(svc: &ServicePortInfo, ep: &Endpoint) -> String {
    format!("affinity-{}", endpoint_base(svc, ep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648() {
        // RFC 4648 test vector: BASE32("fooba") = "MZXW6YTB".
        assert_eq!(base32_prefix(b"fooba"), "MZXW6YTB");
    }

    #[test]
    fn names_are_hashed_and_bounded() {
        let n = hash_and_truncate("ns1/svc1/tcp/p80");
        assert_eq!(n.len(), 8 + 1 + "ns1/svc1/tcp/p80".len());
        assert!(n.ends_with("-ns1/svc1/tcp/p80"));
        let long = hash_and_truncate(&"a".repeat(300));
        assert_eq!(long.len(), NAME_BASE_MAX);
        assert!(long.ends_with("..."));
        assert_ne!(hash_and_truncate("x"), hash_and_truncate("y"));
    }
}
