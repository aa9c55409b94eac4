//! The header at the start of every blob file: the blob's metadata and its wrapped key.
//!
//! A blob file is `HEADER_LEN` bytes of header, then the blob's bytes encrypted at rest (so
//! blob byte `i` is at file offset `HEADER_LEN + i`). The header holds two copies of the
//! metadata, at offsets 0 and [`COPY_LEN`]; each update writes the copy the previous update did
//! not, with a higher sequence number, and each copy carries a SHA-256 checksum. A torn header
//! write therefore leaves the older copy intact, and [`read`] takes the valid copy with the
//! highest sequence number.
//!
//! Fields are read and written with [`hush_protocol::codec`]; integers are big-endian.
//!
//! What it does not do: decide when the header is written (the durability rule lives in
//! `entry.rs`, its periodic part in `checkpoint.rs`), or encrypt anything: the metadata is not
//! secret (the capabilities appear only as SHA-256 hashes, and the data key only sealed under
//! its vault slot).

use std::fs::File;
use std::os::unix::fs::FileExt;

use hush_protocol::codec::{DecodeError, Reader, Writer};
use hush_protocol::BlobId;
use sha2::{Digest, Sha256};

use super::cipher::WRAPPED_KEY_LEN;
use super::{BlobError, CapHash};

/// Bytes before the first byte of blob data in a blob file.
pub const HEADER_LEN: u64 = 4096;
/// Room for one copy of the metadata.
const COPY_LEN: usize = 256;
/// First bytes of every metadata copy.
const MAGIC: &[u8; 8] = b"HUSHBLB1";
/// Length of an encoded copy, checksum included.
const ENCODED_LEN: usize = 8 + 8 + 16 + 32 + 32 + 8 + 8 + 8 + 8 + WRAPPED_KEY_LEN + 32;

const _: () = assert!(ENCODED_LEN <= COPY_LEN && 2 * COPY_LEN as u64 <= HEADER_LEN);

/// Everything the relay keeps about one blob.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) struct Header {
    /// Bumped by every header write; picks the newer of the two copies.
    pub(super) seq: u64,
    /// The blob's id (also its file name).
    pub(super) id: BlobId,
    /// SHA-256 of the write capability.
    pub(super) write_hash: CapHash,
    /// SHA-256 of the read capability.
    pub(super) read_hash: CapHash,
    /// Size declared at creation.
    pub(super) total_len: u64,
    /// Bytes known durable in the file.
    pub(super) committed: u64,
    /// Unix seconds at which the blob is deleted.
    pub(super) expires_at: u64,
    /// The vault slot whose key wraps the data key.
    pub(super) slot: u64,
    /// The blob's data key, sealed under the slot's key.
    pub(super) wrapped_key: [u8; WRAPPED_KEY_LEN],
}

impl Header {
    /// One metadata copy, checksum last.
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(ENCODED_LEN);
        w.raw(MAGIC);
        w.u64(self.seq);
        w.raw(self.id.as_bytes());
        w.raw(&self.write_hash);
        w.raw(&self.read_hash);
        w.u64(self.total_len);
        w.u64(self.committed);
        w.u64(self.expires_at);
        w.u64(self.slot);
        w.raw(&self.wrapped_key);
        let mut out = w.finish();
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Decodes one copy, checking its checksum and magic.
    fn decode(bytes: &[u8]) -> Result<Header, BlobError> {
        let short = |_| BlobError::Corrupt("short header");
        let mut r = Reader::new(bytes);
        let body = r.take(ENCODED_LEN - 32).map_err(short)?;
        let sum = r.take(32).map_err(short)?;
        if Sha256::digest(body).as_slice() != sum {
            return Err(BlobError::Corrupt("header checksum mismatch"));
        }
        let mut r = Reader::new(body);
        if &r.array::<8>().map_err(short)? != MAGIC {
            return Err(BlobError::Corrupt("not a blob file"));
        }
        Self::decode_fields(&mut r).map_err(short)
    }

    /// The fields after the magic, in [`Header::encode`]'s order.
    fn decode_fields(r: &mut Reader<'_>) -> Result<Header, DecodeError> {
        Ok(Header {
            seq: r.u64()?,
            id: BlobId(r.array()?),
            write_hash: r.array()?,
            read_hash: r.array()?,
            total_len: r.u64()?,
            committed: r.u64()?,
            expires_at: r.u64()?,
            slot: r.u64()?,
            wrapped_key: r.array()?,
        })
    }

    /// Writes this header into the copy its sequence number selects. Not synced.
    pub(super) fn write_to(&self, file: &File) -> Result<(), BlobError> {
        let at = (self.seq % 2) * COPY_LEN as u64;
        file.write_all_at(&self.encode(), at)?;
        Ok(())
    }
}

/// The newest valid header copy in `file`.
pub(super) fn read(file: &File) -> Result<Header, BlobError> {
    let mut raw = [0u8; 2 * COPY_LEN];
    file.read_exact_at(&mut raw, 0)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => BlobError::Corrupt("file shorter than a header"),
            _ => BlobError::from(e),
        })?;
    let a = Header::decode(&raw[..COPY_LEN]);
    let b = Header::decode(&raw[COPY_LEN..]);
    match (a, b) {
        (Ok(a), Ok(b)) => Ok(if b.seq > a.seq { b } else { a }),
        (Ok(h), Err(_)) | (Err(_), Ok(h)) => Ok(h),
        (Err(e), Err(_)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(seq: u64, committed: u64) -> Header {
        Header {
            seq,
            id: BlobId([7; 16]),
            write_hash: [1; 32],
            read_hash: [2; 32],
            total_len: 1000,
            committed,
            expires_at: 1_800_000_000,
            slot: 42,
            wrapped_key: [9; WRAPPED_KEY_LEN],
        }
    }

    #[test]
    fn the_newest_valid_copy_wins_and_a_torn_copy_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("b"))
            .unwrap();
        file.set_len(HEADER_LEN).unwrap();
        assert!(read(&file).is_err(), "an empty header is no header");
        header(0, 0).write_to(&file).unwrap();
        assert_eq!(read(&file).unwrap(), header(0, 0));
        header(1, 500).write_to(&file).unwrap();
        assert_eq!(read(&file).unwrap(), header(1, 500));
        header(2, 900).write_to(&file).unwrap();
        assert_eq!(read(&file).unwrap(), header(2, 900));
        // Tear the newest copy (seq 2, at offset 0): the older one is used.
        file.write_all_at(&[0xff; 40], 60).unwrap();
        assert_eq!(read(&file).unwrap(), header(1, 500));
        file.write_all_at(&[0xff; 40], COPY_LEN as u64 + 60)
            .unwrap();
        assert!(matches!(read(&file), Err(BlobError::Corrupt(_))));
    }
}
