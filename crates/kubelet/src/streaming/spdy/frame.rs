//! SPDY/3.1 frames on the wire: an 8-byte header, then the payload.
//!
//! Control frames: `1 | version(15) | type(16) | flags(8) | length(24)`.
//! Data frames: `0 | stream id(31) | flags(8) | length(24)`.
//! Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib streams seeded
//! with [`DICTIONARY`], one compression context per direction for the whole
//! connection, each block ending with a sync flush.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::DICTIONARY;

pub const VERSION: u16 = 3;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

/// Largest payload a frame can carry (24-bit length).
pub const MAX_FRAME_LEN: usize = (1 << 24) - 1;
/// Decompressed header blocks larger than this are refused (a zlib bomb
/// would otherwise grow without bound).
const MAX_HEADER_BLOCK: usize = 1 << 20;

/// RST_STREAM status codes used here.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

/// Header name/value pairs. Names are lowercase on the wire (spdystream
/// refuses others); several values of one name travel NUL-separated.
pub type Headers = Vec<(String, String)>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    /// `(flags, id, value)` triples.
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("invalid {0} frame")]
    Invalid(&'static str),
    #[error("frame payload of {0} bytes is too large")]
    TooLarge(usize),
    #[error("header block: {0}")]
    HeaderBlock(String),
}

/// Encodes and decodes frames of one connection: it owns the two zlib
/// contexts, so a connection needs exactly one (split into its halves).
pub struct Encoder {
    z: Compress,
}

pub struct Decoder {
    z: Decompress,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        let mut z = Compress::new(Compression::default(), true);
        // Only fails with a zlib that has no dictionary support (miniz).
        let _ = z.set_dictionary(DICTIONARY);
        Encoder { z }
    }

    /// Appends `frame` to `out`. Data larger than one frame must be split
    /// by the caller.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), FrameError> {
        match frame {
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if data.len() > MAX_FRAME_LEN {
                    return Err(FrameError::TooLarge(data.len()));
                }
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32(((*flags as u32) << 24) | data.len() as u32);
                out.put_slice(data);
                Ok(())
            }
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                flags,
                headers,
            } => {
                let block = self.compress(headers)?;
                let mut p = BytesMut::with_capacity(10 + block.len());
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_u32(associated_to & 0x7fff_ffff);
                p.put_u8((priority & 0x07) << 5);
                p.put_u8(0); // credential slot
                p.put_slice(&block);
                control(out, SYN_STREAM, *flags, &p)
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                let block = self.compress(headers)?;
                let mut p = BytesMut::with_capacity(4 + block.len());
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_slice(&block);
                control(out, SYN_REPLY, *flags, &p)
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                let block = self.compress(headers)?;
                let mut p = BytesMut::with_capacity(4 + block.len());
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_slice(&block);
                control(out, HEADERS, *flags, &p)
            }
            Frame::RstStream { stream_id, status } => {
                let mut p = BytesMut::with_capacity(8);
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_u32(*status);
                control(out, RST_STREAM, 0, &p)
            }
            Frame::Settings { flags, entries } => {
                let mut p = BytesMut::with_capacity(4 + 8 * entries.len());
                p.put_u32(entries.len() as u32);
                for (f, id, value) in entries {
                    p.put_u32(((*f as u32) << 24) | (id & 0x00ff_ffff));
                    p.put_u32(*value);
                }
                control(out, SETTINGS, *flags, &p)
            }
            Frame::Ping { id } => control(out, PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                let mut p = BytesMut::with_capacity(8);
                p.put_u32(last_good_stream_id & 0x7fff_ffff);
                p.put_u32(*status);
                control(out, GOAWAY, 0, &p)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut p = BytesMut::with_capacity(8);
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_u32(delta & 0x7fff_ffff);
                control(out, WINDOW_UPDATE, 0, &p)
            }
        }
    }

    fn compress(&mut self, headers: &Headers) -> Result<Vec<u8>, FrameError> {
        let plain = header_block(headers);
        let mut out = Vec::with_capacity(plain.len() / 2 + 64);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(&plain[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| FrameError::HeaderBlock(e.to_string()))?;
            consumed += (self.z.total_in() - before) as usize;
            // A sync flush is complete once all input is in and zlib left
            // spare room in the output (it stops early only when full).
            if consumed == plain.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, payload: &[u8]) -> Result<(), FrameError> {
    if payload.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(payload.len()));
    }
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32(((flags as u32) << 24) | payload.len() as u32);
    out.put_slice(payload);
    Ok(())
}

/// The uncompressed header block: a count, then length-prefixed names and
/// values (32-bit lengths in SPDY/3). Repeated names are joined with NUL.
fn header_block(headers: &Headers) -> Vec<u8> {
    let mut merged: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => merged.push((name, vec![value])),
        }
    }
    let mut b = Vec::new();
    b.put_u32(merged.len() as u32);
    for (name, values) in merged {
        b.put_u32(name.len() as u32);
        b.put_slice(name.as_bytes());
        let value = values.join("\0");
        b.put_u32(value.len() as u32);
        b.put_slice(value.as_bytes());
    }
    b
}

fn parse_header_block(mut b: &[u8]) -> Result<Headers, FrameError> {
    let bad = |what: &str| FrameError::HeaderBlock(what.to_string());
    if b.remaining() < 4 {
        return Err(bad("truncated count"));
    }
    let count = b.get_u32() as usize;
    let mut headers = Vec::new();
    for _ in 0..count {
        let name = take_string(&mut b).ok_or_else(|| bad("truncated name"))?;
        let value = take_string(&mut b).ok_or_else(|| bad("truncated value"))?;
        for v in value.split('\0') {
            headers.push((name.to_ascii_lowercase(), v.to_string()));
        }
    }
    Ok(headers)
}

fn take_string(b: &mut &[u8]) -> Option<String> {
    if b.remaining() < 4 {
        return None;
    }
    let len = b.get_u32() as usize;
    if b.remaining() < len {
        return None;
    }
    let s = String::from_utf8_lossy(&b[..len]).into_owned();
    b.advance(len);
    Some(s)
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            z: Decompress::new(true),
        }
    }

    /// Takes one whole frame off the front of `buf`, or `None` if `buf`
    /// does not hold one yet.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            buf.reserve(8 + len - buf.len());
            return Ok(None);
        }
        let mut head = buf.split_to(8);
        let mut payload = buf.split_to(len).freeze();
        let first = head.get_u32();
        let flags = head[0];
        if first & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data {
                stream_id: first & 0x7fff_ffff,
                flags,
                data: payload,
            }));
        }
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let kind = (first & 0xffff) as u16;
        let need = |n: usize, what| {
            if len < n {
                Err(FrameError::Invalid(what))
            } else {
                Ok(())
            }
        };
        let frame = match kind {
            SYN_STREAM => {
                need(10, "SYN_STREAM")?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                let associated_to = payload.get_u32() & 0x7fff_ffff;
                let priority = payload.get_u8() >> 5;
                payload.advance(1);
                let headers = self.decompress(&payload)?;
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    flags,
                    headers,
                }
            }
            SYN_REPLY => {
                need(4, "SYN_REPLY")?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                let headers = self.decompress(&payload)?;
                Frame::SynReply {
                    stream_id,
                    flags,
                    headers,
                }
            }
            HEADERS => {
                need(4, "HEADERS")?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                let headers = self.decompress(&payload)?;
                Frame::Headers {
                    stream_id,
                    flags,
                    headers,
                }
            }
            RST_STREAM => {
                need(8, "RST_STREAM")?;
                Frame::RstStream {
                    stream_id: payload.get_u32() & 0x7fff_ffff,
                    status: payload.get_u32(),
                }
            }
            SETTINGS => {
                need(4, "SETTINGS")?;
                let n = payload.get_u32() as usize;
                if payload.remaining() < n.saturating_mul(8) {
                    return Err(FrameError::Invalid("SETTINGS"));
                }
                let entries = (0..n)
                    .map(|_| {
                        let id = payload.get_u32();
                        ((id >> 24) as u8, id & 0x00ff_ffff, payload.get_u32())
                    })
                    .collect();
                Frame::Settings { flags, entries }
            }
            PING => {
                need(4, "PING")?;
                Frame::Ping {
                    id: payload.get_u32(),
                }
            }
            GOAWAY => {
                need(4, "GOAWAY")?;
                let last_good_stream_id = payload.get_u32() & 0x7fff_ffff;
                // SPDY/2 peers send no status.
                let status = if payload.remaining() >= 4 {
                    payload.get_u32()
                } else {
                    0
                };
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                }
            }
            WINDOW_UPDATE => {
                need(8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate {
                    stream_id: payload.get_u32() & 0x7fff_ffff,
                    delta: payload.get_u32() & 0x7fff_ffff,
                }
            }
            // Unknown control frames are ignored, as the spec asks.
            _ => return self.decode(buf),
        };
        Ok(Some(frame))
    }

    fn decompress(&mut self, input: &[u8]) -> Result<Headers, FrameError> {
        let mut out: Vec<u8> = Vec::with_capacity(input.len() * 4 + 64);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(1024));
            }
            let before = self.z.total_in();
            let r = self
                .z
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.z.total_in() - before) as usize;
            match r {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {
                    if consumed == input.len() && out.len() < out.capacity() {
                        break;
                    }
                }
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| FrameError::HeaderBlock(e.to_string()))?;
                }
                Err(e) => return Err(FrameError::HeaderBlock(e.to_string())),
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(FrameError::HeaderBlock("too large".into()));
            }
        }
        parse_header_block(&out)
    }
}

/// The first value of header `name` (case-insensitive).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                flags: 0,
                headers: h(&[("streamtype", "error")]),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 1,
                priority: 7,
                flags: FLAG_FIN | FLAG_UNIDIRECTIONAL,
                headers: h(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream_id: 3,
                flags: 0,
                headers: Vec::new(),
            },
            Frame::Headers {
                stream_id: 3,
                flags: FLAG_FIN,
                headers: h(&[("a", "1"), ("a", "2")]),
            },
            Frame::RstStream {
                stream_id: 5,
                status: RST_CANCEL,
            },
            Frame::Settings {
                flags: 0,
                entries: vec![(0, 7, 65536), (1, 4, 100)],
            },
            Frame::Ping { id: 2 },
            Frame::GoAway {
                last_good_stream_id: 9,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 4096,
            },
            Frame::Data {
                stream_id: 1,
                flags: 0,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Bytes::new(),
            },
        ]
    }

    #[test]
    fn every_frame_round_trips_through_one_context() {
        let (mut enc, mut dec) = (Encoder::new(), Decoder::new());
        let mut wire = BytesMut::new();
        for f in all_frames() {
            enc.encode(&f, &mut wire).unwrap();
        }
        for want in all_frames() {
            assert_eq!(dec.decode(&mut wire).unwrap(), Some(want));
        }
        assert!(wire.is_empty());
        assert_eq!(dec.decode(&mut wire).unwrap(), None);
    }

    #[test]
    fn fragmented_reads_yield_frames_only_when_whole() {
        let (mut enc, mut dec) = (Encoder::new(), Decoder::new());
        let mut wire = BytesMut::new();
        for f in all_frames() {
            enc.encode(&f, &mut wire).unwrap();
        }
        // Feed one byte at a time.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, all_frames());
    }

    #[test]
    fn header_block_uses_the_dictionary_and_lowercases() {
        let mut enc = Encoder::new();
        let mut wire = BytesMut::new();
        enc.encode(
            &Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: h(&[("StreamType", "stdout")]),
            },
            &mut wire,
        )
        .unwrap();
        // zlib header after the 12 bytes of frame head + stream id: FDICT
        // set, followed by the dictionary's Adler-32.
        let z = &wire[12..];
        assert_eq!(z[0] & 0x0f, 8, "deflate");
        assert_ne!(z[1] & 0x20, 0, "FDICT");
        assert_eq!(&z[2..6], &[0xe3, 0xc6, 0xa7, 0xc2]);
        let got = Decoder::new().decode(&mut wire).unwrap().unwrap();
        match got {
            Frame::SynReply { headers, .. } => {
                assert_eq!(headers, h(&[("streamtype", "stdout")]));
                assert_eq!(header(&headers, "streamType"), Some("stdout"));
            }
            other => panic!("{other:?}"),
        }
    }

    /// A header block as a plain zlib (with the SPDY dictionary) would write
    /// it, independent of our encoder: count 1, "port" = "8080".
    #[test]
    fn decodes_a_foreign_header_block() {
        let plain = header_block(&h(&[("port", "8080")]));
        let mut z = Compress::new(Compression::best(), true);
        z.set_dictionary(DICTIONARY).unwrap();
        let mut block = Vec::with_capacity(256);
        z.compress_vec(&plain, &mut block, FlushCompress::Sync)
            .unwrap();
        let mut payload = BytesMut::new();
        payload.put_u32(7);
        payload.put_slice(&block);
        let mut wire = BytesMut::new();
        control(&mut wire, HEADERS, 0, &payload).unwrap();
        assert_eq!(
            Decoder::new().decode(&mut wire).unwrap(),
            Some(Frame::Headers {
                stream_id: 7,
                flags: 0,
                headers: h(&[("port", "8080")])
            })
        );
    }

    #[test]
    fn large_header_blocks_and_data() {
        let big = "x".repeat(100_000);
        let (mut enc, mut dec) = (Encoder::new(), Decoder::new());
        let mut wire = BytesMut::new();
        let f = Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 0,
            flags: 0,
            headers: h(&[("big", &big)]),
        };
        enc.encode(&f, &mut wire).unwrap();
        let data = Frame::Data {
            stream_id: 1,
            flags: FLAG_FIN,
            data: Bytes::from(vec![7u8; 70_000]),
        };
        enc.encode(&data, &mut wire).unwrap();
        assert_eq!(dec.decode(&mut wire).unwrap(), Some(f));
        assert_eq!(dec.decode(&mut wire).unwrap(), Some(data));
    }

    #[test]
    fn rejects_other_versions_and_garbage_blocks() {
        let mut wire = BytesMut::new();
        wire.put_u16(0x8000 | 2);
        wire.put_u16(PING);
        wire.put_u32(4);
        wire.put_u32(1);
        assert!(matches!(
            Decoder::new().decode(&mut wire),
            Err(FrameError::Version(2))
        ));
        let mut wire = BytesMut::new();
        control(
            &mut wire,
            SYN_REPLY,
            0,
            &[0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef],
        )
        .unwrap();
        assert!(Decoder::new().decode(&mut wire).is_err());
    }
}
