//! The chunked AEAD on its own: round trips at the edges of the chunking, and every way of
//! tampering with the ciphertext that STREAM must catch.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::error::FileError;
use super::layout::{Layout, CIPHER_CHUNK, PLAIN_CHUNK};
use super::stream::{ChunkCipher, FileKey, NoncePrefix};

/// A small chunk, so that multi-chunk files stay small in the tests.
const CHUNK: u32 = 64;

fn setup(seed: u64, len: u64, chunk: u32) -> (ChunkCipher, Vec<u8>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let key = FileKey::random(&mut rng);
    let prefix = NoncePrefix::random(&mut rng);
    let layout = Layout::new(len, chunk).unwrap();
    let plain: Vec<u8> = (0..len).map(|i| (i * 7 + seed) as u8).collect();
    (ChunkCipher::new(&key, prefix, layout), plain)
}

fn seal_all(c: &ChunkCipher, plain: &[u8]) -> Vec<u8> {
    let layout = *c.layout();
    let mut out = Vec::new();
    for i in 0..layout.chunks() {
        let start = layout.plain_offset(i) as usize;
        let mut buf = plain[start..start + layout.plain_len_of(i)].to_vec();
        c.seal(i, &mut buf).unwrap();
        assert_eq!(buf.len(), layout.cipher_len_of(i));
        out.extend_from_slice(&buf);
    }
    assert_eq!(out.len() as u64, layout.cipher_len());
    out
}

#[test]
fn round_trips_at_the_edges_of_the_chunking() {
    for len in [
        0,
        1,
        CHUNK as u64 - 1,
        CHUNK as u64,
        CHUNK as u64 + 1,
        3 * CHUNK as u64,
    ] {
        let (c, plain) = setup(len, len, CHUNK);
        let sealed = seal_all(&c, &plain);
        assert_eq!(c.open_stream(&sealed).unwrap(), plain, "len {len}");
        // And chunk by chunk, with the layout the file message carries.
        let layout = *c.layout();
        let mut out = Vec::new();
        for i in 0..layout.chunks() {
            let start = layout.cipher_offset(i) as usize;
            let mut buf = sealed[start..start + layout.cipher_len_of(i)].to_vec();
            c.open(i, &mut buf).unwrap();
            out.extend_from_slice(&buf);
        }
        assert_eq!(out, plain);
    }
}

#[test]
fn a_full_chunk_is_one_relay_write() {
    let layout = Layout::standard(10 * PLAIN_CHUNK as u64).unwrap();
    assert_eq!(layout.chunks(), 10);
    assert_eq!(layout.cipher_chunk(), CIPHER_CHUNK as u64);
    assert_eq!(layout.cipher_len(), 10 * CIPHER_CHUNK as u64);
    assert_eq!(Layout::standard(0).unwrap().cipher_len(), 16);
    assert_eq!(layout.chunk_at(0), Some(0));
    assert_eq!(layout.chunk_at(CIPHER_CHUNK as u64), Some(1));
    assert_eq!(layout.chunk_at(layout.cipher_len()), Some(10));
    assert_eq!(layout.chunk_at(5), None);
}

#[test]
fn invalid_chunk_sizes_are_refused() {
    assert_eq!(
        Layout::new(10, 0),
        Err(FileError::InvalidChunkSize { chunk: 0 })
    );
    let big = PLAIN_CHUNK as u32 + 1;
    assert_eq!(
        Layout::new(10, big),
        Err(FileError::InvalidChunkSize { chunk: big })
    );
    assert!(matches!(
        Layout::new(u64::MAX, 1),
        Err(FileError::TooLarge { .. })
    ));
}

fn tampered(c: &ChunkCipher, bytes: &[u8]) {
    assert_eq!(c.open_stream(bytes), Err(FileError::Tampered));
}

#[test]
fn a_flipped_bit_anywhere_is_caught() {
    let (c, plain) = setup(1, 3 * CHUNK as u64 + 5, CHUNK);
    let sealed = seal_all(&c, &plain);
    for pos in [0, 10, CHUNK as usize + 20, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[pos] ^= 0x01;
        tampered(&c, &bad);
    }
}

#[test]
fn truncation_dropping_the_last_chunk_and_appending_are_caught() {
    let (c, plain) = setup(2, 3 * CHUNK as u64 + 5, CHUNK);
    let sealed = seal_all(&c, &plain);
    let step = CHUNK as usize + 16;
    // Cut inside a chunk, at a chunk boundary, and the whole last chunk dropped.
    tampered(&c, &sealed[..sealed.len() - 3]);
    tampered(&c, &sealed[..2 * step]);
    tampered(&c, &sealed[..3 * step]);
    // A chunk appended after the last (a copy of the first), and garbage appended.
    let mut longer = sealed.clone();
    longer.extend_from_slice(&sealed[..step]);
    tampered(&c, &longer);
    let mut garbage = sealed.clone();
    garbage.extend_from_slice(&[0u8; 40]);
    tampered(&c, &garbage);
}

#[test]
fn reordered_and_swapped_chunks_are_caught() {
    let (c, plain) = setup(3, 4 * CHUNK as u64, CHUNK);
    let sealed = seal_all(&c, &plain);
    let step = CHUNK as usize + 16;
    let chunk = |i: usize| &sealed[i * step..(i + 1) * step];
    // Chunks 0 and 1 swapped.
    let swapped = [chunk(1), chunk(0), chunk(2), chunk(3)].concat();
    tampered(&c, &swapped);
    // Chunk 1 repeated in place of chunk 2.
    let repeated = [chunk(0), chunk(1), chunk(1), chunk(3)].concat();
    tampered(&c, &repeated);
    // The last chunk (sealed as last) moved to the middle.
    let last_moved = [chunk(0), chunk(3), chunk(2), chunk(1)].concat();
    tampered(&c, &last_moved);
}

#[test]
fn a_chunk_from_another_file_is_caught_even_at_the_same_position() {
    let len = 3 * CHUNK as u64;
    let (a, plain_a) = setup(4, len, CHUNK);
    let (b, plain_b) = setup(5, len, CHUNK);
    let sealed_a = seal_all(&a, &plain_a);
    let sealed_b = seal_all(&b, &plain_b);
    let step = CHUNK as usize + 16;
    let mut mixed = sealed_a.clone();
    mixed[step..2 * step].copy_from_slice(&sealed_b[step..2 * step]);
    tampered(&a, &mixed);
}

#[test]
fn the_wrong_key_opens_nothing() {
    let (a, plain) = setup(6, 100, CHUNK);
    let sealed = seal_all(&a, &plain);
    let (other, _) = setup(7, 100, CHUNK);
    tampered(&other, &sealed);
    let mut first = sealed[..CHUNK as usize + 16].to_vec();
    assert_eq!(other.open(0, &mut first), Err(FileError::Tampered));
}

#[test]
fn a_chunk_that_does_not_match_the_layout_is_not_sealed() {
    let (c, _) = setup(8, 100, CHUNK);
    let mut short = vec![0u8; 10];
    assert_eq!(c.seal(0, &mut short), Err(FileError::ChunkMismatch));
    let mut beyond = vec![0u8; 0];
    assert_eq!(c.seal(5, &mut beyond), Err(FileError::ChunkMismatch));
}

#[test]
fn padding_is_keystream_no_chunk_uses_and_is_checked() {
    use super::padding::Padding;
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let key = FileKey::random(&mut rng);
    let prefix = NoncePrefix::random(&mut rng);
    let layout = Layout::new(3 * CHUNK as u64 + 5, CHUNK)
        .unwrap()
        .with_padding(Padding::Padme);
    assert!(layout.pieces() > layout.chunks());
    let c = ChunkCipher::new(&key, prefix, layout);
    let first = layout.chunks();
    let pad = c.padding_piece(first).unwrap();
    assert_eq!(pad.len() as u64, layout.piece_len(first));
    // The same bytes every time (a resumed upload hashes them again), and not zeros.
    assert_eq!(c.padding_piece(first).unwrap(), pad);
    assert!(pad.iter().any(|&b| b != 0));
    c.check_padding(first, &pad).unwrap();
    // Another key makes other padding; altered, cut or extended padding is refused.
    let other = ChunkCipher::new(&FileKey::random(&mut rng), prefix, layout);
    assert_ne!(other.padding_piece(first).unwrap(), pad);
    let mut flipped = pad.clone();
    flipped[0] ^= 1;
    for bad in [
        flipped,
        pad[..pad.len() - 1].to_vec(),
        [&pad[..], &[0]].concat(),
    ] {
        assert_eq!(c.check_padding(first, &bad), Err(FileError::Tampered));
    }
    // A chunk is not padding, and nothing lies past the blob.
    assert!(c.padding_piece(0).is_err());
    assert!(c.padding_piece(layout.pieces()).is_err());
    // The padding is not the keystream of any chunk: chunk 0 sealed over zeros differs.
    let mut zeros = vec![0u8; layout.plain_len_of(0)];
    c.seal(0, &mut zeros).unwrap();
    assert_ne!(
        &zeros[..pad.len().min(zeros.len())],
        &pad[..pad.len().min(zeros.len())]
    );
}
