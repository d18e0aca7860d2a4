//! Sealing: encrypting an enclave's secrets so only the same enclave on the same machine can
//! read them back.
//!
//! In hardware the sealing key comes from the CPU (EGETKEY, bound to MRENCLAVE and to the
//! enclave's attributes, DEBUG among them). In simulation it is derived from a per-node secret
//! file, created with mode 0600, the enclave's measurement and its debug flag:
//! `key = HKDF-SHA256(nodeSecret, salt = "enigma-seal-v1", info = mrEnclave ‖ debug)`, so a debug
//! instance (whose host may read its memory) cannot load a production identity. A sealed blob is
//! the AES-GCM envelope of `enc("enigma-sealed-v1", mrEnclave, purpose, payload)`, so a blob is
//! bound to the enclave identity and to what it is for.

use std::{fs, io::Write, path::Path};

use enigma_crypto::SymmetricKey;
use enigma_types::enc::{Decoder, Encoder};
use zeroize::Zeroizing;

use crate::EnclaveError;

const MAGIC: &[u8] = b"enigma-sealed-v1";

/// A node's 32-byte sealing secret (simulation only; hardware derives it in the CPU).
pub struct NodeSecret([u8; 32]);

impl std::fmt::Debug for NodeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeSecret(<redacted>)")
    }
}

impl Drop for NodeSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl NodeSecret {
    /// Wraps given bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads the secret at `path`, creating it (random, mode 0600) if it does not exist.
    #[allow(
        clippy::disallowed_methods,
        clippy::disallowed_types,
        reason = "the simulation backend's secret file, read on the host: a hardware enclave \
                  derives its sealing key in the CPU (EGETKEY) and has no such file"
    )]
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match fs::read(path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{} is {} bytes, not a 32-byte sealing secret",
                            path.display(),
                            bytes.len()
                        ),
                    )
                })?;
                Ok(Self(array))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut secret = [0u8; 32];
                enigma_crypto::random_bytes(&mut secret).map_err(std::io::Error::other)?;
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)?;
                }
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path)?;
                file.write_all(&secret)?;
                file.sync_all()?;
                Ok(Self(secret))
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Seals and unseals for one enclave identity.
#[derive(Debug)]
pub struct Sealer {
    key: SymmetricKey,
    mr_enclave: [u8; 32],
}

impl Sealer {
    /// The sealer of the enclave with measurement `mr_enclave`, in debug mode or not, on the
    /// node with `secret`.
    #[must_use]
    pub fn new(secret: &NodeSecret, mr_enclave: [u8; 32], debug: bool) -> Self {
        let mut info = [0u8; 33];
        info[..32].copy_from_slice(&mr_enclave);
        info[32] = u8::from(debug);
        Self {
            key: SymmetricKey::derive_hkdf(secret.expose(), b"enigma-seal-v1", &info),
            mr_enclave,
        }
    }

    /// Seals `payload` for `purpose`.
    pub fn seal(&self, purpose: &str, payload: &[u8]) -> Result<Vec<u8>, EnclaveError> {
        let plain = Zeroizing::new(
            Encoder::new()
                .bytes(MAGIC)
                .bytes(&self.mr_enclave)
                .bytes(purpose.as_bytes())
                .bytes(payload)
                .into_bytes(),
        );
        self.key.encrypt(&plain).map_err(|e| EnclaveError::Sealing(e.to_string()))
    }

    /// Unseals a blob sealed for `purpose` by this enclave on this node.
    pub fn unseal(&self, purpose: &str, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnclaveError> {
        let plain = Zeroizing::new(self.key.decrypt(blob).map_err(|_| {
            EnclaveError::Sealing(
                "it was sealed by another enclave or on another node, or it is damaged".into(),
            )
        })?);
        let mut d = Decoder::new(&plain);
        let bad = |what: &str| EnclaveError::Sealing(format!("malformed sealed blob ({what})"));
        if d.bytes().map_err(|_| bad("header"))? != MAGIC {
            return Err(bad("header"));
        }
        if d.bytes().map_err(|_| bad("identity"))? != self.mr_enclave {
            return Err(EnclaveError::Sealing("it belongs to another enclave".into()));
        }
        let sealed_purpose = d.bytes().map_err(|_| bad("purpose"))?;
        if sealed_purpose != purpose.as_bytes() {
            return Err(EnclaveError::Sealing(format!(
                "it was sealed as {}, not as {purpose}",
                String::from_utf8_lossy(sealed_purpose)
            )));
        }
        let payload = d.bytes().map_err(|_| bad("payload"))?;
        Ok(Zeroizing::new(payload.to_vec()))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "the tests run on the host")]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_is_bound_to_identity_purpose_and_node() {
        let node = NodeSecret::from_bytes([1; 32]);
        let sealer = Sealer::new(&node, [2; 32], false);
        let blob = sealer.seal("identity", b"secret").unwrap();
        assert_eq!(sealer.unseal("identity", &blob).unwrap().as_slice(), b"secret");
        assert!(sealer.unseal("other", &blob).is_err());
        assert!(Sealer::new(&node, [3; 32], false).unseal("identity", &blob).is_err());
        assert!(
            Sealer::new(&node, [2; 32], true).unseal("identity", &blob).is_err(),
            "a debug instance cannot unseal a production enclave's data"
        );
        assert!(
            Sealer::new(&NodeSecret::from_bytes([9; 32]), [2; 32], false)
                .unseal("identity", &blob)
                .is_err()
        );
        assert!(sealer.unseal("identity", &blob[..10]).is_err());
    }

    #[test]
    fn the_node_secret_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/sealing.secret");
        let first = NodeSecret::load_or_create(&path).unwrap();
        let again = NodeSecret::load_or_create(&path).unwrap();
        assert_eq!(first.expose(), again.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        fs::write(&path, b"short").unwrap();
        assert!(NodeSecret::load_or_create(&path).is_err());
        assert_eq!(format!("{first:?}"), "NodeSecret(<redacted>)");
    }
}
