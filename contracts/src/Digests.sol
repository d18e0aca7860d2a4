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

    /// The fields of a compute-success digest before the gas values.
    struct ComputeHead {
        bytes32 taskId;
        bytes32 scAddr;
        bytes32 codeHash;
        bytes32 inputsHash;
        uint64 deltaCount;
        bytes32 prevDeltaHash;
        bytes32 deltaHash;
        bytes32 outputHash;
    }

    /// Compute success: taskId, scAddr, codeHash, inputsHash, u64(deltaCount), prevDeltaHash,
    /// deltaHash, outputHash, u64(gasLimit), u64(gasUsed), ethPayload, ethAddress(20),
    /// u256(value), payouts, 0x01. `deltaCount` is the number of deltas before the task
    /// (prevDeltaHash is the last of them); `value` is what the task record escrowed and
    /// `payouts` the packed transfers (recipient(20) ‖ uint128 amount(16) each) the task made.
    function computeSuccess(
        ComputeHead memory h,
        uint64 gasLimit,
        uint64 gasUsed,
        bytes calldata ethPayload,
        address ethAddress,
        uint256 value,
        bytes calldata payouts
    ) internal pure returns (bytes32) {
        bytes memory head = abi.encodePacked(
            uint64(32), h.taskId,
            uint64(32), h.scAddr,
            uint64(32), h.codeHash,
            uint64(32), h.inputsHash,
            uint64(8), h.deltaCount,
            uint64(32), h.prevDeltaHash,
            uint64(32), h.deltaHash,
            uint64(32), h.outputHash
        );
        return keccak256(
            abi.encodePacked(
                head,
                uint64(8), gasLimit,
                uint64(8), gasUsed,
                uint64(ethPayload.length), ethPayload,
                uint64(20), ethAddress,
                uint64(32), value,
                uint64(payouts.length), payouts,
                uint64(1), uint8(1)
            )
        );
    }

    /// Failure (deploy or compute): taskId, scAddr (the task id for a deploy), inputsHash,
    /// codeHash (zero for a deploy), outputHash, u64(gasLimit), u64(gasUsed), u256(value), 0x00.
    function failure(
        bytes32 taskId,
        bytes32 scAddr,
        bytes32 inputsHash,
        bytes32 codeHash,
        bytes32 outputHash,
        uint64 gasLimit,
        uint64 gasUsed,
        uint256 value
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
                uint64(32), value,
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
    // list(inputsHash), list(deltaHash), list(outputHash), list(u256 value), list(payoutsHash),
    // list(u64 gasLimit), list(u64 gasUsed), list(status byte), where payoutsHash is the
    // keccak256 of an entry's packed payouts.
    //
    // The message is laid out once for n entries and filled entry by entry, so the receipt loop
    // reads each task record once. Byte offsets for n entries:
    //   0 scAddr (8+32), 40 codeHash (8+32), 80 deltaCount (8+8), 96 prevDeltaHash (8+32),
    //   136 + k (8 + 40 n)   list k of 32-byte values (k = 0..5: taskIds, inputs, deltas,
    //                        outputs, values, payout hashes): count(8), entry i at +8 + 40 i
    //   G = 184 + 240 n      gasLimit: count(8), entry i at G + 8 + 16 i
    //   G + 8 + 16 n         gasUsed:  same shape
    //   S = G + 16 + 32 n    status:   count(8), entry i at S + 8 + 9 i
    //   total = S + 8 + 9 n = 208 + 281 n
    // Entries are written with masked stores that touch only their own bytes, so the order in
    // which entries are filled does not matter.

    /// One entry of a batch message.
    struct BatchEntry {
        bytes32 taskId;
        bytes32 inputsHash;
        bytes32 deltaHash;
        bytes32 outputHash;
        uint256 value;
        bytes32 payoutsHash;
        uint64 gasLimit;
        uint64 gasUsed;
        uint8 status;
    }

    /// A zeroed batch message for `n` entries with its fixed fields and list counts written.
    function newBatch(
        uint256 n,
        bytes32 scAddr,
        bytes32 codeHash,
        uint256 deltaCount,
        bytes32 prevDeltaHash
    ) internal pure returns (bytes memory buf) {
        // 32 bytes of slack past the message so whole-word stores never leave the allocation.
        buf = new bytes(208 + 281 * n + 32);
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
            for { let k := 0 } lt(k, 9) { k := add(k, 1) } {
                mstore(at, or(and(mload(at), mask), count))
                let width := 40
                if gt(k, 5) { width := 16 }
                at := add(at, add(8, mul(width, n)))
            }
        }
    }

    /// Writes entry `i` of an `n`-entry batch message.
    function setBatchEntry(bytes memory buf, uint256 n, uint256 i, BatchEntry memory e)
        internal
        pure
    {
        assembly ("memory-safe") {
            function put(ptr, value, width) {
                mstore(ptr, or(and(mload(ptr), shr(mul(width, 8), not(0))), value))
            }
            let p := add(buf, 0x20)
            let prefix32 := shl(192, 32)
            let list := add(8, mul(40, n))
            let at := add(p, add(144, mul(40, i)))
            // The six 32-byte fields are the struct's first six words.
            for { let k := 0 } lt(k, 6) { k := add(k, 1) } {
                put(at, prefix32, 8)
                mstore(add(at, 8), mload(add(e, mul(k, 0x20))))
                at := add(at, list)
            }
            let g := add(p, add(184, mul(240, n)))
            put(add(g, add(8, mul(16, i))), or(shl(192, 8), shl(128, mload(add(e, 0xc0)))), 16)
            g := add(g, add(8, mul(16, n)))
            put(add(g, add(8, mul(16, i))), or(shl(192, 8), shl(128, mload(add(e, 0xe0)))), 16)
            g := add(g, add(8, mul(16, n)))
            put(add(g, add(8, mul(9, i))), or(shl(192, 1), shl(184, mload(add(e, 0x100)))), 9)
        }
    }

    function batchDigest(bytes memory buf) internal pure returns (bytes32) {
        return keccak256(buf);
    }
}
