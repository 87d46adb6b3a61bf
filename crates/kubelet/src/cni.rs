//! The pod network: a CNI conflist for the standard plugins (bridge with
//! host-local IPAM over the node's podCIDR, portmap for hostPorts, loopback),
//! written where containerd's CRI plugin looks for it. containerd reports
//! NetworkReady once the file exists.

use std::path::{Path, PathBuf};

pub const NETWORK_NAME: &str = "skiff";
pub const BRIDGE: &str = "skiff0";

pub struct Layout {
    pub conf_dir: PathBuf,
    pub ipam_dir: PathBuf,
}

impl Layout {
    pub fn new(agent_root: &Path) -> Layout {
        Layout {
            conf_dir: agent_root.join("cni/conf"),
            ipam_dir: agent_root.join("cni/ipam"),
        }
    }
    pub fn conflist(&self) -> PathBuf {
        self.conf_dir.join("10-skiff.conflist")
    }
}

/// The conflist for `pod_cidr` (e.g. `10.42.0.0/24`).
pub fn conflist(layout: &Layout, pod_cidr: &str) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": true,
                // A pod reaching itself through a Service needs hairpin.
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": pod_cidr }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                    "dataDir": layout.ipam_dir,
                }
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
            { "type": "loopback" }
        ]
    })
    .to_string()
}

/// Writes the conflist if it differs; returns whether it changed.
pub fn write(layout: &Layout, pod_cidr: &str) -> std::io::Result<bool> {
    let text = conflist(layout, pod_cidr);
    let path = layout.conflist();
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    std::fs::create_dir_all(&layout.conf_dir)?;
    std::fs::create_dir_all(&layout.ipam_dir)?;
    // Atomic: containerd watches the directory and must never read half a file.
    let tmp = layout.conf_dir.join(".10-skiff.conflist.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)?;
    Ok(true)
}

/// Where the plugins are: Debian's `containernetworking-plugins` puts them
/// in /usr/lib/cni; other distributions use /opt/cni/bin.
pub fn default_bin_dir() -> PathBuf {
    for dir in ["/usr/lib/cni", "/opt/cni/bin"] {
        if Path::new(dir).join("bridge").exists() {
            return PathBuf::from(dir);
        }
    }
    PathBuf::from("/usr/lib/cni")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflist_names_the_range_and_plugins() {
        let l = Layout::new(Path::new("/var/lib/skiff/agent"));
        let v: serde_json::Value = serde_json::from_str(&conflist(&l, "10.42.3.0/24")).unwrap();
        assert_eq!(
            v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.42.3.0/24"
        );
        assert_eq!(
            v["plugins"][0]["ipam"]["dataDir"],
            "/var/lib/skiff/agent/cni/ipam"
        );
        let types: Vec<_> = v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["bridge", "portmap", "loopback"]);
    }
}
