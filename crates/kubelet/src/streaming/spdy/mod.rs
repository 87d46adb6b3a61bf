//! SPDY/3.1 as Kubernetes uses it for streaming (`httpstream/spdy`): frames
//! with zlib-compressed header blocks, and a connection that multiplexes
//! streams for `kubectl exec`/`attach` (one stream per stdio channel) and
//! `port-forward` (a data and an error stream per forwarded connection).

pub mod conn;
pub mod dictionary;
pub mod frame;

pub use conn::{Connection, Incoming, Role, SpdyError, Stream, StreamReader, StreamWriter};
pub use frame::Headers;
