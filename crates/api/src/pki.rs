//! The cluster's identity: a CA, the API server's serving certificate and the admin's
//! client certificate, minted at first start under `<data-dir>/server/tls` and reused after
//! (as k3s does in `server/tls`).
//!
//! Files, all mode 0600 in a 0700 directory:
//!
//! | file | what |
//! |---|---|
//! | `server-ca.crt` / `.key` | the cluster CA (CN `skiff-server-ca@<unix time>`, 10 years) |
//! | `serving-kube-apiserver.crt` / `.key` | the API server's serving cert (CN `kube-apiserver`, 1 year) |
//! | `client-admin.crt` / `.key` | `system:admin` in `system:masters` (1 year) |
//!
//! The CA is never replaced once it exists: losing it would invalidate every kubeconfig and
//! every component identity, so a CA that cannot be read is an error, not a reason to re-mint.
//! Leaf certificates are re-minted (by the same CA) when they are missing, unreadable, not
//! issued by the current CA, expiring within [`RENEW_BEFORE`], or — for the serving cert —
//! when their SANs don't cover the requested ones. Renewal happens only here, at load:
//! a server running for most of a year renews on its next start (as k3s does).
//!
//! Leaf subjects are written by a small DER step after rcgen (see `der`), because rcgen 0.14
//! keeps one value per attribute type and Kubernetes groups are repeated `O` attributes.

use std::fmt;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::time::ASN1Time;

/// File names inside [`PkiConfig::dir`].
pub const CA_CERT_FILE: &str = "server-ca.crt";
pub const CA_KEY_FILE: &str = "server-ca.key";
pub const SERVING_CERT_FILE: &str = "serving-kube-apiserver.crt";
pub const SERVING_KEY_FILE: &str = "serving-kube-apiserver.key";
pub const ADMIN_CERT_FILE: &str = "client-admin.crt";
pub const ADMIN_KEY_FILE: &str = "client-admin.key";

/// The API server's identity towards kubelets (kubeadm's
/// `apiserver-kubelet-client` certificate); the kubelet serves only it.
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

/// Common name and organization of the cluster admin (bound to cluster-admin by RBAC's
/// default `cluster-admin` ClusterRoleBinding on group `system:masters`).
pub const ADMIN_USER: &str = "system:admin";
pub const ADMIN_GROUP: &str = "system:masters";

const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Leaf certs closer than this to expiry are re-minted at load (k3s renews at 90 days).
pub const RENEW_BEFORE: Duration = Duration::from_secs(90 * 24 * 3600);
/// Certificates start this far in the past, so a client whose clock is slightly behind
/// doesn't reject a certificate minted a moment ago.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// Where the certificates live and which names the serving certificate must cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiConfig {
    /// `<data-dir>/server/tls`
    pub dir: PathBuf,
    pub sans_dns: Vec<String>,
    pub sans_ip: Vec<IpAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} exists but {} is missing; refusing to replace the cluster CA", cert.display(), key.display())]
    CaKeyMissing { cert: PathBuf, key: PathBuf },
    #[error("invalid {what} in {}: {reason}", path.display())]
    Invalid {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("invalid {what}: {reason}")]
    InvalidPem { what: &'static str, reason: String },
    #[error("minting {what}: {source}")]
    Mint {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("certificate validity out of range: {reason}")]
    Validity { reason: String },
    #[error("building the client certificate verifier: {source}")]
    ClientVerifier {
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    #[error("building the TLS server config: {source}")]
    Tls {
        #[source]
        source: rustls::Error,
    },
}

/// The loaded (or freshly minted) certificates. PEM throughout, as written on disk.
pub struct Pki {
    pub ca_cert_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    ca_cert_der: CertificateDer<'static>,
    ca_key: KeyPair,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are left out on purpose: this ends up in logs.
        f.debug_struct("Pki")
            .field("ca_cert_pem", &self.ca_cert_pem)
            .field("serving_cert_pem", &self.serving_cert_pem)
            .field("admin_cert_pem", &self.admin_cert_pem)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// Loads the CA, serving and admin certs from `cfg.dir`, minting whatever is missing.
    /// Files are written with mode 0600 (directory 0700). The serving cert is re-minted
    /// (signed by the same CA) if its SANs don't cover the requested ones.
    pub fn load_or_create(cfg: &PkiConfig) -> Result<Pki, PkiError> {
        ensure_private_dir(&cfg.dir)?;
        let (ca_cert_pem, ca_key, ca_minted) = load_or_mint_ca(&cfg.dir)?;
        let ca_cert_der = parse_cert_pem(&ca_cert_pem)
            .map_err(|reason| invalid("CA certificate", &cfg.dir.join(CA_CERT_FILE), reason))?;
        let ca_info = CaInfo::from_der(&ca_cert_der)
            .map_err(|reason| invalid("CA certificate", &cfg.dir.join(CA_CERT_FILE), reason))?;
        let issuer =
            Issuer::from_ca_cert_der(&ca_cert_der, &ca_key).map_err(|source| PkiError::Mint {
                what: "issuer from the CA certificate".into(),
                source,
            })?;

        let serving = LeafSpec::serving(&cfg.sans_dns, &cfg.sans_ip);
        let (serving_cert_pem, serving_key_pem) = load_or_mint_leaf(
            &cfg.dir,
            SERVING_CERT_FILE,
            SERVING_KEY_FILE,
            &serving,
            &issuer,
            &ca_info,
            ca_minted,
        )?;
        let admin = LeafSpec::client(ADMIN_USER, &[ADMIN_GROUP]);
        let (admin_cert_pem, admin_key_pem) = load_or_mint_leaf(
            &cfg.dir,
            ADMIN_CERT_FILE,
            ADMIN_KEY_FILE,
            &admin,
            &issuer,
            &ca_info,
            ca_minted,
        )?;

        Ok(Pki {
            ca_cert_pem,
            serving_cert_pem,
            serving_key_pem,
            admin_cert_pem,
            admin_key_pem,
            ca_cert_der,
            ca_key,
        })
    }

    /// The CA certificate, DER.
    pub fn ca_cert_der(&self) -> &CertificateDer<'static> {
        &self.ca_cert_der
    }

    /// rustls `ServerConfig` presenting the serving cert. Client certs are verified against
    /// the CA but optional: anonymous clients may connect (the API answers them 401 except
    /// for the health and version endpoints). ALPN offers h2 and http/1.1.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = self.client_verifier(provider.clone())?;
        let chain = vec![parse_cert_pem(&self.serving_cert_pem).map_err(|reason| {
            PkiError::InvalidPem {
                what: "serving certificate",
                reason,
            }
        })?];
        let key = PrivateKeyDer::from_pem_slice(self.serving_key_pem.as_bytes()).map_err(|e| {
            PkiError::InvalidPem {
                what: "serving key",
                reason: e.to_string(),
            }
        })?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| PkiError::Tls { source })?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|source| PkiError::Tls { source })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Verifies client certificates against the CA; presenting none is allowed.
    fn client_verifier(
        &self,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, PkiError> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_cert_der.clone())
            .map_err(|source| PkiError::Tls { source })?;
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .map_err(|source| PkiError::ClientVerifier { source })
    }

    /// Mints a client certificate signed by the CA, for components with their own identity
    /// (scheduler, controllers, kubelet). Returns `(cert PEM, key PEM)`; nothing is written.
    pub fn mint_client_cert(
        &self,
        common_name: &str,
        organizations: &[&str],
    ) -> Result<(String, String), PkiError> {
        let issuer =
            Issuer::from_ca_cert_der(&self.ca_cert_der, &self.ca_key).map_err(|source| {
                PkiError::Mint {
                    what: "issuer from the CA certificate".into(),
                    source,
                }
            })?;
        mint_leaf(&LeafSpec::client(common_name, organizations), &issuer)
    }
}

impl Pki {
    /// The TLS client config the API server uses towards kubelets: a fresh
    /// certificate for [`KUBELET_CLIENT_USER`] (group `system:masters`)
    /// minted by the CA, kept in memory only.
    pub fn kubelet_client_config(&self) -> Result<Arc<rustls::ClientConfig>, PkiError> {
        let (cert, key) = self.mint_client_cert(KUBELET_CLIENT_USER, &[ADMIN_GROUP])?;
        crate::connect::kubelet_client_config(&cert, &key).map_err(|reason| PkiError::InvalidPem {
            what: "kubelet client certificate",
            reason,
        })
    }
}

/// Default SANs as Kubernetes' apiserver cert has them: `localhost`, the hostname,
/// `kubernetes`, `kubernetes.default`, `kubernetes.default.svc`,
/// `kubernetes.default.svc.cluster.local`; `127.0.0.1`, the machine's non-loopback interface
/// addresses and the first service IP. Each `extra` entry goes to the IPs if it parses as
/// one, else to the DNS names. Returns `(dns, ips)` without duplicates.
pub fn default_sans(first_service_ip: IpAddr, extra: &[String]) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns: Vec<String> = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    let mut add_dns = |name: &str| {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        if !name.is_empty() && name.is_ascii() && !dns.contains(&name) {
            dns.push(name);
        }
    };
    add_dns("localhost");
    if let Some(host) = hostname() {
        add_dns(&host);
    }
    for name in [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ] {
        add_dns(name);
    }
    let mut extra_ips = Vec::new();
    for e in extra {
        match e.trim().parse::<IpAddr>() {
            Ok(ip) => extra_ips.push(ip),
            Err(_) => add_dns(e),
        }
    }
    let candidates = [IpAddr::from([127, 0, 0, 1]), first_service_ip]
        .into_iter()
        .chain(interface_addresses())
        .chain(extra_ips);
    for ip in candidates {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    (dns, ips)
}

/// The kernel's hostname (what `hostname` prints), if it can be read.
fn hostname() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let host = raw.trim();
    (!host.is_empty() && host != "(none)").then(|| host.to_string())
}

/// Non-loopback addresses assigned to this machine's interfaces: IPv4 from the local
/// routing table (`/proc/net/fib_trie`), IPv6 global-scope from `/proc/net/if_inet6`.
/// Empty when /proc is not available.
fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(trie) = std::fs::read_to_string("/proc/net/fib_trie") {
        parse_fib_trie_local(&trie, &mut out);
    }
    if let Ok(inet6) = std::fs::read_to_string("/proc/net/if_inet6") {
        parse_if_inet6(&inet6, &mut out);
    }
    out
}

/// In `/proc/net/fib_trie`, an address assigned to an interface is a leaf `|-- a.b.c.d`
/// followed by a `/32 host LOCAL` line.
fn parse_fib_trie_local(trie: &str, out: &mut Vec<IpAddr>) {
    let mut last: Option<std::net::Ipv4Addr> = None;
    for line in trie.lines() {
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("|-- ") {
            last = addr.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(ip) = last {
                let ip = IpAddr::V4(ip);
                if !ip.is_loopback() && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
}

/// `/proc/net/if_inet6` lines: `<32 hex addr> <ifindex> <prefixlen> <scope> <flags> <name>`.
/// Keeps global-scope (00) addresses only: loopback and link-local are no use in a SAN.
fn parse_if_inet6(table: &str, out: &mut Vec<IpAddr>) {
    for line in table.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [hex, _, _, scope, ..] = fields[..] else {
            continue;
        };
        if scope != "00" || hex.len() != 32 {
            continue;
        }
        let Ok(bits) = u128::from_str_radix(hex, 16) else {
            continue;
        };
        let ip = IpAddr::V6(std::net::Ipv6Addr::from(bits));
        if !ip.is_loopback() && !out.contains(&ip) {
            out.push(ip);
        }
    }
}

/// What a leaf certificate must be.
struct LeafSpec {
    common_name: String,
    organizations: Vec<String>,
    sans_dns: Vec<String>,
    sans_ip: Vec<IpAddr>,
    usage: ExtendedKeyUsagePurpose,
}

impl LeafSpec {
    fn serving(sans_dns: &[String], sans_ip: &[IpAddr]) -> Self {
        LeafSpec {
            common_name: "kube-apiserver".into(),
            organizations: Vec::new(),
            sans_dns: sans_dns.to_vec(),
            sans_ip: sans_ip.to_vec(),
            usage: ExtendedKeyUsagePurpose::ServerAuth,
        }
    }

    fn client(common_name: &str, organizations: &[&str]) -> Self {
        LeafSpec {
            common_name: common_name.into(),
            organizations: organizations.iter().map(|o| o.to_string()).collect(),
            sans_dns: Vec::new(),
            sans_ip: Vec::new(),
            usage: ExtendedKeyUsagePurpose::ClientAuth,
        }
    }

    fn what(&self) -> String {
        format!("certificate for {}", self.common_name)
    }
}

/// The parts of the CA certificate a leaf is checked against.
struct CaInfo {
    subject_raw: Vec<u8>,
    subject_key_id: Option<Vec<u8>>,
}

impl CaInfo {
    fn from_der(der: &CertificateDer<'_>) -> Result<Self, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
        Ok(CaInfo {
            subject_raw: cert.subject().as_raw().to_vec(),
            subject_key_id: subject_key_id(&cert),
        })
    }

    /// Whether `leaf` names this CA as its issuer (subject DN and key identifier). The
    /// signature itself is checked by every TLS peer; this only catches leaves left over
    /// from a previous CA.
    fn issued(&self, leaf: &X509Certificate<'_>) -> bool {
        if leaf.issuer().as_raw() != self.subject_raw.as_slice() {
            return false;
        }
        match (authority_key_id(leaf), &self.subject_key_id) {
            (Some(aki), Some(ski)) => &aki == ski,
            _ => true,
        }
    }
}

fn subject_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })
}

fn authority_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0.to_vec())
            }
            _ => None,
        })
}

fn load_or_mint_ca(dir: &Path) -> Result<(String, KeyPair, bool), PkiError> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    match read_private(&cert_path)? {
        Some(cert_pem) => {
            let Some(key_pem) = read_private(&key_path)? else {
                return Err(PkiError::CaKeyMissing {
                    cert: cert_path,
                    key: key_path,
                });
            };
            let key = KeyPair::from_pem(&key_pem)
                .map_err(|e| invalid("CA key", &key_path, e.to_string()))?;
            let der = parse_cert_pem(&cert_pem)
                .map_err(|reason| invalid("CA certificate", &cert_path, reason))?;
            if !key_matches_cert(&key, &der) {
                return Err(invalid(
                    "CA key",
                    &key_path,
                    format!("it does not belong to {}", cert_path.display()),
                ));
            }
            Ok((cert_pem, key, false))
        }
        None => {
            // A key without a cert is what a crash during the first start leaves behind
            // (the key is written first): nothing was ever signed with it.
            let key = new_key("cluster CA")?;
            let now = SystemTime::now();
            let unix = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            let mut params = CertificateParams::default();
            params.distinguished_name = dn(&format!("skiff-server-ca@{unix}"));
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
            ];
            params.serial_number = Some(random_serial());
            set_validity(&mut params, now, CA_VALIDITY)?;
            let cert = params.self_signed(&key).map_err(|source| PkiError::Mint {
                what: "cluster CA".into(),
                source,
            })?;
            let cert_pem = cert.pem();
            write_private(&key_path, &key.serialize_pem())?;
            write_private(&cert_path, &cert_pem)?;
            tracing::info!(path = %cert_path.display(), "minted the cluster CA");
            Ok((cert_pem, key, true))
        }
    }
}

fn load_or_mint_leaf(
    dir: &Path,
    cert_file: &str,
    key_file: &str,
    spec: &LeafSpec,
    issuer: &Issuer<'_, &KeyPair>,
    ca: &CaInfo,
    ca_minted: bool,
) -> Result<(String, String), PkiError> {
    let cert_path = dir.join(cert_file);
    let key_path = dir.join(key_file);
    if !ca_minted {
        if let (Some(cert_pem), Some(key_pem)) =
            (read_private(&cert_path)?, read_private(&key_path)?)
        {
            match leaf_is_usable(&cert_pem, &key_pem, spec, ca) {
                Ok(()) => return Ok((cert_pem, key_pem)),
                Err(reason) => tracing::info!(
                    path = %cert_path.display(),
                    %reason,
                    "re-minting certificate"
                ),
            }
        }
    }
    let (cert_pem, key_pem) = mint_leaf(spec, issuer)?;
    write_private(&key_path, &key_pem)?;
    write_private(&cert_path, &cert_pem)?;
    tracing::info!(path = %cert_path.display(), cn = %spec.common_name, "minted certificate");
    Ok((cert_pem, key_pem))
}

/// `Ok` when the stored leaf can be kept; otherwise why it must be re-minted.
fn leaf_is_usable(
    cert_pem: &str,
    key_pem: &str,
    spec: &LeafSpec,
    ca: &CaInfo,
) -> Result<(), String> {
    let der = parse_cert_pem(cert_pem)?;
    let key = KeyPair::from_pem(key_pem).map_err(|e| format!("unreadable key: {e}"))?;
    if !key_matches_cert(&key, &der) {
        return Err("key does not match the certificate".into());
    }
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    if !ca.issued(&cert) {
        return Err("not issued by the current CA".into());
    }
    let renew_at = ASN1Time::now().timestamp() + RENEW_BEFORE.as_secs() as i64;
    if cert.validity().not_after.timestamp() < renew_at {
        return Err(format!("expires at {}", cert.validity().not_after));
    }
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok());
    if cn != Some(spec.common_name.as_str()) {
        return Err(format!(
            "common name is {cn:?}, want {:?}",
            spec.common_name
        ));
    }
    let orgs: Vec<&str> = cert
        .subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .collect();
    if orgs != spec.organizations {
        return Err(format!(
            "organizations are {orgs:?}, want {:?}",
            spec.organizations
        ));
    }
    let (dns, ips) = cert_sans(&cert);
    let missing_dns: Vec<&String> = spec
        .sans_dns
        .iter()
        .filter(|want| !dns.iter().any(|have| have.eq_ignore_ascii_case(want)))
        .collect();
    let missing_ips: Vec<&IpAddr> = spec
        .sans_ip
        .iter()
        .filter(|want| !ips.contains(want))
        .collect();
    if !missing_dns.is_empty() || !missing_ips.is_empty() {
        return Err(format!(
            "SANs don't cover DNS {missing_dns:?} IP {missing_ips:?}"
        ));
    }
    Ok(())
}

/// DNS names and IP addresses in a certificate's subjectAltName.
pub(crate) fn cert_sans(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(raw) => match raw.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*raw).unwrap_or_default())),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*raw).unwrap_or_default())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    (dns, ips)
}

fn mint_leaf(spec: &LeafSpec, issuer: &Issuer<'_, &KeyPair>) -> Result<(String, String), PkiError> {
    let what = spec.what();
    let key = new_key(&what)?;
    let mut params = CertificateParams::default();
    // Replaced below by the real subject (rcgen keeps one value per attribute type, and a
    // user in several groups needs several O attributes).
    params.distinguished_name = dn(&spec.common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![spec.usage.clone()];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    for name in &spec.sans_dns {
        let ia5 = name.clone().try_into().map_err(|source| PkiError::Mint {
            what: format!("{what} (DNS name {name:?})"),
            source,
        })?;
        params.subject_alt_names.push(SanType::DnsName(ia5));
    }
    params
        .subject_alt_names
        .extend(spec.sans_ip.iter().map(|ip| SanType::IpAddress(*ip)));
    set_validity(&mut params, SystemTime::now(), LEAF_VALIDITY)?;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|source| PkiError::Mint {
            what: what.clone(),
            source,
        })?;
    let subject = der::name(&spec.organizations, &spec.common_name);
    let der = der::replace_subject_and_resign(cert.der(), &subject, *issuer.key())
        .map_err(|source| PkiError::Mint { what, source })?;
    Ok((der::pem("CERTIFICATE", &der), key.serialize_pem()))
}

fn new_key(what: &str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| PkiError::Mint {
        what: format!("key for {what}"),
        source,
    })
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Just enough DER to give a certificate minted by rcgen a subject with repeated O
/// attributes (rcgen 0.14's `DistinguishedName` holds one value per type, rustls/rcgen#81)
/// and sign it again with the same issuer key.
mod der {
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine;
    use rcgen::SigningKey;

    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const OID: u8 = 0x06;
    const UTF8_STRING: u8 = 0x0c;
    const BIT_STRING: u8 = 0x03;
    const VERSION: u8 = 0xa0; // [0] EXPLICIT, present in every v3 certificate
    const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a]; // 2.5.4.10
    const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03]; // 2.5.4.3

    pub(super) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(content.len() + 6);
        out.push(tag);
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
        out
    }

    /// `(header length, total length)` of the TLV at the start of `buf`.
    fn split(buf: &[u8]) -> Result<(usize, usize), rcgen::Error> {
        let bad = || rcgen::Error::CouldNotParseCertificate;
        let first = *buf.get(1).ok_or_else(bad)?;
        let (header, len) = if first < 0x80 {
            (2, first as usize)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 {
                return Err(bad());
            }
            let bytes = buf.get(2..2 + n).ok_or_else(bad)?;
            (
                2 + n,
                bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize),
            )
        };
        let total = header.checked_add(len).ok_or_else(bad)?;
        if total > buf.len() {
            return Err(bad());
        }
        Ok((header, total))
    }

    /// `Name` (RDNSequence): one O attribute per organization, then the CN — the order
    /// kubeadm and openssl write them in.
    pub(super) fn name(organizations: &[String], common_name: &str) -> Vec<u8> {
        let rdn = |oid: &[u8], value: &str| {
            let atv = [tlv(OID, oid), tlv(UTF8_STRING, value.as_bytes())].concat();
            tlv(SET, &tlv(SEQUENCE, &atv))
        };
        let mut rdns: Vec<u8> = Vec::new();
        for o in organizations {
            rdns.extend(rdn(OID_ORGANIZATION, o));
        }
        rdns.extend(rdn(OID_COMMON_NAME, common_name));
        tlv(SEQUENCE, &rdns)
    }

    /// `cert` with its TBS subject replaced by `subject` (a DER `Name`) and signed again
    /// with `key`, which must be the key that signed `cert` (the algorithm is kept).
    pub(super) fn replace_subject_and_resign(
        cert: &[u8],
        subject: &[u8],
        key: &impl SigningKey,
    ) -> Result<Vec<u8>, rcgen::Error> {
        let bad = || rcgen::Error::CouldNotParseCertificate;
        // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
        let (outer_header, outer_total) = split(cert)?;
        let body = &cert[outer_header..outer_total];
        let (tbs_header, tbs_total) = split(body)?;
        let tbs = &body[tbs_header..tbs_total];
        let (_, alg_total) = split(&body[tbs_total..])?;
        let algorithm = &body[tbs_total..tbs_total + alg_total];

        // TBSCertificate ::= SEQUENCE { [0] version, serialNumber, signature, issuer,
        //   validity, subject, ... }
        if tbs.first() != Some(&VERSION) {
            return Err(bad());
        }
        let mut at = 0;
        for _ in 0..5 {
            at += split(&tbs[at..])?.1;
        }
        let (_, subject_total) = split(&tbs[at..])?;
        let new_tbs = tlv(
            SEQUENCE,
            &[&tbs[..at], subject, &tbs[at + subject_total..]].concat(),
        );
        let signature = key.sign(&new_tbs)?;
        let bits = tlv(BIT_STRING, &[&[0u8][..], &signature].concat());
        Ok(tlv(SEQUENCE, &[new_tbs, algorithm.to_vec(), bits].concat()))
    }

    pub(super) fn pem(label: &str, der: &[u8]) -> String {
        let b64 = BASE64.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            // base64 output is ASCII, so every chunk is valid UTF-8.
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }
}

/// 16 random bytes, top bit clear so the DER integer stays positive.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // no leading zero byte to trim
    SerialNumber::from_slice(&bytes)
}

fn set_validity(
    params: &mut CertificateParams,
    now: SystemTime,
    validity: Duration,
) -> Result<(), PkiError> {
    let unix = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let at = |secs: i64| {
        ASN1Time::from_timestamp(secs)
            .map(|t| t.to_datetime())
            .map_err(|e| PkiError::Validity {
                reason: e.to_string(),
            })
    };
    params.not_before = at(unix - BACKDATE.as_secs() as i64)?;
    params.not_after = at(unix + validity.as_secs() as i64)?;
    Ok(())
}

fn key_matches_cert(key: &KeyPair, cert_der: &CertificateDer<'_>) -> bool {
    match x509_parser::parse_x509_certificate(cert_der) {
        Ok((_, cert)) => cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw(),
        Err(_) => false,
    }
}

fn parse_cert_pem(pem: &str) -> Result<CertificateDer<'static>, String> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| e.to_string())
}

fn invalid(what: &'static str, path: &Path, reason: String) -> PkiError {
    PkiError::Invalid {
        what,
        path: path.to_path_buf(),
        reason,
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PkiError + 'a {
    move |source| PkiError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and parents) and makes `dir` itself 0700.
fn ensure_private_dir(dir: &Path) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io_err("setting permissions on", dir))
}

/// Reads a file, tightening it to 0600 if it was looser. `None` when it doesn't exist.
fn read_private(path: &Path) -> Result<Option<String>, PkiError> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let meta = std::fs::metadata(path).map_err(io_err("reading", path))?;
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io_err("setting permissions on", path))?;
            }
            Ok(Some(s))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Io {
            op: "reading",
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    write_file_0600(path, contents.as_bytes()).map_err(io_err("writing", path))
}

/// Writes `contents` to `path` atomically with mode 0600: a temp file in the same directory,
/// fsync'd, then renamed over `path`. The parent directory must exist.
pub(crate) fn write_file_0600(path: &Path, contents: &[u8]) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        name.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The mode above is filtered by the umask; make sure the result is exactly 0600.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Make the rename durable; failure here leaves a correct file, just maybe not on disk yet.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> PkiConfig {
        PkiConfig {
            dir: dir.join("server/tls"),
            sans_dns: vec!["localhost".into(), "kubernetes.default.svc".into()],
            sans_ip: vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from([10, 43, 0, 1])],
        }
    }

    fn parse(pem: &str) -> CertificateDer<'static> {
        parse_cert_pem(pem).expect("valid PEM")
    }

    fn sans_of(pem: &str) -> (Vec<String>, Vec<IpAddr>) {
        let der = parse(pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("x509");
        cert_sans(&cert)
    }

    const ALL_FILES: [&str; 6] = [
        CA_CERT_FILE,
        CA_KEY_FILE,
        SERVING_CERT_FILE,
        SERVING_KEY_FILE,
        ADMIN_CERT_FILE,
        ADMIN_KEY_FILE,
    ];

    #[test]
    fn load_or_create_mints_then_reuses() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = cfg(tmp.path());
        let first = Pki::load_or_create(&cfg).unwrap();
        let second = Pki::load_or_create(&cfg).unwrap();
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_eq!(first.serving_cert_pem, second.serving_cert_pem);
        assert_eq!(first.serving_key_pem, second.serving_key_pem);
        assert_eq!(first.admin_cert_pem, second.admin_cert_pem);
        assert_eq!(first.admin_key_pem, second.admin_key_pem);

        let dir_mode = std::fs::metadata(&cfg.dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        for f in ALL_FILES {
            let path = cfg.dir.join(f);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        let on_disk = std::fs::read_to_string(cfg.dir.join(CA_CERT_FILE)).unwrap();
        assert_eq!(on_disk, first.ca_cert_pem);
        // No temp files left behind.
        let names: Vec<String> = std::fs::read_dir(&cfg.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), ALL_FILES.len(), "{names:?}");
    }

    #[test]
    fn certificates_have_the_expected_subjects_and_sans() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(&cfg(tmp.path())).unwrap();

        let ca_der = parse(&pki.ca_cert_pem);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let ca_cn = ca
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert!(ca_cn.starts_with("skiff-server-ca@"), "{ca_cn}");
        assert!(ca.is_ca());
        let years = (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp())
            / (365 * 24 * 3600);
        assert_eq!(years, 10);

        let (dns, ips) = sans_of(&pki.serving_cert_pem);
        assert_eq!(dns, vec!["localhost", "kubernetes.default.svc"]);
        assert_eq!(
            ips,
            vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from([10, 43, 0, 1])]
        );

        let admin_der = parse(&pki.admin_cert_pem);
        let (_, admin) = x509_parser::parse_x509_certificate(&admin_der).unwrap();
        assert_eq!(
            admin
                .subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            ADMIN_USER
        );
        assert_eq!(
            admin
                .subject()
                .iter_organization()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            ADMIN_GROUP
        );
        let eku = admin.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert_eq!(admin.issuer().as_raw(), ca.subject().as_raw());
    }

    #[test]
    fn serving_cert_is_reminted_by_the_same_ca_when_sans_grow() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = cfg(tmp.path());
        let first = Pki::load_or_create(&cfg).unwrap();

        // A subset of the SANs is still covered: nothing changes.
        cfg.sans_dns.pop();
        let subset = Pki::load_or_create(&cfg).unwrap();
        assert_eq!(subset.serving_cert_pem, first.serving_cert_pem);

        cfg.sans_dns.push("skiff.example.com".into());
        cfg.sans_ip.push("fd00::1".parse().unwrap());
        let grown = Pki::load_or_create(&cfg).unwrap();
        assert_eq!(grown.ca_cert_pem, first.ca_cert_pem);
        assert_eq!(grown.admin_cert_pem, first.admin_cert_pem);
        assert_ne!(grown.serving_cert_pem, first.serving_cert_pem);
        let (dns, ips) = sans_of(&grown.serving_cert_pem);
        assert!(dns.contains(&"skiff.example.com".to_string()), "{dns:?}");
        assert!(ips.contains(&"fd00::1".parse().unwrap()), "{ips:?}");
    }

    #[test]
    fn leaves_from_another_ca_are_reminted_and_a_ca_without_key_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = cfg(tmp.path());
        let first = Pki::load_or_create(&cfg).unwrap();

        let other = tempfile::tempdir().unwrap();
        let other_pki = Pki::load_or_create(&super::tests::cfg(other.path())).unwrap();
        std::fs::write(cfg.dir.join(ADMIN_CERT_FILE), &other_pki.admin_cert_pem).unwrap();
        std::fs::write(cfg.dir.join(ADMIN_KEY_FILE), &other_pki.admin_key_pem).unwrap();
        let again = Pki::load_or_create(&cfg).unwrap();
        assert_eq!(again.ca_cert_pem, first.ca_cert_pem);
        assert_ne!(again.admin_cert_pem, other_pki.admin_cert_pem);
        let admin = parse(&again.admin_cert_pem);
        let (_, admin) = x509_parser::parse_x509_certificate(&admin).unwrap();
        let ca = parse(&first.ca_cert_pem);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca).unwrap();
        assert_eq!(admin.issuer().as_raw(), ca.subject().as_raw());

        std::fs::remove_file(cfg.dir.join(CA_KEY_FILE)).unwrap();
        let err = Pki::load_or_create(&cfg).unwrap_err();
        assert!(matches!(err, PkiError::CaKeyMissing { .. }), "{err}");
    }

    #[test]
    fn loose_permissions_are_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = cfg(tmp.path());
        Pki::load_or_create(&cfg).unwrap();
        let key = cfg.dir.join(CA_KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&cfg.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Pki::load_or_create(&cfg).unwrap();
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&cfg.dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn minted_client_certs_carry_cn_and_orgs() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(&cfg(tmp.path())).unwrap();
        let (cert, key) = pki
            .mint_client_cert("system:node:n1", &["system:nodes"])
            .unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let der = parse(&cert);
        let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            c.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "system:node:n1"
        );
        let orgs: Vec<&str> = c
            .subject()
            .iter_organization()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert_eq!(orgs, vec!["system:nodes"]);
        // Serial numbers are random, not derived from the key.
        let (cert2, _) = pki
            .mint_client_cert("system:node:n1", &["system:nodes"])
            .unwrap();
        let der2 = parse(&cert2);
        let (_, c2) = x509_parser::parse_x509_certificate(&der2).unwrap();
        assert_ne!(c.serial, c2.serial);
    }

    #[test]
    fn many_long_organizations_survive_the_subject_rewrite() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(&cfg(tmp.path())).unwrap();
        let orgs: Vec<String> = (0..12)
            .map(|i| format!("group-{i}-{}", "x".repeat(40)))
            .collect();
        let org_refs: Vec<&str> = orgs.iter().map(String::as_str).collect();
        let (cert, _) = pki.mint_client_cert("carol", &org_refs).unwrap();
        let der = parse(&cert);
        let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
        let got: Vec<&str> = c
            .subject()
            .iter_organization()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert_eq!(got, org_refs);
        let verifier = pki
            .client_verifier(Arc::new(rustls::crypto::ring::default_provider()))
            .unwrap();
        verifier
            .verify_client_cert(&der, &[], rustls::pki_types::UnixTime::now())
            .unwrap();
    }

    #[test]
    fn unreadable_leaf_is_reminted() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = cfg(tmp.path());
        let first = Pki::load_or_create(&cfg).unwrap();
        std::fs::write(cfg.dir.join(SERVING_CERT_FILE), "garbage").unwrap();
        let again = Pki::load_or_create(&cfg).unwrap();
        assert_eq!(again.ca_cert_pem, first.ca_cert_pem);
        assert_ne!(again.serving_cert_pem, first.serving_cert_pem);
        assert!(again
            .serving_cert_pem
            .starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn default_sans_cover_kubernetes_names() {
        let (dns, ips) = default_sans(
            IpAddr::from([10, 43, 0, 1]),
            &[
                "my.example.com".into(),
                "192.0.2.7".into(),
                "localhost".into(),
            ],
        );
        for want in [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "my.example.com",
        ] {
            assert_eq!(
                dns.iter().filter(|d| *d == want).count(),
                1,
                "{want} in {dns:?}"
            );
        }
        if let Some(host) = hostname() {
            assert!(
                dns.contains(&host.to_ascii_lowercase()),
                "{host} in {dns:?}"
            );
        }
        assert_eq!(ips[0], IpAddr::from([127, 0, 0, 1]));
        assert!(ips.contains(&IpAddr::from([10, 43, 0, 1])));
        assert!(ips.contains(&IpAddr::from([192, 0, 2, 7])));
        assert!(!ips.iter().skip(1).any(|ip| ip.is_loopback()), "{ips:?}");
    }

    #[test]
    fn proc_net_parsing() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 10.0.0.0/24 2 0 2\n        |-- 10.0.0.0\n           /24 link UNICAST\n        |-- 10.0.0.5\n           /32 host LOCAL\n     +-- 127.0.0.0/8 2 0 2\n        |-- 127.0.0.1\n           /32 host LOCAL\nLocal:\n        |-- 10.0.0.5\n           /32 host LOCAL\n";
        let inet6 = "00000000000000000000000000000001 01 80 10 80       lo\nfe800000000000000000000000000001 02 40 20 80     eth0\nfd000000000000000000000000000005 02 40 00 80     eth0\n";
        let mut out = Vec::new();
        parse_fib_trie_local(trie, &mut out);
        parse_if_inet6(inet6, &mut out);
        assert_eq!(
            out,
            vec![
                IpAddr::from([10, 0, 0, 5]),
                "fd00::5".parse::<IpAddr>().unwrap()
            ]
        );
    }
}
