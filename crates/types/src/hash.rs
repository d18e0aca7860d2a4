//! Keccak-256, the hash of every protocol digest (Ethereum's Keccak, not NIST SHA3-256).

use sha3::Digest as _;

/// Keccak-256 of `data`.
#[must_use]
pub fn keccak256(data: impl AsRef<[u8]>) -> [u8; 32] {
    sha3::Keccak256::digest(data.as_ref()).into()
}

/// An incremental Keccak-256: feed it with [`update`](Self::update), then [`finalize`](Self::finalize).
#[derive(Clone, Default)]
pub struct Keccak(sha3::Keccak256);

impl Keccak {
    /// A hasher with nothing fed yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything fed.
    #[must_use]
    pub fn finalize(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl core::fmt::Debug for Keccak {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Keccak")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keccak_of_empty_is_ethereums() {
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn incremental_equals_one_shot() {
        let mut k = Keccak::new();
        k.update(b"Enigma");
        k.update(b"MPC");
        assert_eq!(k.finalize(), keccak256(b"EnigmaMPC"));
    }
}
