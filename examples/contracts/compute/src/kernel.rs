// The compute-heavy kernel, shared verbatim with the runtime's benchmark so the wasm and the
// native figures run the same code.

/// The number of primes below `n` (sieve of Eratosthenes), folded with a multiplicative hash of
/// the primes so the work cannot be skipped.
pub(crate) fn primes_below(n: u32) -> (u32, u64) {
    let n = n as usize;
    let mut composite = alloc::vec![false; n];
    let mut count = 0u32;
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for i in 2..n {
        if composite[i] {
            continue;
        }
        count += 1;
        hash = (hash ^ i as u64).wrapping_mul(0x0100_0000_01b3);
        let mut j = i * i;
        while j < n {
            composite[j] = true;
            j += i;
        }
    }
    (count, hash)
}
