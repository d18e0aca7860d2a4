// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {
    IAttestationVerifier,
    MalformedEvidence,
    WrongProductId,
    EnclaveNotAllowed,
    DebugEnclaveNotAllowed
} from "./IAttestationVerifier.sol";
import {Signatures} from "./Signatures.sol";

/// Verifies simulation-mode attestation: a statement signed by a devnet attestation authority
/// that stands in for Intel (PROTOCOL.md section 5). Hardware deployments do not deploy it.
///
/// Evidence is `abi.encode(bytes32 mrEnclave, uint16 isvProdId, bool debug, bytes signature)`,
/// where `signature` (65 bytes, `r ‖ s ‖ v`) is the authority's over
/// `keccak256(enc("enigma-sim-attestation-v1", signer(20), mrEnclave(32), u16be(isvProdId),
/// debug(1 byte, 0x00 or 0x01)))`.
contract SimulationVerifier is IAttestationVerifier {
    /// The key whose signature stands for a successful attestation.
    address public immutable authority;
    /// Whether enclaves that report debug mode may register.
    bool public immutable debugAllowed;
    /// productId => MRENCLAVE => allowed.
    mapping(uint16 => mapping(bytes32 => bool)) public isEnclaveAllowed;

    /// The authority's signature does not recover to `authority`.
    error InvalidAuthoritySignature(address recovered);
    error ZeroAuthority();

    constructor(
        address authority_,
        bool debugAllowed_,
        bytes32[] memory workerEnclaves,
        bytes32[] memory keyManagerEnclaves
    ) {
        if (authority_ == address(0)) revert ZeroAuthority();
        authority = authority_;
        debugAllowed = debugAllowed_;
        for (uint256 i; i < workerEnclaves.length; ++i) {
            isEnclaveAllowed[1][workerEnclaves[i]] = true;
        }
        for (uint256 i; i < keyManagerEnclaves.length; ++i) {
            isEnclaveAllowed[2][keyManagerEnclaves[i]] = true;
        }
    }

    /// @inheritdoc IAttestationVerifier
    function verify(address signer, uint16 productId, bytes calldata evidence)
        external
        view
        returns (bytes32 mrEnclave)
    {
        // The ABI encoding of (bytes32, uint16, bool, bytes65) is exactly 256 bytes with the
        // signature's offset at 0x80; checking the layout here turns a malformed blob into a
        // named error instead of an empty revert from abi.decode.
        if (
            evidence.length != 256 || uint256(bytes32(evidence[32:64])) > type(uint16).max
                || uint256(bytes32(evidence[64:96])) > 1
                || uint256(bytes32(evidence[96:128])) != 0x80
                || uint256(bytes32(evidence[128:160])) != 65
        ) revert MalformedEvidence();
        mrEnclave = bytes32(evidence[0:32]);
        uint16 isvProdId = uint16(uint256(bytes32(evidence[32:64])));
        bool debug = uint256(bytes32(evidence[64:96])) == 1;

        bytes32 digest = keccak256(
            abi.encodePacked(
                uint64(25), "enigma-sim-attestation-v1",
                uint64(20), signer,
                uint64(32), mrEnclave,
                uint64(2), isvProdId,
                uint64(1), debug
            )
        );
        address recovered = Signatures.recover(digest, evidence[160:225]);
        if (recovered == address(0) || recovered != authority) {
            revert InvalidAuthoritySignature(recovered);
        }
        if (isvProdId != productId) revert WrongProductId(productId, isvProdId);
        if (!isEnclaveAllowed[isvProdId][mrEnclave]) revert EnclaveNotAllowed(isvProdId, mrEnclave);
        if (debug && !debugAllowed) revert DebugEnclaveNotAllowed();
    }
}
