//! exec probes: the command runs in the container through CRI `ExecSync`
//! with the probe's timeout; exit 0 passes, and stdout+stderr is the message.

use std::time::Duration;

use k8s_openapi::api::core::v1::EnvVar;

use super::worker::Outcome;
use crate::cri::{api, Runtime};

/// Upstream keeps at most this much of a probe's output.
const MAX_OUTPUT: usize = 10 * 1024;
/// The kubelet gives the runtime this long past the probe timeout to clean up.
const RUNTIME_GRACE: Duration = Duration::from_secs(120);

pub async fn probe(rt: &Runtime, container_id: &str, cmd: &[String], timeout: Duration) -> Outcome {
    let req = api::ExecSyncRequest {
        container_id: container_id.to_string(),
        cmd: cmd.to_vec(),
        timeout: timeout.as_secs() as i64,
    };
    let timed_out = || Outcome::Failure(format!("command {:?} timed out", cmd.join(" ")));
    let mut client = rt.runtime.clone();
    let call = client.exec_sync(req);
    match tokio::time::timeout(timeout + RUNTIME_GRACE, call).await {
        Err(_) => timed_out(),
        Ok(Err(status)) if status.code() == tonic::Code::DeadlineExceeded => timed_out(),
        // Go's gRPC error text, as upstream's "probe errored" events show it.
        Ok(Err(status)) => Outcome::Error(format!(
            "rpc error: code = {:?} desc = {}",
            status.code(),
            status.message()
        )),
        Ok(Ok(resp)) => {
            let resp = resp.into_inner();
            let mut out = resp.stdout;
            out.extend_from_slice(&resp.stderr);
            out.truncate(MAX_OUTPUT);
            let out = String::from_utf8_lossy(&out).into_owned();
            if resp.exit_code == 0 {
                Outcome::Success(out)
            } else {
                Outcome::Failure(out)
            }
        }
    }
}

/// Expands `$(VAR)` from the container's literal env values (upstream's
/// `ExpandContainerCommandOnlyStatic`): `$$` escapes, unknown names stay.
pub fn expand(cmd: &[String], env: &[EnvVar]) -> Vec<String> {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|e| e.name == name && e.value_from.is_none())
            .map(|e| e.value.clone().unwrap_or_default())
    };
    cmd.iter()
        .map(|arg| {
            let mut out = String::with_capacity(arg.len());
            let mut rest = arg.as_str();
            while let Some(i) = rest.find('$') {
                out.push_str(&rest[..i]);
                let after = &rest[i + 1..];
                if let Some(r) = after.strip_prefix('$') {
                    out.push('$');
                    rest = r;
                } else if let Some(r) = after.strip_prefix('(') {
                    match r.find(')') {
                        Some(end) => {
                            let name = &r[..end];
                            match lookup(name) {
                                Some(v) => out.push_str(&v),
                                None => {
                                    out.push_str("$(");
                                    out.push_str(name);
                                    out.push(')');
                                }
                            }
                            rest = &r[end + 1..];
                        }
                        None => {
                            out.push_str("$(");
                            rest = r;
                        }
                    }
                } else {
                    out.push('$');
                    rest = after;
                }
            }
            out.push_str(rest);
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_static_env() {
        let env = vec![EnvVar {
            name: "FILE".into(),
            value: Some("/tmp/healthy".into()),
            value_from: None,
        }];
        let cmd: Vec<String> = ["cat", "$(FILE)", "$(NOPE)", "$$(FILE)", "a$b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            expand(&cmd, &env),
            ["cat", "/tmp/healthy", "$(NOPE)", "$(FILE)", "a$b"]
        );
    }
}
