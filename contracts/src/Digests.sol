// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// The signed digests of PROTOCOL.md section 4: `keccak256(enc(x1, ..., xk))`, where `enc` writes
/// each byte string as `u64be(length) ‖ bytes` and each list as `u64be(count) ‖ enc(e0) ‖ ...`.
/// Hashes are 32-byte strings, gas values 8-byte big-endian strings, addresses 20-byte strings,
/// seeds/nonces/stakes 32-byte big-endian strings, a status one byte. The Rust side
/// (`enigma_types::enc::Encoder`) must produce the same bytes; docs/api.md spells them out.
library Digests {
    /// Deploy success: inputsHash, codeHash, initDeltaHash, u64(gasLimit), u64(gasUsed),
    /// ethPayload, ethAddress(20), 0x01.
    function deploySuccess(
        bytes32 inputsHash,
        bytes32 codeHash,
        bytes32 initDeltaHash,
        uint64 gasLimit,
        uint64 gasUsed,
        bytes calldata ethPayload,
        address ethAddress
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                uint64(32), inputsHash,
                uint64(32), codeHash,
                uint64(32), initDeltaHash,
                uint64(8), gasLimit,
                uint64(8), gasUsed,
                uint64(ethPayload.length), ethPayload,
                uint64(20), ethAddress,
                uint64(1), uint8(1)
            )
        );
    }

    /// Compute success: codeHash, inputsHash, prevDeltaHash, deltaHash, outputHash,
    /// u64(gasLimit), u64(gasUsed), ethPayload, ethAddress(20), 0x01.
    function computeSuccess(
        bytes32 codeHash,
        bytes32 inputsHash,
        bytes32 prevDeltaHash,
        bytes32 deltaHash,
        bytes32 outputHash,
        uint64 gasLimit,
        uint64 gasUsed,
        bytes calldata ethPayload,
        address ethAddress
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                uint64(32), codeHash,
                uint64(32), inputsHash,
                uint64(32), prevDeltaHash,
                uint64(32), deltaHash,
                uint64(32), outputHash,
                uint64(8), gasLimit,
                uint64(8), gasUsed,
                uint64(ethPayload.length), ethPayload,
                uint64(20), ethAddress,
                uint64(1), uint8(1)
            )
        );
    }

    /// Failure (deploy or compute): inputsHash, codeHash (zero for a deploy), outputHash,
    /// u64(gasLimit), u64(gasUsed), 0x00.
    function failure(
        bytes32 inputsHash,
        bytes32 codeHash,
        bytes32 outputHash,
        uint64 gasLimit,
        uint64 gasUsed
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                uint64(32), inputsHash,
                uint64(32), codeHash,
                uint64(32), outputHash,
                uint64(8), gasLimit,
                uint64(8), gasUsed,
                uint64(1), uint8(0)
            )
        );
    }

    /// Epoch: u256(seed), u256(nonce), u256(snapshotBlock), u256(groupSize), list(signer
    /// addresses, 20 bytes each), list(u256 stakes): every field that worker selection and the
    /// key manager's key release read.
    function epoch(
        uint256 seed,
        uint256 nonce,
        uint256 snapshotBlock,
        uint256 groupSize,
        address[] memory signers,
        uint256[] memory stakes
    ) internal pure returns (bytes32 digest) {
        uint256 n = signers.length;
        // 32 bytes of slack past the message so whole-word stores never leave the allocation.
        bytes memory buf = new bytes(176 + 68 * n + 32);
        assembly ("memory-safe") {
            mstore(buf, sub(mload(buf), 32))
            let p := add(buf, 0x20)
            mstore(p, shl(192, 32))
            mstore(add(p, 8), seed)
            mstore(add(p, 40), shl(192, 32))
            mstore(add(p, 48), nonce)
            mstore(add(p, 80), shl(192, 32))
            mstore(add(p, 88), snapshotBlock)
            mstore(add(p, 120), shl(192, 32))
            mstore(add(p, 128), groupSize)
            p := add(p, 160)
            mstore(p, shl(192, n))
            p := add(p, 8)
            // Writes run left to right, so each word's spill past its field is overwritten by
            // the next field (or lands in the slack).
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                mstore(p, shl(192, 20))
                mstore(add(p, 8), shl(96, mload(add(signers, mul(add(i, 1), 0x20)))))
                p := add(p, 28)
            }
            mstore(p, shl(192, n))
            p := add(p, 8)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                mstore(p, shl(192, 32))
                mstore(add(p, 8), mload(add(stakes, mul(add(i, 1), 0x20))))
                p := add(p, 40)
            }
            digest := keccak256(add(buf, 0x20), mload(buf))
        }
    }

    // -------------------------------------------------------------------------------------------
    // Receipt batch: codeHash, prevDeltaHash, list(inputsHash), list(deltaHash), list(outputHash),
    // list(u64 gasLimit), list(u64 gasUsed), list(status byte).
    //
    // The message is laid out once for n entries and filled entry by entry, so the receipt loop
    // reads each task record once. Byte offsets for n entries:
    //   0 codeHash (8+32), 40 prevDeltaHash (8+32),
    //   I = 80            inputs:  count(8), entry i at I + 8 + 40 i
    //   D = I + 8 + 40 n  deltas:  same shape
    //   O = D + 8 + 40 n  outputs: same shape
    //   L = O + 8 + 40 n  gasLimit: count(8), entry i at L + 8 + 16 i
    //   U = L + 8 + 16 n  gasUsed:  same shape
    //   S = U + 8 + 16 n  status:   count(8), entry i at S + 8 + 9 i
    //   total = S + 8 + 9 n = 128 + 161 n
    // Entries are written with masked stores that touch only their own bytes, so the order in
    // which entries are filled does not matter.

    /// A zeroed batch message for `n` entries with its fixed fields and list counts written.
    function newBatch(uint256 n, bytes32 codeHash, bytes32 prevDeltaHash)
        internal
        pure
        returns (bytes memory buf)
    {
        // 32 bytes of slack past the message so whole-word stores never leave the allocation.
        buf = new bytes(128 + 161 * n + 32);
        assembly ("memory-safe") {
            mstore(buf, sub(mload(buf), 32))
            let p := add(buf, 0x20)
            mstore(p, shl(192, 32))
            mstore(add(p, 8), codeHash)
            mstore(add(p, 40), shl(192, 32))
            mstore(add(p, 48), prevDeltaHash)
            let count := shl(192, n)
            let mask := shr(64, not(0))
            let at := add(p, 80)
            for { let k := 0 } lt(k, 6) { k := add(k, 1) } {
                mstore(at, or(and(mload(at), mask), count))
                let width := 40
                if gt(k, 2) { width := 16 }
                at := add(at, add(8, mul(width, n)))
            }
        }
    }

    /// Writes entry `i` of an `n`-entry batch message.
    function setBatchEntry(
        bytes memory buf,
        uint256 n,
        uint256 i,
        bytes32 inputsHash,
        bytes32 deltaHash,
        bytes32 outputHash,
        uint64 gasLimit,
        uint64 gasUsed,
        uint8 status
    ) internal pure {
        assembly ("memory-safe") {
            function put(ptr, value, width) {
                mstore(ptr, or(and(mload(ptr), shr(mul(width, 8), not(0))), value))
            }
            let prefix32 := shl(192, 32)
            let listHashes := add(8, mul(40, n))
            let listGas := add(8, mul(16, n))
            let at := add(add(buf, 0x20), add(88, mul(40, i))) // inputs entry i
            put(at, prefix32, 8)
            mstore(add(at, 8), inputsHash)
            at := add(at, listHashes)
            put(at, prefix32, 8)
            mstore(add(at, 8), deltaHash)
            at := add(at, listHashes)
            put(at, prefix32, 8)
            mstore(add(at, 8), outputHash)
            // From the output entry to the gasLimit entry: the rest of the output list
            // (n - i entries, this one included), the gasLimit count, i gas entries before.
            at := add(add(at, mul(40, sub(n, i))), add(8, mul(16, i)))
            put(at, or(shl(192, 8), shl(128, gasLimit)), 16)
            at := add(at, listGas)
            put(at, or(shl(192, 8), shl(128, gasUsed)), 16)
            at := add(add(at, mul(16, sub(n, i))), add(8, mul(9, i)))
            put(at, or(shl(192, 1), shl(184, status)), 9)
        }
    }

    function batchDigest(bytes memory buf) internal pure returns (bytes32) {
        return keccak256(buf);
    }
}
