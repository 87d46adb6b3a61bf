//! grpc probes (upstream `pkg/probe/grpc`): `grpc.health.v1.Health/Check`
//! on the pod IP, SERVING passes. The two messages are declared here rather
//! than pulling in a health-service crate for one unary call.

use std::time::Duration;

use tonic::codegen::http::uri::PathAndQuery;

use super::http::USER_AGENT;
use super::tcp::join_host_port;
use super::worker::Outcome;

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// `HealthCheckResponse.ServingStatus` names, as Go's `String()` prints them.
fn status_name(s: i32) -> String {
    match s {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

/// Go's `time.Duration` `%v` for whole seconds (`1s`, `1m30s`).
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

pub async fn probe(host: &str, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = join_host_port(host, port);
    let deadline = tokio::time::Instant::now() + timeout;
    let connect_failed = || {
        Outcome::Failure(format!(
            "timeout: failed to connect service \"{addr}\" within {}: context deadline exceeded",
            go_duration(timeout)
        ))
    };
    let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{addr}")) {
        Ok(e) => e.connect_timeout(timeout),
        Err(e) => {
            return Outcome::Failure(format!(
                "error: failed to connect service at \"{addr}\": {e}"
            ))
        }
    };
    let endpoint = match endpoint.user_agent(USER_AGENT) {
        Ok(e) => e,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    let channel = match tokio::time::timeout_at(deadline, endpoint.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(_)) | Err(_) => return connect_failed(),
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    let call = async {
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        let path = PathAndQuery::from_static("/grpc.health.v1.Health/Check");
        let req = tonic::Request::new(HealthCheckRequest {
            service: service.to_string(),
        });
        grpc.unary(req, path, codec).await
    };
    match tokio::time::timeout_at(deadline, call).await {
        Err(_) => Outcome::Failure(format!(
            "timeout: health rpc did not complete within {}",
            go_duration(timeout)
        )),
        Ok(Err(status)) => match status.code() {
            tonic::Code::Unimplemented => Outcome::Failure(format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                status.message()
            )),
            tonic::Code::DeadlineExceeded => Outcome::Failure(format!(
                "timeout: health rpc did not complete within {}",
                go_duration(timeout)
            )),
            code => Outcome::Failure(format!(
                "error: health rpc probe failed: rpc error: code = {code:?} desc = {}",
                status.message()
            )),
        },
        Ok(Ok(resp)) => {
            let status = resp.into_inner().status;
            if status == 1 {
                Outcome::Success("service healthy".into())
            } else {
                Outcome::Failure(format!(
                    "service unhealthy (responded with \"{}\")",
                    status_name(status)
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go() {
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
    }

    #[tokio::test]
    async fn refused_connection_fails() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let o = probe("127.0.0.1", port, "", Duration::from_secs(1)).await;
        assert_eq!(
            o,
            Outcome::Failure(format!(
                "timeout: failed to connect service \"127.0.0.1:{port}\" within 1s: context deadline exceeded"
            ))
        );
    }
}
