//! Running the `nft` command: a script on stdin is one atomic transaction
//! (`nft -f -`), so a failure leaves the previous rules in force.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// What running nft can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run nft: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft failed ({status}): {stderr}")]
    Failed {
        status: std::process::ExitStatus,
        stderr: String,
    },
}

impl NftError {
    /// Whether nft said the object does not exist (for cleanup).
    pub fn is_not_found(&self) -> bool {
        matches!(self, NftError::Failed { stderr, .. } if stderr.contains("No such file or directory"))
    }
}

/// Runs `nft -f -` with `script` on stdin.
pub async fn run(script: &str) -> Result<(), NftError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(NftError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write error means nft exited early; its status says why.
        let _ = stdin.write_all(script.as_bytes()).await;
        drop(stdin);
    }
    let out = child.wait_with_output().await.map_err(NftError::Spawn)?;
    if out.status.success() {
        return Ok(());
    }
    let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Errors quote the failing lines; a full sync's can be long.
    if stderr.len() > 4096 {
        let mut cut = 4096;
        while !stderr.is_char_boundary(cut) {
            cut -= 1;
        }
        stderr.truncate(cut);
        stderr.push_str("...");
    }
    Err(NftError::Failed {
        status: out.status,
        stderr: stderr.trim().to_string(),
    })
}

/// Runs `nft` with `args` and returns its stdout (for listing).
pub async fn output(args: &[&str]) -> Result<String, NftError> {
    let out = Command::new("nft")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(NftError::Spawn)?;
    if !out.status.success() {
        return Err(NftError::Failed {
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
