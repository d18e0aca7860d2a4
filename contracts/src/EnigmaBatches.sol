// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Digests} from "./Digests.sol";
import {EnigmaCore} from "./EnigmaCore.sol";

/// Record batches: compute tasks recorded as one Merkle root per batch instead of a record per
/// task, and their receipts, which prove each task against its batch's root (docs/api.md,
/// section 7, "Record batches"). Runs only by DELEGATECALL from `Enigma` (its fallback), on
/// Enigma's storage; called directly it refuses.
///
/// What a batch stores is two slots (`RecordBatch`); each task is a leaf
/// `keccak256(abi.encode(taskId, scAddr, inputsHash, gasLimit, gasPx, seq, value))`, and the
/// root is over the leaves in order, each level pairing neighbours as `keccak256(left ‖ right)`
/// with a zero hash standing in for a missing right neighbour, up to one node. The guarantees of
/// per-task records hold: the fee and value are escrowed when recorded; a task takes its
/// contract's next sequence number, and its receipt must come in that order; a task's `open` bit
/// is cleared by its receipt or its refund, so neither can happen twice nor both.
contract EnigmaBatches is EnigmaCore {
    /// The address this code was deployed at: called there rather than through `Enigma`, it would
    /// run on its own empty storage.
    address private immutable self;

    /// One task of a record batch as its receipt or refund shows it: the leaf's fields, the
    /// batch (its root), the task's position in it and the Merkle proof from leaf to root.
    struct BatchTask {
        bytes32 root;
        uint256 index;
        bytes32 taskId;
        bytes32 inputsHash;
        uint64 gasLimit;
        uint64 gasPx;
        uint256 seq;
        uint256 value;
        bytes32[] proof;
    }

    /// A batch of `scAddrs.length` compute tasks by `sender` with task ids
    /// keccak256(abi.encodePacked(sender, uint256(nonce + i))), recorded under `root`; `seqs[i]`
    /// is task i's place in its contract's order.
    event TaskBatchCreated(
        bytes32 indexed root,
        address indexed sender,
        uint256 firstBlockNumber,
        uint256 nonce,
        uint64 gasPx,
        bytes32[] scAddrs,
        bytes32[] inputsHashes,
        uint64[] gasLimits,
        uint256[] values,
        uint256[] seqs
    );

    error NotDelegated();
    error BatchTooLarge(uint256 count, uint256 max);
    error UnknownRecordBatch(bytes32 root);
    error BatchTaskNotOpen(bytes32 root, uint256 index);
    error InvalidBatchProof(bytes32 taskId);
    error MalformedReceiptBatch(uint256 pos);

    modifier delegated() {
        if (address(this) == self) revert NotDelegated();
        _;
    }

    constructor(address token_, uint256 timeoutBlocks_, uint256 groupSize_)
        EnigmaCore(token_, timeoutBlocks_, groupSize_)
    {
        self = address(this);
    }

    // =============================================================================================
    // Records

    /// Records compute tasks (each on its deployed contract, in the order given, taking that
    /// contract's next sequence number) with consecutive task nonces from `nonce` (the caller's
    /// task counter), escrowing their fees (gasLimit·gasPx) and values together, and stores only
    /// the batch's root and header. The tasks' fields are in the `TaskBatchCreated` event; a
    /// receipt or refund presents them with a proof.
    function createTaskBatch(
        bytes32[] calldata scAddrs,
        bytes32[] calldata inputsHashes,
        uint64[] calldata gasLimits,
        uint256[] calldata values,
        uint64 gasPx,
        uint256 firstBlockNumber,
        uint256 nonce
    ) external delegated nonReentrant returns (bytes32 root) {
        uint256 n = scAddrs.length;
        if (n == 0) revert EmptyBatch();
        if (n > MAX_RECORD_BATCH) revert BatchTooLarge(n, MAX_RECORD_BATCH);
        if (inputsHashes.length != n || gasLimits.length != n || values.length != n) {
            revert LengthMismatch();
        }
        uint32 epoch = _currentEpochFor(firstBlockNumber);
        Account storage a = accounts[msg.sender];
        if (nonce != a.taskNonce) revert WrongTaskNonce(a.taskNonce, nonce);
        uint256 fee;
        uint256[] memory seqs = new uint256[](n);
        bytes32[] memory level = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            uint64 gasLimit = gasLimits[i];
            _checkLimits(gasLimit, gasPx);
            uint256 seq = _nextSeq(scAddrs[i]);
            seqs[i] = seq;
            level[i] = _leaf(
                keccak256(abi.encodePacked(msg.sender, nonce + i)),
                scAddrs[i],
                inputsHashes[i],
                gasLimit,
                gasPx,
                seq,
                values[i]
            );
            fee += uint256(gasLimit) * gasPx + values[i];
        }
        root = _root(level);
        // Every leaf commits to a task id that can never be recorded again, so no two batches
        // share a root.
        recordBatches[root] = RecordBatch({
            sender: msg.sender,
            epoch: epoch,
            createdAt: uint40(block.number),
            count: uint8(n),
            open: (1 << 255) | ((1 << n) - 1)
        });
        a.taskNonce = uint64(nonce + n);
        _escrow(a, fee);
        emit TaskBatchCreated(
            root,
            msg.sender,
            firstBlockNumber,
            nonce,
            gasPx,
            scAddrs,
            inputsHashes,
            gasLimits,
            values,
            seqs
        );
    }

    // =============================================================================================
    // Receipts

    /// Commits the receipts of batch-recorded compute tasks of contract `scAddr`, all of one
    /// epoch, under one signature: the batch digest of `commitReceipts` (docs/api.md section 4), so
    /// the enclave signs the same message whichever way its tasks were recorded. `packed` holds
    /// the tasks in runs, each run tasks of one record batch with one multiproof for all of them
    /// (docs/api.md section 7, "Packed receipt batches"); settlement is that of `commitReceipts`.
    function commitBatchReceipts(bytes32 scAddr, bytes calldata packed, bytes calldata sig)
        external
        delegated
        nonReentrant
    {
        uint256 n = _read(packed, 0, 2);
        if (n == 0) revert EmptyBatch();
        SecretContract storage sc = _deployed(scAddr);
        bytes memory message =
            Digests.newBatch(n, scAddr, sc.codeHash, sc.deltaCount, sc.lastDeltaHash);
        Settled memory s = Settled({
            taskIds: new bytes32[](n),
            deltaHashes: new bytes32[](n),
            outputHashes: new bytes32[](n),
            gasUsed: new uint64[](n),
            statuses: new uint8[](n),
            appended: new bytes32[](n),
            appendedCount: 0,
            epoch: type(uint256).max,
            credit: 0,
            nextSeq: sc.nextReceiptSeq
        });
        uint256 pos = 2;
        uint256 done;
        while (pos < packed.length) {
            (pos, done) = _settleRun(sc, scAddr, packed, pos, done, n, message, s);
        }
        if (done != n) revert MalformedReceiptBatch(pos);
        sc.nextReceiptSeq = uint32(s.nextSeq);
        address signer = _selectedSigner(s.epoch, scAddr, Digests.batchDigest(message), sig);
        uint256 firstDeltaIndex = sc.deltaCount;
        _appendDeltas(sc, s.appended, s.appendedCount);
        _credit(signer, s.credit);
        emit ReceiptsVerified(
            scAddr,
            s.taskIds,
            s.deltaHashes,
            s.outputHashes,
            s.gasUsed,
            s.statuses,
            firstDeltaIndex,
            signer
        );
    }

    /// Commits one batch-recorded compute task's success alone, as `commitReceipt` does (the
    /// same compute-success digest, delta, value and payouts, Ethereum callback and its failure),
    /// with the proof of its record: the way for a task whose result calls an Ethereum contract,
    /// which a receipt batch cannot carry.
    function commitBatchReceipt(
        bytes32 scAddr,
        BatchTask calldata t,
        bytes32 stateDeltaHash,
        bytes32 outputHash,
        uint64 gasUsed,
        bytes calldata ethPayload,
        address ethAddress,
        bytes calldata payouts,
        bytes calldata sig
    ) external delegated nonReentrant {
        if (gasUsed > t.gasLimit) revert GasUsedAboveLimit(t.taskId, gasUsed, t.gasLimit);
        SecretContract storage sc = _deployed(scAddr);
        RecordBatch storage b = _closeTask(scAddr, t);
        uint256 next = sc.nextReceiptSeq;
        if (t.seq < next) revert ReceiptOutOfOrder(t.taskId, t.seq, next);
        sc.nextReceiptSeq = uint32(t.seq + 1);
        bytes32 prevDeltaHash = sc.lastDeltaHash;
        uint256 count = sc.deltaCount;
        bytes32 digest = Digests.computeSuccess(
            Digests.ComputeHead(
                t.taskId,
                scAddr,
                sc.codeHash,
                t.inputsHash,
                uint64(count),
                prevDeltaHash,
                stateDeltaHash,
                outputHash
            ),
            t.gasLimit,
            gasUsed,
            ethPayload,
            ethAddress,
            t.value,
            payouts
        );
        address signer = _selectedSigner(b.epoch, scAddr, digest, sig);
        address sender = b.sender;
        uint256 back = uint256(t.gasLimit - gasUsed) * t.gasPx;
        _credit(signer, uint256(gasUsed) * t.gasPx);
        if (stateDeltaHash != bytes32(0)) {
            sc.inlineDeltas[count] = stateDeltaHash;
            sc.deltaCount = uint32(count + 1);
            sc.lastDeltaHash = stateDeltaHash;
        }
        if (ethAddress != address(0) && !_callback(ethAddress, ethPayload)) {
            if (stateDeltaHash != bytes32(0)) {
                delete sc.inlineDeltas[count];
                sc.deltaCount = uint32(count);
                sc.lastDeltaHash = prevDeltaHash;
            }
            accounts[sender].balance += uint128(back + t.value);
            emit ReceiptFailedETH(
                t.taskId, scAddr, stateDeltaHash, outputHash, gasUsed, ethAddress, signer
            );
            return;
        }
        if (back != 0) accounts[sender].balance += uint128(back);
        _pay(sc, scAddr, t.value, payouts);
        uint256 tip = stateDeltaHash != bytes32(0) ? count : count - 1;
        emit ReceiptVerified(t.taskId, scAddr, stateDeltaHash, tip, outputHash, gasUsed, signer);
    }

    /// Returns the whole fee and the escrowed value of a batch-recorded task nobody committed to
    /// its sender's prepaid balance, once `timeoutBlocks` blocks have passed since its batch was
    /// recorded. Anyone may call it. `scAddr` is the contract the task was recorded for.
    function returnBatchTaskFee(bytes32 scAddr, BatchTask calldata t)
        external
        delegated
        nonReentrant
    {
        RecordBatch storage b = _closeTask(scAddr, t);
        uint256 timeoutBlock = uint256(b.createdAt) + timeoutBlocks;
        if (block.number < timeoutBlock) revert TaskNotTimedOut(t.taskId, timeoutBlock);
        address sender = b.sender;
        uint256 amount = uint256(t.gasLimit) * t.gasPx + t.value;
        accounts[sender].balance += uint128(amount);
        emit TaskFeeReturned(t.taskId, sender, amount);
    }

    /// A record batch by its root (sender zero: no such batch).
    function getRecordBatch(bytes32 root) external view delegated returns (RecordBatch memory) {
        return recordBatches[root];
    }

    /// Delta hashes `[start, stop)` of a contract (clamped to its delta count) as the chain
    /// keeps them: `hashes[i - start]` is delta i's hash where a slot holds it and zero where a
    /// chunk does; `chunks` are the chunks holding any of them, in order (docs/api.md section 8).
    function getDeltas(bytes32 scAddr, uint256 start, uint256 stop)
        external
        view
        delegated
        returns (bytes32[] memory hashes, DeltaChunk[] memory chunks)
    {
        SecretContract storage sc = contracts[scAddr];
        if (stop > sc.deltaCount) stop = sc.deltaCount;
        if (start >= stop) return (hashes, chunks);
        hashes = new bytes32[](stop - start);
        for (uint256 i = start; i < stop; ++i) {
            hashes[i - start] = sc.inlineDeltas[i];
        }
        DeltaChunk[] storage all = sc.chunks;
        // The first chunk that ends after `start`, then every one that begins before `stop`.
        uint256 low;
        uint256 high = all.length;
        while (low < high) {
            uint256 mid = (low + high) / 2;
            if (uint256(all[mid].first) + all[mid].count <= start) low = mid + 1;
            else high = mid;
        }
        uint256 end = low;
        while (end < all.length && all[end].first < stop) ++end;
        chunks = new DeltaChunk[](end - low);
        for (uint256 j; j < end - low; ++j) {
            chunks[j] = all[low + j];
        }
    }

    // =============================================================================================
    // Internals

    /// A receipt batch's running totals (a struct, so they live in memory rather than on the
    /// stack).
    struct Settled {
        bytes32[] taskIds;
        bytes32[] deltaHashes;
        bytes32[] outputHashes;
        uint64[] gasUsed;
        uint8[] statuses;
        bytes32[] appended;
        uint256 appendedCount;
        uint256 epoch;
        uint256 credit;
        uint256 nextSeq;
    }

    /// A run's record batch and what the run does to it.
    struct Run {
        bytes32 root;
        uint64 gasPx;
        uint256 count;
        uint256 open;
        uint256 back;
        uint256[] indices;
        bytes32[] nodes;
    }

    /// The fixed part of a packed task, up to and with its payouts' length.
    uint256 private constant PACKED_TASK = 168;

    /// Settles the run at `pos` of `packed` (tasks `done..` of the receipt batch) and returns where
    /// the next run starts and how many tasks are settled.
    function _settleRun(
        SecretContract storage sc,
        bytes32 scAddr,
        bytes calldata packed,
        uint256 pos,
        uint256 done,
        uint256 n,
        bytes memory message,
        Settled memory s
    ) private returns (uint256, uint256) {
        Run memory r;
        r.root = bytes32(_read(packed, pos, 32));
        r.gasPx = uint64(_read(packed, pos + 32, 8));
        uint256 k = _read(packed, pos + 40, 1);
        pos += 41;
        if (k == 0 || done + k > n) revert MalformedReceiptBatch(pos);
        RecordBatch storage b = recordBatches[r.root];
        r.count = b.count;
        if (r.count == 0) revert UnknownRecordBatch(r.root);
        uint256 epoch = b.epoch;
        r.open = b.open;
        r.indices = new uint256[](k);
        r.nodes = new bytes32[](k);
        // One entry, rewritten for each task: the digest's fields, read straight from calldata.
        Digests.BatchEntry memory e;
        for (uint256 j; j < k; ++j) {
            uint256 index;
            uint256 seq;
            uint256 payoutsLength;
            if (pos + PACKED_TASK > packed.length) revert MalformedReceiptBatch(pos);
            assembly ("memory-safe") {
                let p := add(packed.offset, pos)
                index := shr(248, calldataload(p))
                mstore(e, calldataload(add(p, 1))) // taskId
                mstore(add(e, 0x20), calldataload(add(p, 33))) // inputsHash
                mstore(add(e, 0xc0), shr(192, calldataload(add(p, 65)))) // gasLimit
                seq := shr(224, calldataload(add(p, 73)))
                mstore(add(e, 0x80), shr(128, calldataload(add(p, 77)))) // value
                mstore(add(e, 0x40), calldataload(add(p, 93))) // deltaHash
                mstore(add(e, 0x60), calldataload(add(p, 125))) // outputHash
                mstore(add(e, 0xe0), shr(192, calldataload(add(p, 157)))) // gasUsed
                mstore(add(e, 0x100), shr(248, calldataload(add(p, 165)))) // status
                payoutsLength := shr(240, calldataload(add(p, 166)))
            }
            pos += PACKED_TASK;
            if (pos + payoutsLength > packed.length) revert MalformedReceiptBatch(pos);
            bytes calldata payouts = packed[pos:pos + payoutsLength];
            pos += payoutsLength;
            if (j == 0) {
                if (s.epoch == type(uint256).max) s.epoch = epoch;
                else if (epoch != s.epoch) revert BatchSpansEpochs(e.taskId);
            }
            if (index >= r.count || (r.open >> index) & 1 == 0) {
                revert BatchTaskNotOpen(r.root, index);
            }
            // Indices rise within a run (the multiproof needs it; a repeat is refused here).
            if (j != 0 && index <= r.indices[j - 1]) revert MalformedReceiptBatch(pos);
            r.open &= ~(1 << index);
            r.indices[j] = index;
            r.nodes[j] = _leafOf(e, scAddr, r.gasPx, seq);
            e.payoutsHash = _hashOf(payouts);
            _settleTask(sc, scAddr, e, seq, r, payouts, done + j, s);
            Digests.setBatchEntry(message, n, done + j, e);
        }
        uint256 given = _read(packed, pos, 1);
        if (pos + 1 + 32 * given > packed.length) revert MalformedReceiptBatch(pos);
        bytes calldata proof = packed[pos + 1:pos + 1 + 32 * given];
        pos += 1 + 32 * given;
        if (!_provesRun(r, proof)) revert InvalidBatchProof(s.taskIds[done]);
        b.open = r.open;
        if (r.back != 0) accounts[b.sender].balance += uint128(r.back);
        return (pos, done + k);
    }

    /// Settles one task of a run: order, gas, status, value and payouts; what goes back to the
    /// sender is summed in the run.
    function _settleTask(
        SecretContract storage sc,
        bytes32 scAddr,
        Digests.BatchEntry memory e,
        uint256 seq,
        Run memory r,
        bytes calldata payouts,
        uint256 i,
        Settled memory s
    ) private {
        if (seq < s.nextSeq) revert ReceiptOutOfOrder(e.taskId, seq, s.nextSeq);
        s.nextSeq = seq + 1;
        uint64 used = e.gasUsed;
        if (used > e.gasLimit) revert GasUsedAboveLimit(e.taskId, used, e.gasLimit);
        uint256 back;
        uint256 gasPx = r.gasPx;
        // Products of 64-bit numbers and sums of at most 65,535 of them cannot overflow.
        unchecked {
            back = uint256(e.gasLimit - used) * gasPx;
            s.credit += uint256(used) * gasPx;
        }
        bytes32 deltaHash = e.deltaHash;
        if (e.status == 1) {
            if (deltaHash != bytes32(0)) s.appended[s.appendedCount++] = deltaHash;
            _pay(sc, scAddr, e.value, payouts);
        } else if (e.status == 0) {
            if (deltaHash != bytes32(0)) revert FailedTaskWithDelta(e.taskId);
            back += e.value;
        } else {
            revert InvalidReceiptStatus(e.taskId, e.status);
        }
        r.back += back;
        bytes32[] memory taskIds = s.taskIds;
        bytes32[] memory deltaHashes = s.deltaHashes;
        bytes32[] memory outputHashes = s.outputHashes;
        uint64[] memory gasUsed = s.gasUsed;
        uint8[] memory statuses = s.statuses;
        // `i` is below the arrays' length (n), which the caller checked.
        assembly ("memory-safe") {
            let at := mul(add(i, 1), 0x20)
            mstore(add(taskIds, at), mload(e))
            mstore(add(deltaHashes, at), deltaHash)
            mstore(add(outputHashes, at), mload(add(e, 0x60)))
            mstore(add(gasUsed, at), used)
            mstore(add(statuses, at), mload(add(e, 0x100)))
        }
    }

    /// The leaf of the task in `e` (with its contract, price and place), hashed in scratch memory.
    function _leafOf(Digests.BatchEntry memory e, bytes32 scAddr, uint64 gasPx, uint256 seq)
        private
        pure
        returns (bytes32 h)
    {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, mload(e))
            mstore(add(m, 0x20), scAddr)
            mstore(add(m, 0x40), mload(add(e, 0x20)))
            mstore(add(m, 0x60), mload(add(e, 0xc0)))
            mstore(add(m, 0x80), gasPx)
            mstore(add(m, 0xa0), seq)
            mstore(add(m, 0xc0), mload(add(e, 0x80)))
            h := keccak256(m, 0xe0)
        }
    }

    /// keccak256 of calldata bytes, hashed in scratch memory.
    function _hashOf(bytes calldata data) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, data.offset, data.length)
            h := keccak256(m, data.length)
        }
    }

    /// Whether the run's leaves (`r.nodes` at `r.indices`, rising) and `proof` (the siblings no
    /// leaf of the run yields, level by level, left to right) lead to `r.root`, using every
    /// sibling. Overwrites `r.nodes` and `r.indices`.
    function _provesRun(Run memory r, bytes calldata proof) private pure returns (bool) {
        uint256 width = r.count;
        uint256 live = r.indices.length;
        uint256 used;
        uint256 given = proof.length / 32;
        while (width > 1) {
            uint256 m;
            for (uint256 j; j < live; ++j) {
                uint256 index = r.indices[j];
                bytes32 h = r.nodes[j];
                bytes32 sibling;
                if (index & 1 == 1) {
                    if (used == given) return false;
                    sibling = _sibling(proof, used++);
                    h = _node(sibling, h);
                } else {
                    if (j + 1 < live && r.indices[j + 1] == index + 1) {
                        sibling = r.nodes[j + 1];
                        ++j;
                    } else if (index + 1 < width) {
                        if (used == given) return false;
                        sibling = _sibling(proof, used++);
                    }
                    h = _node(h, sibling);
                }
                r.indices[m] = index >> 1;
                r.nodes[m] = h;
                ++m;
            }
            live = m;
            width = (width + 1) / 2;
        }
        return used == given && r.nodes[0] == r.root;
    }

    /// Sibling `i` of a run's multiproof (the caller keeps `i` below their count).
    function _sibling(bytes calldata proof, uint256 i) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            h := calldataload(add(proof.offset, mul(i, 32)))
        }
    }

    /// The `width`-byte big-endian number at `pos` of `data` (`width` at most 32).
    function _read(bytes calldata data, uint256 pos, uint256 width)
        private
        pure
        returns (uint256 v)
    {
        if (pos + width > data.length) revert MalformedReceiptBatch(pos);
        assembly ("memory-safe") {
            v := shr(sub(256, mul(8, width)), calldataload(add(data.offset, pos)))
        }
    }

    /// Checks that `t` is an open task of a recorded batch, recorded for `scAddr`, and closes it.
    function _closeTask(bytes32 scAddr, BatchTask calldata t)
        private
        returns (RecordBatch storage b)
    {
        b = recordBatches[t.root];
        uint256 count = b.count;
        if (count == 0) revert UnknownRecordBatch(t.root);
        uint256 open = b.open;
        uint256 index = t.index;
        if (index >= count || (open >> index) & 1 == 0) revert BatchTaskNotOpen(t.root, index);
        bytes32 leaf =
            _leaf(t.taskId, scAddr, t.inputsHash, t.gasLimit, t.gasPx, t.seq, t.value);
        if (!_proves(leaf, index, count, t.proof, t.root)) revert InvalidBatchProof(t.taskId);
        b.open = open & ~(1 << index);
    }

    function _leaf(
        bytes32 taskId,
        bytes32 scAddr,
        bytes32 inputsHash,
        uint64 gasLimit,
        uint64 gasPx,
        uint256 seq,
        uint256 value
    ) private pure returns (bytes32) {
        return keccak256(abi.encode(taskId, scAddr, inputsHash, gasLimit, gasPx, seq, value));
    }

    /// The root over `level` (overwritten: each pass halves it in place).
    function _root(bytes32[] memory level) private pure returns (bytes32) {
        uint256 n = level.length;
        while (n > 1) {
            uint256 half = (n + 1) / 2;
            for (uint256 i; i < half; ++i) {
                bytes32 right = 2 * i + 1 < n ? level[2 * i + 1] : bytes32(0);
                level[i] = _node(level[2 * i], right);
            }
            n = half;
        }
        return level[0];
    }

    /// Whether `proof` (one sibling per level, as many levels as a tree of `count` leaves has)
    /// leads from `leaf` at `index` to `root`.
    function _proves(
        bytes32 leaf,
        uint256 index,
        uint256 count,
        bytes32[] calldata proof,
        bytes32 root
    ) private pure returns (bool) {
        uint256 depth;
        while ((1 << depth) < count) ++depth;
        if (proof.length != depth) return false;
        bytes32 h = leaf;
        for (uint256 k; k < depth; ++k) {
            h = (index >> k) & 1 == 0 ? _node(h, proof[k]) : _node(proof[k], h);
        }
        return h == root;
    }

    function _node(bytes32 left, bytes32 right) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            h := keccak256(0x00, 0x40)
        }
    }
}
