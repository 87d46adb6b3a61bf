//! The admin kubeconfig, written as k3s writes `k3s.yaml`: one cluster, one user and one
//! context, all named `default`, with the certificates inlined as base64 `*-data` fields.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::Serialize;

/// Name of the cluster, user and context in the rendered kubeconfig.
pub const DEFAULT_NAME: &str = "default";

// Field order is the order kubectl itself writes (alphabetical), so `kubectl config view`
// of the file reads the same as the file.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Config<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    clusters: Vec<NamedCluster<'a>>,
    contexts: Vec<NamedContext<'a>>,
    current_context: &'a str,
    kind: &'a str,
    preferences: Preferences,
    users: Vec<NamedUser<'a>>,
}

#[derive(Serialize)]
struct NamedCluster<'a> {
    cluster: ClusterSpec<'a>,
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterSpec<'a> {
    certificate_authority_data: String,
    server: &'a str,
}

#[derive(Serialize)]
struct NamedContext<'a> {
    context: ContextSpec<'a>,
    name: &'a str,
}

#[derive(Serialize)]
struct ContextSpec<'a> {
    cluster: &'a str,
    user: &'a str,
}

#[derive(Serialize)]
struct Preferences {}

#[derive(Serialize)]
struct NamedUser<'a> {
    name: &'a str,
    user: UserSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UserSpec {
    client_certificate_data: String,
    client_key_data: String,
}

/// A kubeconfig (YAML) with cluster `default` (server URL, certificate-authority-data), user
/// `default` (client-certificate-data, client-key-data), context `default` and
/// current-context `default`, as k3s writes it. The PEM arguments are inlined base64-encoded.
pub fn render(
    server_url: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> String {
    let config = Config {
        api_version: "v1",
        clusters: vec![NamedCluster {
            cluster: ClusterSpec {
                certificate_authority_data: BASE64.encode(ca_pem),
                server: server_url,
            },
            name: DEFAULT_NAME,
        }],
        contexts: vec![NamedContext {
            context: ContextSpec {
                cluster: DEFAULT_NAME,
                user: DEFAULT_NAME,
            },
            name: DEFAULT_NAME,
        }],
        current_context: DEFAULT_NAME,
        kind: "Config",
        preferences: Preferences {},
        users: vec![NamedUser {
            name: DEFAULT_NAME,
            user: UserSpec {
                client_certificate_data: BASE64.encode(client_cert_pem),
                client_key_data: BASE64.encode(client_key_pem),
            },
        }],
    };
    // Invariant: the value is made of structs, strings and sequences only, which
    // serde_yaml always serializes.
    serde_yaml::to_string(&config).expect("a kubeconfig of plain strings serializes")
}

/// Writes a kubeconfig with mode 0600, atomically (temp file in the same directory, then
/// rename), creating missing parent directories.
pub fn write(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    crate::pki::write_file_0600(path, contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n";

    #[test]
    fn render_matches_k3s_layout() {
        let got = render("https://127.0.0.1:6443", CA, CERT, KEY);
        let want = format!(
            "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
            ca = BASE64.encode(CA),
            cert = BASE64.encode(CERT),
            key = BASE64.encode(KEY),
        );
        assert_eq!(got, want);
    }

    #[test]
    fn render_round_trips_through_yaml() {
        let got = render("https://[::1]:6443", CA, CERT, KEY);
        let v: serde_yaml::Value = serde_yaml::from_str(&got).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"].as_str(),
            Some("https://[::1]:6443")
        );
        let ca = v["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap();
        assert_eq!(BASE64.decode(ca).unwrap(), CA.as_bytes());
        let key = v["users"][0]["user"]["client-key-data"].as_str().unwrap();
        assert_eq!(BASE64.decode(key).unwrap(), KEY.as_bytes());
        assert_eq!(v["current-context"].as_str(), Some("default"));
    }

    #[test]
    fn write_is_0600_and_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a/b/kubeconfig.yaml");
        write(&path, "one").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1, "temp files left behind");
    }
}
