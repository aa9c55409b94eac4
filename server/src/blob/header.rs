//! The header at the start of every blob file: the blob's metadata and its wrapped key.
//!
//! A blob file is `HEADER_LEN` bytes of header, then the blob's bytes encrypted at rest (so
//! blob byte `i` is at file offset `HEADER_LEN + i`). The header holds two copies of the
//! metadata, at offsets 0 and [`COPY_LEN`]; each update writes the copy the previous update did
//! not, with a higher sequence number, and each copy carries a SHA-256 checksum. A torn header
//! write therefore leaves the older copy intact, and [`read`] takes the valid copy with the
//! highest sequence number.
//!
//! What it does not do: decide when the header is written (the durability rule lives in
//! `blob.rs`), or encrypt anything: the metadata is not secret (the capabilities appear only as
//! SHA-256 hashes, and the data key only sealed under its vault slot).

use std::fs::File;
use std::os::unix::fs::FileExt;

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

/// Appends bytes to a buffer, front to back.
struct Writer(Vec<u8>);

impl Writer {
    fn put(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
}

/// Takes bytes from the front of a slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], BlobError> {
        let (head, rest) = self
            .0
            .split_at_checked(N)
            .ok_or(BlobError::Corrupt("short header"))?;
        self.0 = rest;
        head.try_into()
            .map_err(|_| BlobError::Corrupt("short header"))
    }

    fn u64(&mut self) -> Result<u64, BlobError> {
        Ok(u64::from_be_bytes(self.take()?))
    }
}

impl Header {
    /// One metadata copy, checksum last.
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(ENCODED_LEN));
        w.put(MAGIC)
            .put(&self.seq.to_be_bytes())
            .put(self.id.as_bytes())
            .put(&self.write_hash)
            .put(&self.read_hash)
            .put(&self.total_len.to_be_bytes())
            .put(&self.committed.to_be_bytes())
            .put(&self.expires_at.to_be_bytes())
            .put(&self.slot.to_be_bytes())
            .put(&self.wrapped_key);
        let sum = Sha256::digest(&w.0);
        w.put(&sum);
        w.0
    }

    /// Decodes one copy, checking its magic and checksum.
    fn decode(bytes: &[u8]) -> Result<Header, BlobError> {
        let body = bytes
            .get(..ENCODED_LEN - 32)
            .ok_or(BlobError::Corrupt("short header"))?;
        let sum = &bytes[ENCODED_LEN - 32..ENCODED_LEN];
        if Sha256::digest(body).as_slice() != sum {
            return Err(BlobError::Corrupt("header checksum mismatch"));
        }
        let mut r = Reader(body);
        if &r.take::<8>()? != MAGIC {
            return Err(BlobError::Corrupt("not a blob file"));
        }
        Ok(Header {
            seq: r.u64()?,
            id: BlobId(r.take()?),
            write_hash: r.take()?,
            read_hash: r.take()?,
            total_len: r.u64()?,
            committed: r.u64()?,
            expires_at: r.u64()?,
            slot: r.u64()?,
            wrapped_key: r.take()?,
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
