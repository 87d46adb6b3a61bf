//! `exec` and `attach`: the client's WebSocket channels translated to the
//! runtime's SPDY streams (upstream's StreamTranslator, kept in the kubelet
//! because containerd's stream server knows neither `v5.channel.k8s.io` nor
//! half-closing stdin over WebSocket).
//!
//! Runtime side: remotecommand protocol `v4.channel.k8s.io` over SPDY/3.1,
//! one stream per channel (`streamtype` = error, stdin, stdout, stderr,
//! resize), created in that order. The error stream carries the final
//! `metav1.Status` (Success, or Failure with reason NonZeroExitCode and an
//! ExitCode cause), which is passed to the client's channel 3 untouched.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::spdy::{Connection, Role, Stream};
use super::upgrade::{self, HEADER_PROTOCOL_VERSION, SPDY_31};
use super::wsstream::{self, Inbound};
use super::StreamError;

/// The protocols offered to WebSocket clients, preferred first.
pub const WEBSOCKET_PROTOCOLS: &[&str] = &[wsstream::V5, wsstream::V4];
/// The protocol spoken to the runtime.
const RUNTIME_PROTOCOL: &str = wsstream::V4;

/// How long the client gets to answer our close before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Which streams a request asked for (`stdin`, `stdout`, `stderr`, `tty`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Options {
    /// Parses the query as upstream's `remotecommand.NewOptions`: `1` or
    /// `true` turn a stream on; a TTY has no separate stderr.
    pub fn from_query(pairs: &[(String, String)]) -> Result<Options, String> {
        let flag = |name: &str| {
            pairs
                .iter()
                .any(|(k, v)| k == name && matches!(v.as_str(), "1" | "true" | "True" | "TRUE"))
        };
        let mut o = Options {
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr"),
            tty: flag("tty"),
        };
        if o.tty && o.stderr {
            o.stderr = false;
        }
        if !o.stdin && !o.stdout && !o.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        Ok(o)
    }
}

/// The runtime side of one exec/attach, its streams created.
pub struct RuntimeSession {
    conn: Connection,
    error: Stream,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

/// Upgrades the runtime's stream URL to SPDY and creates the streams
/// `opts` asks for (the runtime starts the process once they all exist).
pub async fn connect_runtime(url: &str, opts: Options) -> Result<RuntimeSession, StreamError> {
    let answer = upgrade::request(
        url,
        "POST",
        SPDY_31,
        &[(HEADER_PROTOCOL_VERSION.into(), RUNTIME_PROTOCOL.into())],
    )
    .await?;
    if answer.status != 101 {
        let status = answer.status;
        return Err(StreamError::Refused {
            status,
            message: answer.body().await,
        });
    }
    let (conn, _incoming) = Connection::new(answer.io, Role::Client);
    let open = |kind: &'static str| {
        let conn = conn.clone();
        async move {
            conn.open_stream(vec![("streamtype".into(), kind.into())])
                .await
        }
    };
    let error = open("error").await?;
    let stdin = if opts.stdin {
        Some(open("stdin").await?)
    } else {
        None
    };
    let stdout = if opts.stdout {
        Some(open("stdout").await?)
    } else {
        None
    };
    let stderr = if opts.stderr {
        Some(open("stderr").await?)
    } else {
        None
    };
    let resize = if opts.tty {
        Some(open("resize").await?)
    } else {
        None
    };
    Ok(RuntimeSession {
        conn,
        error,
        stdin,
        stdout,
        stderr,
        resize,
    })
}

/// Runs one exec/attach between an upgraded WebSocket (subprotocol
/// `protocol`, v5 or v4) and the runtime, until the command ends or the
/// client goes away.
pub async fn serve_websocket<S>(ws: WebSocketStream<S>, protocol: String, rt: RuntimeSession)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(32);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
    });

    // Tells the client the connection is up (upstream writes an empty
    // message to the lowest writable channel).
    let first = if rt.stdout.is_some() {
        wsstream::STDOUT
    } else if rt.stderr.is_some() {
        wsstream::STDERR
    } else {
        wsstream::ERROR
    };
    let _ = tx.send(Message::binary(wsstream::encode(first, &[]))).await;

    let RuntimeSession {
        conn,
        error,
        stdin,
        stdout,
        stderr,
        resize,
    } = rt;
    let mut outputs = tokio::task::JoinSet::new();
    for (stream, channel) in [
        (stdout, wsstream::STDOUT),
        (stderr, wsstream::STDERR),
        (Some(error), wsstream::ERROR),
    ] {
        let Some(mut stream) = stream else { continue };
        let tx = tx.clone();
        outputs.spawn(async move {
            while let Some(data) = stream.reader.read().await {
                if tx
                    .send(Message::binary(wsstream::encode(channel, &data)))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }
    drop(tx);
    let stdin = stdin.map(|s| s.writer);
    let resize = resize.map(|s| s.writer);

    let mut client_gone = false;
    loop {
        tokio::select! {
            msg = source.next() => {
                let Some(Ok(msg)) = msg else { client_gone = true; break };
                match msg {
                    Message::Binary(b) => match wsstream::decode(&protocol, &b) {
                        Inbound::Data { channel: wsstream::STDIN, data } => {
                            if let Some(w) = &stdin {
                                let _ = w.write(data).await;
                            }
                        }
                        Inbound::Data { channel: wsstream::RESIZE, data } => {
                            if let Some(w) = &resize {
                                let _ = w.write(data).await;
                            }
                        }
                        Inbound::Close { channel: wsstream::STDIN } => {
                            if let Some(w) = &stdin {
                                let _ = w.close().await;
                            }
                        }
                        Inbound::Close { channel: wsstream::RESIZE } => {
                            if let Some(w) = &resize {
                                let _ = w.close().await;
                            }
                        }
                        _ => {}
                    },
                    Message::Close(_) => { client_gone = true; break }
                    _ => {}
                }
            }
            r = outputs.join_next() => {
                if r.is_none() {
                    // stdout, stderr and the status are all through.
                    break;
                }
            }
        }
    }
    if client_gone {
        outputs.abort_all();
    } else {
        // Let our close frame go out and the client answer it.
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(m)) = source.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    conn.close().await;
    let _ = tokio::time::timeout(CLOSE_GRACE, writer).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::protocol::Role as WsRole;

    fn stream_type(s: &Stream) -> Option<&str> {
        s.header("streamtype")
    }

    #[test]
    fn options_follow_upstream() {
        let q = |s: &[(&str, &str)]| -> Vec<(String, String)> {
            s.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            Options::from_query(&q(&[("stdout", "true"), ("stderr", "1")])),
            Ok(Options {
                stdout: true,
                stderr: true,
                ..Default::default()
            })
        );
        // A TTY merges stderr into stdout.
        assert_eq!(
            Options::from_query(&q(&[("stdin", "1"), ("stderr", "1"), ("tty", "1")])),
            Ok(Options {
                stdin: true,
                tty: true,
                ..Default::default()
            })
        );
        assert_eq!(
            Options::from_query(&q(&[("tty", "1")])),
            Err("you must specify at least 1 of stdin, stdout, stderr".into())
        );
    }

    /// A fake runtime stream server: accepts the SPDY upgrade, echoes stdin
    /// to stdout until stdin ends, then reports exit code 3.
    async fn fake_runtime() -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 1];
                s.read_exact(&mut b).await.unwrap();
                head.push(b[0]);
            }
            let head = String::from_utf8(head).unwrap();
            assert!(head.contains("X-Stream-Protocol-Version: v4.channel.k8s.io"));
            s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n").await.unwrap();
            let (conn, mut incoming) = Connection::new(s, Role::Server);
            let mut streams = std::collections::HashMap::new();
            for _ in 0..3 {
                let st = incoming.accept().await.unwrap();
                streams.insert(stream_type(&st).unwrap().to_string(), st);
            }
            let mut stdin = streams.remove("stdin").unwrap();
            let stdout = streams.remove("stdout").unwrap();
            let error = streams.remove("error").unwrap();
            while let Some(d) = stdin.reader.read().await {
                stdout.writer.write(&d).await.unwrap();
            }
            stdout.writer.close().await.unwrap();
            error.writer.write(br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#).await.unwrap();
            error.writer.close().await.unwrap();
            conn.close().await;
        });
        format!("http://{addr}/exec/token")
    }

    #[tokio::test]
    async fn v5_exec_with_stdin_close_and_exit_code() {
        let url = fake_runtime().await;
        let opts = Options {
            stdin: true,
            stdout: true,
            ..Default::default()
        };
        let rt = connect_runtime(&url, opts).await.unwrap();
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let server_ws = WebSocketStream::from_raw_socket(server_io, WsRole::Server, None).await;
        let mut client = WebSocketStream::from_raw_socket(client_io, WsRole::Client, None).await;
        let t = tokio::spawn(serve_websocket(server_ws, wsstream::V5.into(), rt));

        client
            .send(Message::binary(wsstream::encode(
                wsstream::STDIN,
                b"hello ",
            )))
            .await
            .unwrap();
        client
            .send(Message::binary(wsstream::encode(wsstream::STDIN, b"world")))
            .await
            .unwrap();
        client
            .send(Message::binary(vec![wsstream::CLOSE, wsstream::STDIN]))
            .await
            .unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut first = None;
        while let Some(Ok(m)) = client.next().await {
            match m {
                Message::Binary(b) => {
                    first.get_or_insert(b.to_vec());
                    match b[0] {
                        wsstream::STDOUT => out.extend_from_slice(&b[1..]),
                        wsstream::ERROR => err.extend_from_slice(&b[1..]),
                        c => panic!("channel {c}"),
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        assert_eq!(first, Some(vec![wsstream::STDOUT]));
        assert_eq!(out, b"hello world");
        let status: serde_json::Value = serde_json::from_slice(&err).unwrap();
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "3");
        tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn runtime_refusal_is_reported() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 2048];
            let _ = s.read(&mut b).await;
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
                .await
                .unwrap();
        });
        let r = connect_runtime(
            &format!("http://{addr}/exec/x"),
            Options::from_query(&[("stdout".into(), "1".into())]).unwrap(),
        )
        .await;
        match r {
            Err(StreamError::Refused { status, message }) => {
                assert_eq!(status, 404);
                assert_eq!(message, "not found");
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted"),
        }
    }
}
