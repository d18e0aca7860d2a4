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

/// Verifies simulation-mode attestation: a report signed by a devnet attestation authority that
/// stands in for Intel's quoting enclave and attestation service (docs/protocol.md section 5).
/// Hardware deployments do not deploy it.
///
/// Evidence is `abi.encode(bytes32 mrEnclave, uint16 isvProdId, bool debug, bytes32 reportData0,
/// bytes32 reportData1, bytes signature)`, where `reportData0 ‖ reportData1` are the 64 bytes the
/// enclave put in its report (its signer address first, then the binding of its operator and key
/// manager and its time) and `signature` (65 bytes, `r ‖ s ‖ v`) is the authority's over
/// `keccak256(enc("enigma-sim-attestation-v2", mrEnclave(32), u16be(isvProdId), debug(1 byte,
/// 0x00 or 0x01), reportData(64)))`.
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
    /// The report data does not start with the signer address being registered.
    error ReportDataMismatch(address expected, address actual);

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
        returns (bytes32 mrEnclave, bytes32 binding)
    {
        // The ABI encoding of (bytes32, uint16, bool, bytes32, bytes32, bytes65) is exactly 320
        // bytes with the signature's offset at 0xc0; checking the layout here turns a malformed
        // blob into a named error instead of an empty revert from abi.decode.
        if (
            evidence.length != 320 || uint256(bytes32(evidence[32:64])) > type(uint16).max
                || uint256(bytes32(evidence[64:96])) > 1
                || uint256(bytes32(evidence[160:192])) != 0xc0
                || uint256(bytes32(evidence[192:224])) != 65
        ) revert MalformedEvidence();
        mrEnclave = bytes32(evidence[0:32]);
        uint16 isvProdId = uint16(uint256(bytes32(evidence[32:64])));
        bool debug = uint256(bytes32(evidence[64:96])) == 1;
        bytes32 reportData0 = bytes32(evidence[96:128]);
        bytes32 reportData1 = bytes32(evidence[128:160]);

        bytes32 digest = keccak256(
            abi.encodePacked(
                uint64(25), "enigma-sim-attestation-v2",
                uint64(32), mrEnclave,
                uint64(2), isvProdId,
                uint64(1), debug,
                uint64(64), reportData0, reportData1
            )
        );
        address recovered = Signatures.recover(digest, evidence[224:289]);
        if (recovered == address(0) || recovered != authority) {
            revert InvalidAuthoritySignature(recovered);
        }
        if (isvProdId != productId) revert WrongProductId(productId, isvProdId);
        if (!isEnclaveAllowed[isvProdId][mrEnclave]) revert EnclaveNotAllowed(isvProdId, mrEnclave);
        if (debug && !debugAllowed) revert DebugEnclaveNotAllowed();
        address reportSigner = address(bytes20(reportData0));
        if (reportSigner != signer) revert ReportDataMismatch(signer, reportSigner);
        binding = bytes32(evidence[116:148]);
    }
}
