//! Length-delimited framing: a `u32` big-endian length, then that many bytes of body.
//!
//! [`FrameDecoder`] is sans-IO: feed it whatever bytes arrived, then pop complete frame bodies.
//! It rejects a length above its limit as soon as the 4-byte prefix is in, before buffering or
//! allocating the body. [`begin_frame`] and [`end_frame`] write a frame in place, so encoders
//! need no second buffer.
//!
//! What it does not do: decode frame bodies (see `message/`) or touch sockets.

use crate::limits::MAX_FRAME_LEN;

/// Size of the length prefix in bytes.
pub const LEN_PREFIX: usize = 4;

/// Why the byte stream cannot be framed any further. The connection should be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame announced a body longer than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Incremental frame splitter.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(MAX_FRAME_LEN)
    }
}

impl FrameDecoder {
    /// A decoder that accepts bodies of at most `max` bytes (never more than [`MAX_FRAME_LEN`]).
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            max: max.min(MAX_FRAME_LEN),
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame body, if one has arrived. After an error the decoder must not
    /// be used again.
    pub fn pop(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let avail = &self.buf[self.start..];
        let Some(prefix) = avail.get(..LEN_PREFIX) else {
            self.compact();
            return Ok(None);
        };
        let mut len_bytes = [0u8; LEN_PREFIX];
        len_bytes.copy_from_slice(prefix);
        let len = u32::from_be_bytes(len_bytes) as usize;
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        if avail.len() < LEN_PREFIX + len {
            self.compact();
            return Ok(None);
        }
        let body_start = self.start + LEN_PREFIX;
        self.start = body_start + len;
        Ok(Some(&self.buf[body_start..body_start + len]))
    }

    /// Moves the unread tail to the front so the buffer does not grow without bound.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

/// Starts a frame at the end of `out`: reserves the length prefix. Returns where it starts.
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; LEN_PREFIX]);
    at
}

/// Completes the frame started at `at` (as returned by [`begin_frame`]) by writing its length
/// prefix. An `at` that [`begin_frame`] did not return leaves `out` unchanged.
pub fn end_frame(out: &mut [u8], at: usize) {
    let len = out.len().saturating_sub(at).saturating_sub(LEN_PREFIX);
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    if let Some(prefix) = out.get_mut(at..at.saturating_add(LEN_PREFIX)) {
        prefix.copy_from_slice(&len.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let at = begin_frame(&mut out);
        out.extend_from_slice(body);
        end_frame(&mut out, at);
        out
    }

    #[test]
    fn splits_frames_fed_one_byte_at_a_time() {
        let mut wire = frame(b"hello");
        wire.extend(frame(b""));
        wire.extend(frame(b"world"));
        let mut dec = FrameDecoder::default();
        let mut got = Vec::new();
        for b in wire {
            dec.feed(&[b]);
            while let Some(f) = dec.pop().unwrap() {
                got.push(f.to_vec());
            }
        }
        assert_eq!(got, vec![b"hello".to_vec(), vec![], b"world".to_vec()]);
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn oversize_prefix_is_rejected_before_the_body_arrives() {
        let mut dec = FrameDecoder::new(16);
        dec.feed(&17u32.to_be_bytes());
        assert_eq!(dec.pop(), Err(FrameError::TooLarge { len: 17, max: 16 }));
        let mut dec = FrameDecoder::default();
        dec.feed(&u32::MAX.to_be_bytes());
        assert!(dec.pop().is_err());
    }
}
