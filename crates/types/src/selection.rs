//! Stake-weighted worker selection, byte-identical to the Enigma contract's `getWorkerGroup`.
//!
//! For `nonce = 0, 1, …`: `r = uint256(H(abi.encode(seed, contract, nonce))) mod total`; walk the
//! workers accumulating stake and pick the first whose cumulative stake is strictly greater than
//! `r` (the last as a fallback); add it if not already chosen; stop at `min(group_size, workers
//! with stake)`, or after `32 · group_size` draws, whichever comes first.

use alloc::vec::Vec;

use crate::{ContractAddress, SignerAddress, enc::u256_from_u64, hash::Keccak};

/// The group of workers selected for `contract` under an epoch's `seed`, `workers` and their
/// `stakes` (the same order as on chain). Empty when no worker has stake.
#[must_use]
pub fn select_workers(
    seed: &[u8; 32],
    contract: &ContractAddress,
    workers: &[SignerAddress],
    stakes: &[u128],
    group_size: usize,
) -> Vec<SignerAddress> {
    let total: u128 =
        stakes.iter().take(workers.len()).fold(0u128, |sum, s| sum.saturating_add(*s));
    let wanted = group_size.min(workers.iter().zip(stakes).filter(|(_, s)| **s > 0).count());
    let mut group = Vec::with_capacity(wanted);
    if total == 0 {
        return group;
    }
    // The contract gives up after 32 draws per member, so a group of several workers where one
    // holds a tiny stake cannot loop (almost) forever; the Rust mirror must stop at the same point.
    let max_draws = 32 * wanted as u64;
    let mut nonce = 0u64;
    while group.len() < wanted && nonce < max_draws {
        let mut h = Keccak::new();
        h.update(seed);
        h.update(contract.as_bytes());
        h.update(&u256_from_u64(nonce));
        let r = mod_u256(&h.finalize(), total);
        let mut cumulative = 0u128;
        let mut chosen = workers.last().copied();
        for (worker, stake) in workers.iter().zip(stakes) {
            cumulative = cumulative.saturating_add(*stake);
            if cumulative > r {
                chosen = Some(*worker);
                break;
            }
        }
        if let Some(worker) = chosen
            && !group.contains(&worker)
        {
            group.push(worker);
        }
        nonce += 1;
    }
    group
}

/// The selected worker (group size 1).
#[must_use]
pub fn select_worker(
    seed: &[u8; 32],
    contract: &ContractAddress,
    workers: &[SignerAddress],
    stakes: &[u128],
) -> Option<SignerAddress> {
    select_workers(seed, contract, workers, stakes, 1).first().copied()
}

/// A 256-bit big-endian number modulo `m` (non-zero).
fn mod_u256(x: &[u8; 32], m: u128) -> u128 {
    // Horner over bytes: (acc * 256 + b) mod m never exceeds 2^136, kept in two halves.
    let mut acc: u128 = 0;
    for &b in x {
        acc = mul256_add_mod(acc, b, m);
    }
    acc
}

/// `(acc * 256 + b) mod m` for `acc < m`, without overflow.
fn mul256_add_mod(acc: u128, b: u8, m: u128) -> u128 {
    // acc * 256 may overflow u128 when m > 2^120; do it as eight doublings mod m.
    let mut v = acc;
    for _ in 0..8 {
        v = add_mod(v, v, m);
    }
    add_mod(v, u128::from(b) % m, m)
}

fn add_mod(a: u128, b: u128, m: u128) -> u128 {
    // a, b < m: a + b < 2m; compute without overflow.
    if a >= m - b { a - (m - b) } else { a + b }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use proptest::prelude::*;

    use super::*;

    fn reference_mod(x: &[u8; 32], m: u128) -> u128 {
        // Long division by bits, obviously correct and slow.
        let mut r: u128 = 0;
        for byte in x {
            for bit in (0..8).rev() {
                let carry = r >> 127;
                r = (r << 1) | u128::from((byte >> bit) & 1);
                if carry == 1 || r >= m {
                    r = r.wrapping_sub(m);
                }
            }
        }
        r
    }

    #[test]
    fn a_single_staked_worker_is_always_chosen() {
        let w = [SignerAddress([1; 20]), SignerAddress([2; 20])];
        for i in 0..20u8 {
            let c = ContractAddress([i; 32]);
            assert_eq!(select_worker(&[i; 32], &c, &w, &[0, 5]), Some(w[1]));
        }
        assert_eq!(select_worker(&[0; 32], &ContractAddress::ZERO, &w, &[0, 0]), None);
        assert_eq!(select_worker(&[0; 32], &ContractAddress::ZERO, &[], &[]), None);
    }

    #[test]
    fn groups_are_distinct_and_bounded() {
        let w: Vec<_> = (1..=4u8).map(|i| SignerAddress([i; 20])).collect();
        let g = select_workers(&[9; 32], &ContractAddress([3; 32]), &w, &[10, 20, 30, 40], 3);
        assert_eq!(g.len(), 3);
        assert!(g.iter().all(|x| w.contains(x)));
        let mut sorted = g;
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 3);
        assert_eq!(
            select_workers(&[9; 32], &ContractAddress([3; 32]), &w, &[0, 0, 30, 0], 3),
            vec![w[2]]
        );
    }

    #[test]
    fn selection_follows_stake() {
        let w = [SignerAddress([1; 20]), SignerAddress([2; 20])];
        let mut first = 0;
        for i in 0..1000u32 {
            let mut c = [0u8; 32];
            c[..4].copy_from_slice(&i.to_be_bytes());
            if select_worker(&[5; 32], &ContractAddress(c), &w, &[1, 3]) == Some(w[0]) {
                first += 1;
            }
        }
        assert!((180..320).contains(&first), "about a quarter: {first}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn modulo_matches_long_division(x in any::<[u8; 32]>(), m in 1u128..) {
            prop_assert_eq!(mod_u256(&x, m), reference_mod(&x, m));
        }
    }
}
