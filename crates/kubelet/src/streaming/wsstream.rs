//! The WebSocket channel protocols (`channel.k8s.io` family, upstream's
//! `wsstream`): every binary message starts with one byte naming the
//! channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize). Version 5 adds
//! one control message, `[255, channel]`: the client closed that channel
//! (how `kubectl exec -i` signals the end of stdin).

pub const V5: &str = "v5.channel.k8s.io";
pub const V4: &str = "v4.channel.k8s.io";
pub const V3: &str = "v3.channel.k8s.io";
pub const V2: &str = "v2.channel.k8s.io";
pub const V1: &str = "channel.k8s.io";
/// Port-forward as SPDY frames carried in binary WebSocket messages
/// (`SPDY/3.1+` + the SPDY protocol the runtime chose).
pub const TUNNELING_PREFIX: &str = "SPDY/3.1+";
pub const PORT_FORWARD: &str = "portforward.k8s.io";

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5 only: the stream-close signal.
pub const CLOSE: u8 = 255;

/// What one binary message from the client means.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    Data {
        channel: u8,
        data: &'a [u8],
    },
    /// The client will send nothing more on `channel` (v5).
    Close {
        channel: u8,
    },
    /// An empty message: nothing to do.
    Empty,
}

/// Decodes a client message under `protocol` (one of the names above).
pub fn decode<'a>(protocol: &str, msg: &'a [u8]) -> Inbound<'a> {
    match msg {
        [] => Inbound::Empty,
        [CLOSE, channel, ..] if protocol == V5 => Inbound::Close { channel: *channel },
        [channel, data @ ..] => Inbound::Data {
            channel: *channel,
            data,
        },
    }
}

/// A message carrying `data` on `channel`.
pub fn encode(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(data.len() + 1);
    m.push(channel);
    m.extend_from_slice(data);
    m
}

/// The subprotocols a client offered (`Sec-WebSocket-Protocol`, possibly
/// repeated and comma-separated), in its order of preference.
pub fn offered<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The first offered protocol this side supports (the client's preference
/// wins, as in upstream's handshake).
pub fn negotiate(offered: &[String], supported: &[&str]) -> Option<String> {
    offered
        .iter()
        .find(|p| supported.contains(&p.as_str()))
        .cloned()
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_messages_round_trip() {
        for ch in [STDIN, STDOUT, STDERR, ERROR, RESIZE] {
            let m = encode(ch, b"abc");
            assert_eq!(m[0], ch);
            assert_eq!(
                decode(V5, &m),
                Inbound::Data {
                    channel: ch,
                    data: b"abc"
                }
            );
        }
        assert_eq!(
            decode(V4, &encode(STDOUT, b"")),
            Inbound::Data {
                channel: STDOUT,
                data: b""
            }
        );
        assert_eq!(decode(V5, b""), Inbound::Empty);
    }

    #[test]
    fn close_signal_only_in_v5() {
        assert_eq!(
            decode(V5, &[CLOSE, STDIN]),
            Inbound::Close { channel: STDIN }
        );
        // v4 has no close: 255 is just an unknown channel.
        assert_eq!(
            decode(V4, &[CLOSE, STDIN]),
            Inbound::Data {
                channel: CLOSE,
                data: &[STDIN]
            }
        );
    }

    #[test]
    fn negotiation_follows_the_client() {
        let o = offered(["v5.channel.k8s.io, v4.channel.k8s.io", "channel.k8s.io"]);
        assert_eq!(o, vec![V5, V4, V1]);
        assert_eq!(negotiate(&o, &[V4, V5]), Some(V5.to_string()));
        assert_eq!(negotiate(&o[1..], &[V5, V4]), Some(V4.to_string()));
        assert_eq!(negotiate(&o, &["base64.channel.k8s.io"]), None);
    }

    #[test]
    fn accept_key_matches_rfc6455_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
