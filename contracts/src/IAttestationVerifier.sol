// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// Checks one kind of enclave attestation evidence against a fixed policy.
///
/// The policy (which enclaves, which product ids, debug or not, ...) lives in each verifier rather
/// than in `Enigma`, so a deployment picks its evidence kinds and policies by deploying verifiers,
/// and `Enigma` stays small and policy-free.
interface IAttestationVerifier {
    /// Returns the MRENCLAVE of the attested enclave and bytes 20..52 of its report data (the
    /// binding of its operator and key manager) if `evidence` proves that `signer` is the signing
    /// key of an allowed enclave of product `productId` (1 = worker, 2 = key manager); otherwise
    /// reverts with an error below that names the failed check.
    function verify(address signer, uint16 productId, bytes calldata evidence)
        external
        view
        returns (bytes32 mrEnclave, bytes32 binding);
}

/// The evidence bytes do not decode as this verifier's format.
error MalformedEvidence();
/// The enclave's ISVPRODID is not the product the caller registers (1 worker, 2 key manager).
error WrongProductId(uint16 expected, uint16 actual);
/// The enclave measurement is not in the allow-list for that product.
error EnclaveNotAllowed(uint16 productId, bytes32 mrEnclave);
/// The enclave runs in debug mode and the policy does not allow debug enclaves.
error DebugEnclaveNotAllowed();
