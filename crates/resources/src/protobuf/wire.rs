//! The protobuf wire format: a reader yielding (tag, value) pairs.

/// One encoded field value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl Wire<'_> {
    /// The wire type's name, for error messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Wire::Varint(_) => "varint",
            Wire::Fixed64(_) => "64-bit",
            Wire::Bytes(_) => "length-delimited",
            Wire::Fixed32(_) => "32-bit",
        }
    }
}

/// Why bytes are not well-formed protobuf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("unexpected end of data")]
    Truncated,
    #[error("varint longer than 10 bytes")]
    VarintOverflow,
    #[error("unsupported wire type {0}")]
    WireType(u8),
    #[error("field number 0")]
    ZeroTag,
}

/// Reads the fields of one message in order.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// True when every byte has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(super) fn varint(&mut self) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        if self.buf.len() < 10 {
            Err(WireError::Truncated)
        } else {
            Err(WireError::VarintOverflow)
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub(super) fn fixed64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn fixed32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }

    /// The next field, or `None` at the end of the message.
    pub(super) fn field(&mut self) -> Result<Option<(u32, Wire<'a>)>, WireError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| WireError::VarintOverflow)?;
        if tag == 0 {
            return Err(WireError::ZeroTag);
        }
        // The low three bits are the wire type; the mask keeps the cast lossless.
        let wire = match (key & 7) as u8 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(self.fixed64()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| WireError::Truncated)?;
                Wire::Bytes(self.take(len)?)
            }
            5 => Wire::Fixed32(self.fixed32()?),
            other => return Err(WireError::WireType(other)),
        };
        Ok(Some((tag, wire)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_wire_type() {
        // 1: varint 300, 2: bytes "hi", 3: fixed64 1, 4: fixed32 2
        let bytes = [
            0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x19, 1, 0, 0, 0, 0, 0, 0, 0, 0x25, 2, 0, 0,
            0,
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.field(), Ok(Some((1, Wire::Varint(300)))));
        assert_eq!(r.field(), Ok(Some((2, Wire::Bytes(b"hi")))));
        assert_eq!(r.field(), Ok(Some((3, Wire::Fixed64(1)))));
        assert_eq!(r.field(), Ok(Some((4, Wire::Fixed32(2)))));
        assert_eq!(r.field(), Ok(None));
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(
            Reader::new(&[0x0a, 5, 1]).field(),
            Err(WireError::Truncated)
        );
        assert_eq!(
            Reader::new(&[0x08, 0x80]).field(),
            Err(WireError::Truncated)
        );
        assert_eq!(Reader::new(&[0x0b]).field(), Err(WireError::WireType(3)));
        assert_eq!(Reader::new(&[0x00]).field(), Err(WireError::ZeroTag));
        assert_eq!(
            Reader::new(&[0x08; 12]).field().ok(),
            Some(Some((1, Wire::Varint(8))))
        );
        assert_eq!(
            Reader::new(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
                .field(),
            Err(WireError::VarintOverflow)
        );
    }
}
