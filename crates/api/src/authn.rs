//! Authentication by x509 client certificate, as kube-apiserver's `--client-ca-file`
//! authenticator does it: the user is the subject's common name, the groups are its
//! organizations. Verifying the chain against the cluster CA is the TLS layer's job
//! ([`crate::pki::Pki::server_config`]); this module only reads identities out of
//! certificates that were already verified.

use rustls::pki_types::CertificateDer;

/// Group every authenticated user is in.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// Group of requests that carry no credentials.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// User name of requests that carry no credentials.
pub const ANONYMOUS_USER: &str = "system:anonymous";

/// Who made a request (Kubernetes' `user.Info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// `system:anonymous` in group `system:unauthenticated`.
    pub fn anonymous() -> Self {
        UserInfo {
            name: ANONYMOUS_USER.to_string(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED_GROUP.to_string()],
        }
    }

    /// Whether this is the anonymous user (no credentials were presented).
    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS_USER
    }
}

/// The user of a TLS peer from its verified certificate chain (leaf first, DER): name =
/// subject CN, groups = subject O values plus `system:authenticated`. `None` when there is
/// no certificate, it can't be parsed, or its CN is empty (upstream rejects those too).
///
/// The chain must already have been verified against the client CA (rustls does that during
/// the handshake with the config from [`crate::pki::Pki::server_config`]).
pub fn user_from_peer_certs(certs: &[CertificateDer<'_>]) -> Option<UserInfo> {
    let leaf = certs.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())?
        .to_string();
    if name.is_empty() {
        return None;
    }
    let mut groups: Vec<String> = Vec::new();
    for org in subject.iter_organization().filter_map(|o| o.as_str().ok()) {
        if !org.is_empty() && !groups.iter().any(|g| g == org) {
            groups.push(org.to_string());
        }
    }
    if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        groups.push(AUTHENTICATED_GROUP.to_string());
    }
    Some(UserInfo {
        name,
        uid: String::new(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::pki::{Pki, PkiConfig};

    fn pki(dir: &std::path::Path) -> Pki {
        Pki::load_or_create(&PkiConfig {
            dir: dir.join("tls"),
            sans_dns: vec!["localhost".into()],
            sans_ip: vec![IpAddr::from([127, 0, 0, 1])],
        })
        .unwrap()
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn anonymous_user() {
        let anon = UserInfo::anonymous();
        assert_eq!(anon.name, "system:anonymous");
        assert_eq!(anon.groups, vec!["system:unauthenticated"]);
        assert!(anon.is_anonymous());
    }

    #[test]
    fn user_from_certs() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = pki(tmp.path());
        let check = |cert: &str, want: Option<(&str, &[&str])>| {
            let got = user_from_peer_certs(&[der(cert)]);
            let want = want.map(|(name, groups)| UserInfo {
                name: name.into(),
                uid: String::new(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            });
            assert_eq!(got, want);
        };
        check(
            &pki.admin_cert_pem,
            Some(("system:admin", &["system:masters", "system:authenticated"])),
        );
        let (c, _) = pki.mint_client_cert("system:kube-scheduler", &[]).unwrap();
        check(
            &c,
            Some(("system:kube-scheduler", &["system:authenticated"])),
        );
        let (c, _) = pki
            .mint_client_cert("alice", &["dev", "ops", "dev", "system:authenticated"])
            .unwrap();
        check(&c, Some(("alice", &["dev", "ops", "system:authenticated"])));
        let (c, _) = pki.mint_client_cert("", &["dev"]).unwrap();
        check(&c, None);
        assert_eq!(user_from_peer_certs(&[]), None);
        assert_eq!(
            user_from_peer_certs(&[CertificateDer::from(vec![1, 2, 3])]),
            None
        );
    }

    /// What the server side of a handshake saw.
    #[derive(Debug)]
    enum Outcome {
        Connected(Option<UserInfo>, Option<Vec<u8>>),
        Rejected(String),
    }

    /// One TLS connection on 127.0.0.1 against `server_config`, the client presenting
    /// `client_cert` (cert PEM, key PEM) if given. Returns what the server saw and whether
    /// the client completed a round trip.
    async fn handshake(pki: &Pki, client_cert: Option<(&str, &str)>) -> (Outcome, bool) {
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config().unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();

        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            match acceptor.accept(tcp).await {
                Ok(mut tls) => {
                    let (_, conn) = tls.get_ref();
                    let user = conn.peer_certificates().and_then(user_from_peer_certs);
                    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
                    let mut buf = [0u8; 4];
                    tls.read_exact(&mut buf).await.unwrap();
                    tls.write_all(b"pong").await.unwrap();
                    tls.shutdown().await.unwrap();
                    Outcome::Connected(user, alpn)
                }
                Err(e) => Outcome::Rejected(e.to_string()),
            }
        });

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(&pki.ca_cert_pem)).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match client_cert {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![der(cert)],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        // With TLS 1.3 the client learns the server rejected its cert only on first read.
        let client_ok = async {
            let mut tls = connector.connect(name, tcp).await.ok()?;
            tls.write_all(b"ping").await.ok()?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.ok()?;
            (&buf == b"pong").then_some(())
        }
        .await
        .is_some();
        (server.await.unwrap(), client_ok)
    }

    #[tokio::test]
    async fn tls_handshake_authenticates_admin() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = pki(tmp.path());
        let (outcome, client_ok) =
            handshake(&pki, Some((&pki.admin_cert_pem, &pki.admin_key_pem))).await;
        assert!(client_ok);
        let Outcome::Connected(Some(user), alpn) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(user.name, "system:admin");
        assert_eq!(user.groups, vec!["system:masters", "system:authenticated"]);
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    }

    #[tokio::test]
    async fn tls_handshake_allows_anonymous() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = pki(tmp.path());
        let (outcome, client_ok) = handshake(&pki, None).await;
        assert!(client_ok);
        assert!(
            matches!(outcome, Outcome::Connected(None, _)),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn tls_handshake_rejects_cert_from_another_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = pki(tmp.path());
        let other_dir = tempfile::tempdir().unwrap();
        let other = self::pki(other_dir.path());
        let (outcome, client_ok) =
            handshake(&pki, Some((&other.admin_cert_pem, &other.admin_key_pem))).await;
        assert!(!client_ok);
        // UnknownIssuer, or BadSignature when both CAs were minted in the same second and
        // so share a name.
        let Outcome::Rejected(err) = outcome else {
            panic!("{outcome:?}");
        };
        assert!(err.contains("invalid peer certificate"), "{err}");
    }

    #[tokio::test]
    async fn tls_handshake_rejects_server_cert_used_as_client_cert() {
        // Signed by the right CA but without the clientAuth usage.
        let tmp = tempfile::tempdir().unwrap();
        let pki = pki(tmp.path());
        let (outcome, client_ok) =
            handshake(&pki, Some((&pki.serving_cert_pem, &pki.serving_key_pem))).await;
        assert!(!client_ok);
        assert!(matches!(outcome, Outcome::Rejected(_)), "{outcome:?}");
    }
}
