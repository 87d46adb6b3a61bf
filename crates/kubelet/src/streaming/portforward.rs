//! `port-forward`: kubectl's SPDY session reaches the runtime's stream
//! server unchanged. Over WebSocket (`SPDY/3.1+portforward.k8s.io`) each
//! binary message carries the next bytes of that session (upstream's
//! TunnelingHandler), so the kubelet only moves bytes between the messages
//! and the runtime's upgraded connection. Plain SPDY clients are spliced
//! the same way by [`splice`].

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::upgrade::{self, RuntimeIo, HEADER_PROTOCOL_VERSION, SPDY_31};
use super::wsstream;
use super::StreamError;

/// The WebSocket subprotocol kubectl offers for port-forward.
pub fn tunneling_protocol() -> String {
    format!("{}{}", wsstream::TUNNELING_PREFIX, wsstream::PORT_FORWARD)
}

/// Upgrades the runtime's port-forward URL to SPDY (`portforward.k8s.io`).
pub async fn connect_runtime(url: &str) -> Result<RuntimeIo, StreamError> {
    let answer = upgrade::request(
        url,
        "POST",
        SPDY_31,
        &[(
            HEADER_PROTOCOL_VERSION.into(),
            wsstream::PORT_FORWARD.into(),
        )],
    )
    .await?;
    if answer.status != 101 {
        let status = answer.status;
        return Err(StreamError::Refused {
            status,
            message: answer.body().await,
        });
    }
    Ok(answer.io)
}

/// Moves bytes between the WebSocket tunnel and the runtime until either
/// side ends.
pub async fn tunnel_websocket<S>(ws: WebSocketStream<S>, runtime: RuntimeIo)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let (mut rt_read, mut rt_write) = tokio::io::split(runtime);
    let up = async {
        while let Some(Ok(m)) = source.next().await {
            let go_on = match m {
                Message::Binary(b) => rt_write.write_all(&b).await.is_ok(),
                Message::Close(_) => false,
                _ => true,
            };
            if !go_on {
                break;
            }
        }
        let _ = rt_write.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rt_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
    };
    // Either direction ending ends the session: SPDY has no half-open state
    // worth keeping once one side is gone.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Copies both ways between two upgraded connections until both are done
/// or one fails.
pub async fn splice<A, B>(mut a: A, mut b: B)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streaming::spdy::{Connection, Role};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::protocol::Role as WsRole;

    /// The runtime: a SPDY server that answers each data stream with
    /// "port <port>: " + what it received.
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
            assert!(String::from_utf8_lossy(&head)
                .contains("X-Stream-Protocol-Version: portforward.k8s.io"));
            s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n").await.unwrap();
            let (_conn, mut incoming) = Connection::new(s, Role::Server);
            while let Some(mut st) = incoming.accept().await {
                tokio::spawn(async move {
                    if st.header("streamtype") != Some("data") {
                        let _ = st.reader.read_to_end().await;
                        return;
                    }
                    let port = st.header("port").unwrap_or("?").to_string();
                    let got = st.reader.read_to_end().await;
                    let mut reply = format!("port {port}: ").into_bytes();
                    reply.extend_from_slice(&got);
                    st.writer.write(&reply).await.unwrap();
                    st.writer.close().await.unwrap();
                });
            }
        });
        format!("http://{addr}/portforward/token")
    }

    /// An io that turns WebSocket messages into a byte stream, as kubectl's
    /// TunnelingConnection does.
    async fn ws_bytes(client: WebSocketStream<tokio::io::DuplexStream>) -> tokio::io::DuplexStream {
        let (mine, theirs) = tokio::io::duplex(64 * 1024);
        let (mut sink, mut source) = client.split();
        let (mut r, mut w) = tokio::io::split(mine);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        // Split writes across messages to exercise reassembly.
                        for part in buf[..n].chunks(7) {
                            sink.send(Message::binary(part.to_vec())).await.unwrap();
                        }
                    }
                }
            }
        });
        tokio::spawn(async move {
            while let Some(Ok(Message::Binary(b))) = source.next().await {
                if w.write_all(&b).await.is_err() {
                    break;
                }
            }
        });
        theirs
    }

    #[tokio::test]
    async fn spdy_session_tunnels_through_websocket() {
        let url = fake_runtime().await;
        let rt = connect_runtime(&url).await.unwrap();
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let server_ws = WebSocketStream::from_raw_socket(server_io, WsRole::Server, None).await;
        let client_ws = WebSocketStream::from_raw_socket(client_io, WsRole::Client, None).await;
        tokio::spawn(tunnel_websocket(server_ws, rt));
        let bytes = ws_bytes(client_ws).await;
        let (conn, _inc) = Connection::new(bytes, Role::Client);
        for (req, port) in [("0", "80"), ("1", "8080")] {
            let h = |t: &str| {
                vec![
                    ("streamtype".to_string(), t.to_string()),
                    ("port".to_string(), port.to_string()),
                    ("requestid".to_string(), req.to_string()),
                ]
            };
            let err = conn.open_stream(h("error")).await.unwrap();
            err.writer.close().await.unwrap();
            let mut data = conn.open_stream(h("data")).await.unwrap();
            data.writer.write(b"GET /").await.unwrap();
            data.writer.close().await.unwrap();
            let got = data.reader.read_to_end().await;
            assert_eq!(got, format!("port {port}: GET /").into_bytes());
        }
        conn.close().await;
    }
}
