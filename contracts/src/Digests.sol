// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// The signed digests of PROTOCOL.md section 4: `keccak256(enc(x1, ..., xk))`, where `enc` writes
/// each byte string as `u64be(length) ‖ bytes` and each list as `u64be(count) ‖ enc(e0) ‖ ...`.
/// Hashes are 32-byte strings, gas values 8-byte big-endian strings, addresses 20-byte strings,
/// seeds/nonces/stakes 32-byte big-endian strings, a status one byte. The Rust side
/// (`enigma_types::enc::Encoder`) must produce the same bytes; docs/api.md spells them out.
library Digests {
    /// Deploy success: taskId (= the new contract's address), inputsHash, codeHash,
    /// initDeltaHash, u64(gasLimit), u64(gasUsed), ethPayload, ethAddress(20), 0x01.
    function deploySuccess(
        bytes32 taskId,
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
                uint64(32), taskId,
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

    /// Compute success: taskId, scAddr, codeHash, inputsHash, u64(deltaCount), prevDeltaHash,
    /// deltaHash, outputHash, u64(gasLimit), u64(gasUsed), ethPayload, ethAddress(20), 0x01.
    /// `deltaCount` is the number of deltas before the task (prevDeltaHash is the last of them).
    function computeSuccess(
        bytes32 taskId,
        bytes32 scAddr,
        bytes32 codeHash,
        bytes32 inputsHash,
        uint64 deltaCount,
        bytes32 prevDeltaHash,
        bytes32 deltaHash,
        bytes32 outputHash,
        uint64 gasLimit,
        uint64 gasUsed,
        bytes calldata ethPayload,
        address ethAddress
    ) internal pure returns (bytes32) {
        bytes memory head = abi.encodePacked(
            uint64(32), taskId,
            uint64(32), scAddr,
            uint64(32), codeHash,
            uint64(32), inputsHash,
            uint64(8), deltaCount,
            uint64(32), prevDeltaHash,
            uint64(32), deltaHash,
            uint64(32), outputHash
        );
        return keccak256(
            abi.encodePacked(
                head,
                uint64(8), gasLimit,
                uint64(8), gasUsed,
                uint64(ethPayload.length), ethPayload,
                uint64(20), ethAddress,
                uint64(1), uint8(1)
            )
        );
    }

    /// Failure (deploy or compute): taskId, scAddr (the task id for a deploy), inputsHash,
    /// codeHash (zero for a deploy), outputHash, u64(gasLimit), u64(gasUsed), 0x00.
    function failure(
        bytes32 taskId,
        bytes32 scAddr,
        bytes32 inputsHash,
        bytes32 codeHash,
        bytes32 outputHash,
        uint64 gasLimit,
        uint64 gasUsed
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                uint64(32), taskId,
                uint64(32), scAddr,
                uint64(32), inputsHash,
                uint64(32), codeHash,
                uint64(32), outputHash,
                uint64(8), gasLimit,
                uint64(8), gasUsed,
                uint64(1), uint8(0)
            )
        );
    }

    /// `keccak256(enc("enigma-report-data-v1", operator(20), principal(20)))`: the binding an
    /// enclave puts in bytes 20..52 of its report data.
    function reportBinding(address operator, address principal) internal pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                uint64(21), "enigma-report-data-v1",
                uint64(20), operator,
                uint64(20), principal
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
    // Receipt batch: scAddr, codeHash, u64 deltaCount, prevDeltaHash, list(taskId),
    // list(inputsHash), list(deltaHash), list(outputHash), list(u64 gasLimit), list(u64 gasUsed),
    // list(status byte).
    //
    // The message is laid out once for n entries and filled entry by entry, so the receipt loop
    // reads each task record once. Byte offsets for n entries:
    //   0 scAddr (8+32), 40 codeHash (8+32), 80 deltaCount (8+8), 96 prevDeltaHash (8+32),
    //   T = 136           taskIds: count(8), entry i at T + 8 + 40 i
    //   I = T + 8 + 40 n  inputs:  same shape
    //   D = I + 8 + 40 n  deltas:  same shape
    //   O = D + 8 + 40 n  outputs: same shape
    //   L = O + 8 + 40 n  gasLimit: count(8), entry i at L + 8 + 16 i
    //   U = L + 8 + 16 n  gasUsed:  same shape
    //   S = U + 8 + 16 n  status:   count(8), entry i at S + 8 + 9 i
    //   total = S + 8 + 9 n = 192 + 201 n
    // Entries are written with masked stores that touch only their own bytes, so the order in
    // which entries are filled does not matter.

    /// A zeroed batch message for `n` entries with its fixed fields and list counts written.
    function newBatch(
        uint256 n,
        bytes32 scAddr,
        bytes32 codeHash,
        uint256 deltaCount,
        bytes32 prevDeltaHash
    ) internal pure returns (bytes memory buf) {
        // 32 bytes of slack past the message so whole-word stores never leave the allocation.
        buf = new bytes(192 + 201 * n + 32);
        assembly ("memory-safe") {
            mstore(buf, sub(mload(buf), 32))
            let p := add(buf, 0x20)
            mstore(p, shl(192, 32))
            mstore(add(p, 8), scAddr)
            mstore(add(p, 40), shl(192, 32))
            mstore(add(p, 48), codeHash)
            mstore(add(p, 80), or(shl(192, 8), shl(128, deltaCount)))
            mstore(add(p, 96), shl(192, 32))
            mstore(add(p, 104), prevDeltaHash)
            let count := shl(192, n)
            let mask := shr(64, not(0))
            let at := add(p, 136)
            for { let k := 0 } lt(k, 7) { k := add(k, 1) } {
                mstore(at, or(and(mload(at), mask), count))
                let width := 40
                if gt(k, 3) { width := 16 }
                at := add(at, add(8, mul(width, n)))
            }
        }
    }

    /// Writes entry `i` of an `n`-entry batch message.
    function setBatchEntry(
        bytes memory buf,
        uint256 n,
        uint256 i,
        bytes32 taskId,
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
            let at := add(add(buf, 0x20), add(144, mul(40, i))) // task id entry i
            put(at, prefix32, 8)
            mstore(add(at, 8), taskId)
            at := add(at, listHashes)
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
