//! The cost of each primitive on the hot path of a task: key agreement, signing, recovery,
//! the AES-GCM envelope, Keccak and the inputs hash.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use enigma_crypto::{KeyPair, SymmetricKey, keccak256};
use enigma_types::{ContractAddress, inputs_hash_compute};

fn primitives(c: &mut Criterion) {
    let user = KeyPair::from_bytes(&[0x11; 32]).unwrap();
    let enclave = KeyPair::from_bytes(&[0x22; 32]).unwrap();
    let digest = keccak256(b"receipt");
    let signature = enclave.sign_digest(&digest);

    c.bench_function("ecdh_key_derivation", |b| {
        b.iter(|| user.derive_key(black_box(enclave.public_key())))
    });
    c.bench_function("sign_digest", |b| b.iter(|| enclave.sign_digest(black_box(&digest))));
    c.bench_function("recover_address", |b| {
        b.iter(|| black_box(&signature).recover_address(&digest).unwrap())
    });

    let key = SymmetricKey::from_bytes([0x33; 32]);
    for size in [1024usize, 64 * 1024] {
        let message = vec![0x5a; size];
        let blob = key.encrypt(&message).unwrap();
        let mut group = c.benchmark_group(format!("aes_gcm_{}k", size / 1024));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function("encrypt", |b| b.iter(|| key.encrypt(black_box(&message)).unwrap()));
        group.bench_function("decrypt", |b| b.iter(|| key.decrypt(black_box(&blob)).unwrap()));
        group.finish();
    }

    let kib = vec![0xa5u8; 1024];
    c.bench_function("keccak256_1k", |b| b.iter(|| keccak256(black_box(&kib))));

    let encrypted_fn = key.encrypt(b"add_millionaire(address,uint256)").unwrap();
    let encrypted_args = key.encrypt(&[0u8; 64]).unwrap();
    let contract = ContractAddress([7; 32]);
    let user_key = *user.public_key().as_bytes();
    c.bench_function("inputs_hash", |b| {
        b.iter(|| {
            inputs_hash_compute(black_box(&encrypted_fn), &encrypted_args, &contract, &user_key)
        })
    });
}

criterion_group!(benches, primitives);
criterion_main!(benches);
