//! A SPDY/3.1 connection: many streams over one byte stream, usable as the
//! client (odd stream ids) or the server (even ids).
//!
//! Flow control is not enforced in either direction, like the Go
//! `spdystream` that every Kubernetes peer uses (it never sends
//! WINDOW_UPDATE, so honouring the 64 KiB window would stall). Back-pressure
//! comes from TCP instead: each stream buffers a few frames, and a full
//! buffer stops the reader.
//!
//! A stream opened here waits for the peer's SYN_REPLY before it is handed
//! out, because spdystream drops data that arrives on a stream it has not
//! replied to yet; streams the peer opens are replied to when accepted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::frame::{self, Decoder, Encoder, Frame, FrameError, Headers, FLAG_FIN};

/// Data larger than this is sent as several frames.
const CHUNK: usize = 32 * 1024;
/// Frames buffered per stream before the connection's reader waits.
const STREAM_BUFFER: usize = 32;
/// How long [`Connection::open_stream`] waits for the SYN_REPLY.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("the SPDY connection is closed")]
    Closed,
    #[error("the stream was reset by the peer")]
    Reset,
    #[error("timed out waiting for the stream reply")]
    Timeout,
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What the reader delivers to one stream.
type DataTx = mpsc::Sender<Bytes>;

struct Slot {
    data: Option<DataTx>,
    reply: Option<oneshot::Sender<Result<Headers, SpdyError>>>,
}

struct Shared {
    role: Role,
    out: mpsc::Sender<Frame>,
    streams: Mutex<HashMap<u32, Slot>>,
    next_id: AtomicU32,
    /// Highest stream id the peer opened (for GOAWAY).
    last_peer_id: AtomicU32,
    going_away: AtomicBool,
    /// Fires when the reader stops (peer closed, error, or [`Connection::close`]).
    done: CancellationToken,
}

/// A handle on the connection. Cloning is cheap; the connection lives while
/// its reader and writer tasks run.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

/// Streams the peer opens, in order.
pub struct Incoming {
    rx: mpsc::Receiver<(u32, Headers, mpsc::Receiver<Bytes>)>,
    shared: Arc<Shared>,
}

impl Connection {
    /// Starts the reader and writer tasks on `io`.
    pub fn new<T>(io: T, role: Role) -> (Connection, Incoming)
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel::<Frame>(64);
        let (in_tx, in_rx) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            role,
            out: out_tx,
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(if role == Role::Client { 1 } else { 2 }),
            last_peer_id: AtomicU32::new(0),
            going_away: AtomicBool::new(false),
            done: CancellationToken::new(),
        });
        tokio::spawn(write_loop(wr, out_rx, shared.done.clone()));
        tokio::spawn(read_loop(rd, shared.clone(), in_tx));
        (
            Connection {
                shared: shared.clone(),
            },
            Incoming { rx: in_rx, shared },
        )
    }

    /// Opens a stream and waits for the peer's reply.
    pub async fn open_stream(&self, headers: Headers) -> Result<Stream, SpdyError> {
        let id = self.shared.next_id.fetch_add(2, Ordering::SeqCst);
        let (data_tx, data_rx) = mpsc::channel(STREAM_BUFFER);
        let (reply_tx, reply_rx) = oneshot::channel();
        self.shared.slots().insert(
            id,
            Slot {
                data: Some(data_tx),
                reply: Some(reply_tx),
            },
        );
        self.shared
            .send(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                flags: 0,
                headers: headers.clone(),
            })
            .await?;
        let reply = tokio::select! {
            // A reply that arrived just before the connection ended still counts.
            biased;
            r = tokio::time::timeout(REPLY_TIMEOUT, reply_rx) => r,
            _ = self.shared.done.cancelled() => return Err(SpdyError::Closed),
        };
        match reply {
            Ok(Ok(Ok(_))) => Ok(Stream::new(id, headers, data_rx, self.shared.clone())),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(SpdyError::Closed),
            Err(_) => {
                self.shared.slots().remove(&id);
                Err(SpdyError::Timeout)
            }
        }
    }

    /// Sends GOAWAY and stops both directions once queued frames are out.
    pub async fn close(&self) {
        if !self.shared.going_away.swap(true, Ordering::SeqCst) {
            let last = self.shared.last_peer_id.load(Ordering::SeqCst);
            let _ = self
                .shared
                .send(Frame::GoAway {
                    last_good_stream_id: last,
                    status: 0,
                })
                .await;
        }
        self.shared.done.cancel();
    }

    /// Resolves when the connection has ended.
    pub async fn closed(&self) {
        self.shared.done.cancelled().await
    }

    pub fn is_closed(&self) -> bool {
        self.shared.done.is_cancelled()
    }
}

impl Incoming {
    /// The next stream the peer opens (replied to before it is returned),
    /// or `None` once the connection is closed.
    pub async fn accept(&mut self) -> Option<Stream> {
        let (id, headers, rx) = self.rx.recv().await?;
        let _ = self
            .shared
            .send(Frame::SynReply {
                stream_id: id,
                flags: 0,
                headers: Vec::new(),
            })
            .await;
        Some(Stream::new(id, headers, rx, self.shared.clone()))
    }
}

impl Shared {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Slot>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn send(&self, f: Frame) -> Result<(), SpdyError> {
        if self.done.is_cancelled() {
            return Err(SpdyError::Closed);
        }
        self.out.send(f).await.map_err(|_| SpdyError::Closed)
    }

    fn is_peer_id(&self, id: u32) -> bool {
        // Clients use odd ids, servers even ones.
        (id % 2 == 1) == (self.role == Role::Server)
    }
}

async fn write_loop<W: AsyncWrite>(wr: W, mut rx: mpsc::Receiver<Frame>, done: CancellationToken) {
    tokio::pin!(wr);
    let mut enc = Encoder::new();
    let mut buf = BytesMut::with_capacity(CHUNK + 64);
    loop {
        let f = tokio::select! {
            biased;
            f = rx.recv() => f,
            _ = done.cancelled() => {
                // Flush what was queued before the close (the GOAWAY among it).
                rx.close();
                rx.recv().await
            }
        };
        let Some(f) = f else { break };
        if let Err(e) = enc.encode(&f, &mut buf) {
            tracing::debug!(error = %e, "SPDY frame not encodable");
            continue;
        }
        // Batch whatever else is already queued into one write.
        while buf.len() < CHUNK {
            match rx.try_recv() {
                Ok(f) => {
                    let _ = enc.encode(&f, &mut buf);
                }
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            break;
        }
        buf.clear();
    }
    let _ = wr.shutdown().await;
    done.cancel();
}

async fn read_loop<R: AsyncRead>(
    rd: R,
    shared: Arc<Shared>,
    incoming: mpsc::Sender<(u32, Headers, mpsc::Receiver<Bytes>)>,
) {
    tokio::pin!(rd);
    let mut dec = Decoder::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    'read: loop {
        loop {
            let frame = match dec.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "SPDY protocol error");
                    let _ = shared.out.try_send(Frame::GoAway {
                        last_good_stream_id: shared.last_peer_id.load(Ordering::SeqCst),
                        status: 1,
                    });
                    break 'read;
                }
            };
            if !handle(frame, &shared, &incoming).await {
                break 'read;
            }
        }
        let n = tokio::select! {
            r = rd.read_buf(&mut buf) => r,
            _ = shared.done.cancelled() => break,
        };
        match n {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // Every stream sees the end of its data; pending opens fail.
    shared.slots().clear();
    shared.done.cancel();
}

/// Applies one frame; false ends the connection.
async fn handle(
    frame: Frame,
    shared: &Arc<Shared>,
    incoming: &mpsc::Sender<(u32, Headers, mpsc::Receiver<Bytes>)>,
) -> bool {
    match frame {
        Frame::SynStream {
            stream_id,
            flags,
            headers,
            ..
        } => {
            let exists = shared.slots().contains_key(&stream_id);
            if !shared.is_peer_id(stream_id)
                || exists
                || stream_id <= shared.last_peer_id.load(Ordering::SeqCst)
                || shared.going_away.load(Ordering::SeqCst)
            {
                let _ = shared
                    .send(Frame::RstStream {
                        stream_id,
                        status: frame::RST_PROTOCOL_ERROR,
                    })
                    .await;
                return true;
            }
            shared.last_peer_id.store(stream_id, Ordering::SeqCst);
            let (tx, rx) = mpsc::channel(STREAM_BUFFER);
            if flags & FLAG_FIN == 0 {
                shared.slots().insert(
                    stream_id,
                    Slot {
                        data: Some(tx),
                        reply: None,
                    },
                );
            }
            if incoming.send((stream_id, headers, rx)).await.is_err() {
                // Nobody accepts streams on this side: refuse it.
                shared.slots().remove(&stream_id);
                let _ = shared
                    .send(Frame::RstStream {
                        stream_id,
                        status: frame::RST_REFUSED_STREAM,
                    })
                    .await;
            }
        }
        Frame::SynReply {
            stream_id,
            flags,
            headers,
        } => {
            let mut slots = shared.slots();
            if let Some(slot) = slots.get_mut(&stream_id) {
                if let Some(r) = slot.reply.take() {
                    let _ = r.send(Ok(headers));
                }
                if flags & FLAG_FIN != 0 {
                    slots.remove(&stream_id);
                }
            }
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            let tx = shared.slots().get(&stream_id).and_then(|s| s.data.clone());
            if let Some(tx) = tx {
                if !data.is_empty() {
                    // A reader that went away just loses the data.
                    let _ = tx.send(data).await;
                }
            }
            if flags & FLAG_FIN != 0 {
                shared.slots().remove(&stream_id);
            }
        }
        Frame::Headers {
            stream_id, flags, ..
        } => {
            if flags & FLAG_FIN != 0 {
                shared.slots().remove(&stream_id);
            }
        }
        Frame::RstStream { stream_id, .. } => {
            if let Some(mut slot) = shared.slots().remove(&stream_id) {
                if let Some(r) = slot.reply.take() {
                    let _ = r.send(Err(SpdyError::Reset));
                }
            }
        }
        Frame::Ping { id } => {
            // Answer the peer's pings; ours (same parity as our ids) need no answer.
            let ours = (id % 2 == 1) == (shared.role == Role::Client);
            if !ours {
                let _ = shared.send(Frame::Ping { id }).await;
            }
        }
        Frame::GoAway { .. } => {
            shared.going_away.store(true, Ordering::SeqCst);
            // Streams already open keep running until the peer closes the
            // connection; that ends the reader.
        }
        Frame::Settings { .. } | Frame::WindowUpdate { .. } => {}
    }
    true
}

/// One stream: a reader of what the peer sends and a writer to it.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    pub reader: StreamReader,
    pub writer: StreamWriter,
}

impl Stream {
    fn new(id: u32, headers: Headers, rx: mpsc::Receiver<Bytes>, shared: Arc<Shared>) -> Stream {
        Stream {
            id,
            headers,
            reader: StreamReader { rx },
            writer: StreamWriter {
                id,
                shared,
                closed: Arc::new(AtomicBool::new(false)),
            },
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        frame::header(&self.headers, name)
    }
}

pub struct StreamReader {
    rx: mpsc::Receiver<Bytes>,
}

impl StreamReader {
    /// The next chunk, or `None` after the peer's FIN, a reset or the end of
    /// the connection.
    pub async fn read(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    /// Everything until the end of the stream.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(b) = self.read().await {
            all.extend_from_slice(&b);
        }
        all
    }
}

#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    shared: Arc<Shared>,
    closed: Arc<AtomicBool>,
}

impl StreamWriter {
    pub async fn write(&self, data: &[u8]) -> Result<(), SpdyError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(SpdyError::Closed);
        }
        for chunk in data.chunks(CHUNK) {
            self.shared
                .send(Frame::Data {
                    stream_id: self.id,
                    flags: 0,
                    data: Bytes::copy_from_slice(chunk),
                })
                .await?;
        }
        Ok(())
    }

    /// Half-closes: an empty DATA frame with FIN. Reading goes on.
    pub async fn close(&self) -> Result<(), SpdyError> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.shared
            .send(Frame::Data {
                stream_id: self.id,
                flags: FLAG_FIN,
                data: Bytes::new(),
            })
            .await
    }

    /// Abandons the stream in both directions.
    pub async fn reset(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.shared.slots().remove(&self.id);
        let _ = self
            .shared
            .send(Frame::RstStream {
                stream_id: self.id,
                status: frame::RST_CANCEL,
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(n: &str, v: &str) -> Headers {
        vec![(n.to_string(), v.to_string())]
    }

    fn pair() -> ((Connection, Incoming), (Connection, Incoming)) {
        let (a, b) = tokio::io::duplex(4096);
        (
            Connection::new(a, Role::Client),
            Connection::new(b, Role::Server),
        )
    }

    #[tokio::test]
    async fn open_accept_and_exchange_data_both_ways() {
        let ((client, _ci), (_server, mut si)) = pair();
        let opener = tokio::spawn(async move {
            let mut s = client
                .open_stream(hdr("streamType", "stdin"))
                .await
                .unwrap();
            assert_eq!(s.id, 1);
            s.writer.write(b"ping").await.unwrap();
            s.writer.close().await.unwrap();
            let back = s.reader.read_to_end().await;
            (client, back)
        });
        let mut s = si.accept().await.unwrap();
        assert_eq!(s.header("streamtype"), Some("stdin"));
        assert_eq!(s.reader.read_to_end().await, b"ping");
        s.writer.write(b"pong").await.unwrap();
        s.writer.close().await.unwrap();
        let (_client, back) = opener.await.unwrap();
        assert_eq!(back, b"pong");
    }

    #[tokio::test]
    async fn many_streams_and_large_payloads_keep_order() {
        let ((client, _ci), (_server, mut si)) = pair();
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let p2 = payload.clone();
        let sender = tokio::spawn(async move {
            let mut streams = Vec::new();
            for i in 0..5 {
                let s = client
                    .open_stream(hdr("requestid", &i.to_string()))
                    .await
                    .unwrap();
                streams.push(s);
            }
            for s in &streams {
                s.writer.write(&p2).await.unwrap();
                s.writer.close().await.unwrap();
            }
            (client, streams)
        });
        let mut readers = Vec::new();
        for i in 0..5 {
            let mut s = si.accept().await.unwrap();
            assert_eq!(s.header("requestid"), Some(i.to_string().as_str()));
            assert_eq!(s.id, 1 + 2 * i);
            readers.push(tokio::spawn(async move { s.reader.read_to_end().await }));
        }
        for r in readers {
            assert_eq!(r.await.unwrap(), payload);
        }
        sender.await.unwrap();
    }

    #[tokio::test]
    async fn server_can_open_streams_too() {
        let ((_client, mut ci), (server, _si)) = pair();
        let t = tokio::spawn(async move {
            let s = server.open_stream(hdr("x", "y")).await.unwrap();
            assert_eq!(s.id, 2);
            s.writer.write(b"from server").await.unwrap();
            s.writer.close().await.unwrap();
            server
        });
        let mut s = ci.accept().await.unwrap();
        assert_eq!(s.reader.read_to_end().await, b"from server");
        t.await.unwrap();
    }

    #[tokio::test]
    async fn reset_fails_the_open_and_ends_reads() {
        let ((client, _ci), (_server, si)) = pair();
        // Nobody accepts on the server: drop its Incoming so streams are refused.
        drop(si);
        let r = client.open_stream(hdr("a", "b")).await;
        assert!(matches!(r, Err(SpdyError::Reset)), "{:?}", r.err());
    }

    #[tokio::test]
    async fn closing_the_connection_ends_every_stream() {
        let ((client, _ci), (server, mut si)) = pair();
        let t = tokio::spawn(async move {
            let mut s = client.open_stream(hdr("a", "b")).await.unwrap();
            let got = s.reader.read_to_end().await;
            (client, got)
        });
        let s = si.accept().await.unwrap();
        s.writer.write(b"partial").await.unwrap();
        server.close().await;
        let (client, got) = t.await.unwrap();
        assert_eq!(got, b"partial");
        tokio::time::timeout(Duration::from_secs(2), client.closed())
            .await
            .unwrap();
        assert!(client.open_stream(hdr("a", "b")).await.is_err());
    }

    #[tokio::test]
    async fn pings_are_answered() {
        let (a, b) = tokio::io::duplex(4096);
        let (_server, _si) = Connection::new(b, Role::Server);
        let (mut rd, mut wr) = tokio::io::split(a);
        let mut enc = Encoder::new();
        let mut buf = BytesMut::new();
        enc.encode(&Frame::Ping { id: 1 }, &mut buf).unwrap();
        wr.write_all(&buf).await.unwrap();
        let mut dec = Decoder::new();
        let mut inb = BytesMut::new();
        loop {
            if let Some(f) = dec.decode(&mut inb).unwrap() {
                assert_eq!(f, Frame::Ping { id: 1 });
                break;
            }
            rd.read_buf(&mut inb).await.unwrap();
        }
    }
}
