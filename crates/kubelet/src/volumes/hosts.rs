//! The pod's `/etc/hosts`: a file the kubelet writes at `<pod dir>/etc-hosts`
//! and bind-mounts into every container (upstream's `ensureHostsFile`).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use k8s_openapi::api::core::v1::{HostAlias, Pod};

const MANAGED_HEADER: &str = "# Kubernetes-managed hosts file.\n";
const MANAGED_HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";
const HOSTNAME_MAX: usize = 63;

/// The pod's hostname (`spec.hostname` or its name, cut to 63 characters)
/// and domain (`<subdomain>.<ns>.svc.<cluster domain>` when a subdomain is
/// set, else empty), as `GeneratePodHostNameAndDomain`.
pub fn hostname_and_domain(pod: &Pod, cluster_domain: &str) -> (String, String) {
    let spec = pod.spec.as_ref();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let hostname = spec
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
        .unwrap_or(name);
    let hostname = match hostname.get(..HOSTNAME_MAX) {
        Some(cut) if hostname.len() > HOSTNAME_MAX => cut.trim_end_matches(['-', '.']),
        _ => hostname,
    };
    let domain = match spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
    {
        Some(sub) => {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            format!("{sub}.{ns}.svc.{cluster_domain}")
        }
        None => String::new(),
    };
    (hostname.to_string(), domain)
}

/// The managed hosts file of a pod on the pod network.
pub fn managed_content(
    pod_ips: &[String],
    hostname: &str,
    domain: &str,
    aliases: &[HostAlias],
) -> String {
    let mut s = String::from(MANAGED_HEADER);
    s.push_str("127.0.0.1\tlocalhost\n");
    s.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    s.push_str("fe00::0\tip6-localnet\n");
    s.push_str("fe00::0\tip6-mcastprefix\n");
    s.push_str("fe00::1\tip6-allnodes\n");
    s.push_str("fe00::2\tip6-allrouters\n");
    for ip in pod_ips {
        if domain.is_empty() {
            s.push_str(&format!("{ip}\t{hostname}\n"));
        } else {
            s.push_str(&format!("{ip}\t{hostname}.{domain}\t{hostname}\n"));
        }
    }
    s.push_str(&alias_entries(aliases));
    s
}

/// A hostNetwork pod sees the node's hosts file (plus its aliases).
pub fn host_network_content(node_hosts: &str, aliases: &[HostAlias]) -> String {
    format!(
        "{MANAGED_HEADER_HOST_NETWORK}{node_hosts}{}",
        alias_entries(aliases)
    )
}

fn alias_entries(aliases: &[HostAlias]) -> String {
    if aliases.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n# Entries added by HostAliases.\n");
    for a in aliases {
        let names = a.hostnames.as_deref().unwrap_or_default().join("\t");
        s.push_str(&format!("{}\t{names}\n", a.ip));
    }
    s
}

/// Writes the hosts file of `pod` to `file` (mode 0644).
pub fn ensure(file: &Path, pod: &Pod, pod_ips: &[String], cluster_domain: &str) -> io::Result<()> {
    let spec = pod.spec.as_ref();
    let aliases = spec
        .and_then(|s| s.host_aliases.as_deref())
        .unwrap_or_default();
    let content = if spec.and_then(|s| s.host_network).unwrap_or(false) {
        host_network_content(&fs::read_to_string("/etc/hosts")?, aliases)
    } else {
        let (hostname, domain) = hostname_and_domain(pod, cluster_domain);
        managed_content(pod_ips, &hostname, &domain, aliases)
    };
    fs::write(file, content)?;
    fs::set_permissions(file, fs::Permissions::from_mode(0o644))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, hostname: Option<&str>, sub: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                hostname: hostname.map(Into::into),
                subdomain: sub.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn names() {
        let c = "cluster.local";
        assert_eq!(
            hostname_and_domain(&pod("web", None, None), c),
            ("web".into(), "".into())
        );
        assert_eq!(
            hostname_and_domain(&pod("web-0", Some("h"), Some("svc")), c),
            ("h".into(), "svc.ns1.svc.cluster.local".into())
        );
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        assert_eq!(
            hostname_and_domain(&pod(&long, None, None), c).0,
            "a".repeat(62)
        );
    }

    #[test]
    fn content() {
        let aliases = [HostAlias {
            ip: "10.0.0.9".into(),
            hostnames: Some(vec!["foo".into(), "bar".into()]),
        }];
        let got = managed_content(
            &["10.42.0.5".into()],
            "web-0",
            "svc.ns1.svc.cluster.local",
            &aliases,
        );
        assert_eq!(
            got,
            "# Kubernetes-managed hosts file.\n\
             127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\n\
             fe00::0\tip6-mcastprefix\n\
             fe00::1\tip6-allnodes\n\
             fe00::2\tip6-allrouters\n\
             10.42.0.5\tweb-0.svc.ns1.svc.cluster.local\tweb-0\n\
             \n# Entries added by HostAliases.\n\
             10.0.0.9\tfoo\tbar\n"
        );
        let plain = managed_content(&["10.42.0.5".into()], "web", "", &[]);
        assert!(plain.ends_with("fe00::2\tip6-allrouters\n10.42.0.5\tweb\n"));
        assert_eq!(
            host_network_content("127.0.0.1 localhost\n", &[]),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"
        );
    }

    #[test]
    fn writes_file() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("etc-hosts");
        ensure(
            &f,
            &pod("web", None, None),
            &["10.42.0.7".into()],
            "cluster.local",
        )
        .unwrap();
        let s = fs::read_to_string(&f).unwrap();
        assert!(s.ends_with("10.42.0.7\tweb\n"));
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
}
