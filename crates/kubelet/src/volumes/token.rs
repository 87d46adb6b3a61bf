//! Service account tokens for projected `serviceAccountToken` sources,
//! requested through `POST .../serviceaccounts/<name>/token` (TokenRequest)
//! bound to the pod, and reused until 80% of their lifetime as upstream's
//! token manager does.
//!
//! When the API server does not serve that subresource (skiff's API does not
//! yet), the source is skipped with a warning instead of faking a token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use super::objects::{api_error_message, lock};

/// Retry a server that did not serve TokenRequest after this long.
const UNSUPPORTED_RECHECK: Duration = Duration::from_secs(300);
const DEFAULT_EXPIRATION: i64 = 3600;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    service_account: String,
    audience: String,
    expiration: i64,
    pod_uid: String,
}

pub struct TokenManager {
    client: kube::Client,
    tokens: Mutex<HashMap<Key, (Instant, Duration, String)>>,
    unsupported_since: Mutex<Option<Instant>>,
}

/// What a token request produced.
pub enum TokenOutcome {
    Token(String),
    /// The server has no `serviceaccounts/token` subresource.
    NotServed,
}

impl TokenManager {
    pub fn new(client: kube::Client) -> Self {
        TokenManager {
            client,
            tokens: Mutex::new(HashMap::new()),
            unsupported_since: Mutex::new(None),
        }
    }

    /// A token for `service_account` bound to the pod (`name`, `uid`).
    pub async fn token(
        &self,
        namespace: &str,
        service_account: &str,
        audience: Option<&str>,
        expiration: Option<i64>,
        pod: (&str, &str),
    ) -> Result<TokenOutcome, String> {
        let key = Key {
            namespace: namespace.into(),
            service_account: service_account.into(),
            audience: audience.unwrap_or_default().into(),
            expiration: expiration.unwrap_or(DEFAULT_EXPIRATION),
            pod_uid: pod.1.into(),
        };
        let now = Instant::now();
        if let Some((at, life, token)) = lock(&self.tokens).get(&key) {
            if now.duration_since(*at) < life.mul_f64(0.8) {
                return Ok(TokenOutcome::Token(token.clone()));
            }
        }
        if let Some(since) = *self
            .unsupported_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
        {
            if now.duration_since(since) < UNSUPPORTED_RECHECK {
                return Ok(TokenOutcome::NotServed);
            }
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
                expiration_seconds: Some(key.expiration),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(pod.0.into()),
                    uid: Some(pod.1.into()),
                }),
            },
            ..Default::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let result: Result<TokenRequest, kube::Error> = api
            .create_subresource("token", service_account, &PostParams::default(), &request)
            .await;
        match result {
            Ok(tr) => {
                let status = tr.status.ok_or("token request returned no status")?;
                let life = Duration::from_secs(
                    tr.spec.expiration_seconds.unwrap_or(key.expiration).max(1) as u64,
                );
                lock(&self.tokens).insert(key, (now, life, status.token.clone()));
                Ok(TokenOutcome::Token(status.token))
            }
            Err(e) if not_served(&e) => {
                *self
                    .unsupported_since
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(now);
                Ok(TokenOutcome::NotServed)
            }
            Err(e) => Err(format!("failed to fetch token: {}", api_error_message(&e))),
        }
    }

    /// Drops the tokens of a pod that is gone.
    pub fn forget_pod(&self, pod_uid: &str) {
        lock(&self.tokens).retain(|k, _| k.pod_uid != pod_uid);
    }
}

/// 404 for the subresource itself (not for a missing ServiceAccount, whose
/// 404 names it) or 405.
fn not_served(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => {
            s.code == 405
                || (s.code == 404 && s.message.contains("could not find the requested resource"))
        }
        _ => false,
    }
}
