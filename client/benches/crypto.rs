//! Criterion benchmarks of the crypto core: one ratchet chain, a round trip with DH ratchet
//! steps, each side of the handshake, and invitation and safety-number work.
//!
//! Run with `cargo bench -p hush-client --bench crypto`; results are in `docs/performance.md`.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use hush_client::crypto::{accept, respond, safety_number, Identity, Invitation, Session};
use hush_protocol::{RelayAddress, SendCapability, SenderId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_700_000_000;

fn relay() -> RelayAddress {
    match format!("hush://relay.example:4433#{}", "ab".repeat(32)).parse() {
        Ok(r) => r,
        Err(e) => panic!("bench relay address: {e}"),
    }
}

fn invitation(
    inviter: &Identity,
    rng: &mut ChaCha20Rng,
) -> (Invitation, hush_client::crypto::InvitationSecrets) {
    Invitation::create(
        inviter,
        relay(),
        SenderId::from_bytes([1; 16]),
        SendCapability::from_bytes([2; 32]),
        u64::MAX,
        rng,
    )
}

fn pair(rng: &mut ChaCha20Rng) -> (Session, Session) {
    let inviter = Identity::generate(rng);
    let joiner = Identity::generate(rng);
    let (inv, secrets) = invitation(&inviter, rng);
    let (a, first) = accept(&joiner, &inv, b"queue", rng).unwrap();
    let (b, _, _) = respond(&inviter, &secrets, &first, NOW).unwrap();
    (a, b)
}

fn ratchet(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (mut a, mut b) = pair(&mut rng);
    let msg = [0x42u8; 256];
    c.bench_function("ratchet/encrypt+decrypt 256 B, one chain", |bench| {
        bench.iter(|| {
            let wire = a.encrypt(black_box(&msg), &mut rng).unwrap();
            black_box(b.decrypt(&wire, NOW).unwrap())
        })
    });

    let (mut a, mut b) = pair(&mut rng);
    c.bench_function("ratchet/round trip with DH ratchet steps, 256 B", |bench| {
        bench.iter(|| {
            let wire = a.encrypt(black_box(&msg), &mut rng).unwrap();
            black_box(b.decrypt(&wire, NOW).unwrap());
            let wire = b.encrypt(black_box(&msg), &mut rng).unwrap();
            black_box(a.decrypt(&wire, NOW).unwrap())
        })
    });

    let (a, _) = pair(&mut rng);
    c.bench_function("session/to_bytes+from_bytes", |bench| {
        bench.iter(|| black_box(Session::from_bytes(&a.to_bytes()).unwrap()))
    });
}

fn handshake(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let inviter = Identity::generate(&mut rng);
    let joiner = Identity::generate(&mut rng);
    let (inv, secrets) = invitation(&inviter, &mut rng);
    c.bench_function("handshake/accept (joiner)", |bench| {
        bench.iter(|| black_box(accept(&joiner, &inv, b"queue", &mut rng).unwrap()))
    });
    let (_, first) = accept(&joiner, &inv, b"queue", &mut rng).unwrap();
    c.bench_function("handshake/respond (inviter)", |bench| {
        bench.iter(|| black_box(respond(&inviter, &secrets, black_box(&first), NOW).unwrap()))
    });
    c.bench_function("invitation/create", |bench| {
        bench.iter_batched(
            || SendCapability::from_bytes([2; 32]),
            |cap| {
                black_box(Invitation::create(
                    &inviter,
                    relay(),
                    SenderId::from_bytes([1; 16]),
                    cap,
                    u64::MAX,
                    &mut rng,
                ))
            },
            BatchSize::SmallInput,
        )
    });
    let token = inv.encode();
    c.bench_function("invitation/parse+verify", |bench| {
        bench.iter(|| black_box(Invitation::parse(black_box(&token)).unwrap()))
    });
    let (a, b) = (inviter.public(), joiner.public());
    c.bench_function("safety_number", |bench| {
        bench.iter(|| black_box(safety_number(&a, &b)))
    });
}

criterion_group!(benches, ratchet, handshake);
criterion_main!(benches);
