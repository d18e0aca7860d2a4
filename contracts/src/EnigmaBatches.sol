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

    /// What the enclave reports for one task of a receipt batch (as in `commitReceipts`).
    struct Outcome {
        bytes32 deltaHash;
        bytes32 outputHash;
        uint64 gasUsed;
        uint8 status;
        bytes payouts;
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
    /// the enclave signs the same message whichever way its tasks were recorded. Each task is
    /// shown with the proof of its record; settlement is that of `commitReceipts`.
    function commitBatchReceipts(
        bytes32 scAddr,
        BatchTask[] calldata batchTasks,
        Outcome[] calldata outcomes,
        bytes calldata sig
    ) external delegated nonReentrant {
        uint256 n = batchTasks.length;
        if (n == 0) revert EmptyBatch();
        if (outcomes.length != n) revert LengthMismatch();
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
            epoch: 0,
            credit: 0,
            nextSeq: sc.nextReceiptSeq
        });
        for (uint256 i; i < n; ++i) {
            _settleOne(sc, scAddr, batchTasks[i], outcomes[i], i, s);
            Digests.setBatchEntry(message, n, i, _entry(batchTasks[i], outcomes[i]));
        }
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

    function _settleOne(
        SecretContract storage sc,
        bytes32 scAddr,
        BatchTask calldata t,
        Outcome calldata o,
        uint256 i,
        Settled memory s
    ) private {
        RecordBatch storage b = _closeTask(scAddr, t);
        if (i == 0) s.epoch = b.epoch;
        else if (b.epoch != s.epoch) revert BatchSpansEpochs(t.taskId);
        if (t.seq < s.nextSeq) revert ReceiptOutOfOrder(t.taskId, t.seq, s.nextSeq);
        s.nextSeq = t.seq + 1;
        uint64 used = o.gasUsed;
        if (used > t.gasLimit) revert GasUsedAboveLimit(t.taskId, used, t.gasLimit);
        address sender = b.sender;
        uint256 back = uint256(t.gasLimit - used) * t.gasPx;
        if (o.status == 1) {
            if (o.deltaHash != bytes32(0)) s.appended[s.appendedCount++] = o.deltaHash;
            _pay(sc, scAddr, t.value, o.payouts);
        } else if (o.status == 0) {
            if (o.deltaHash != bytes32(0)) revert FailedTaskWithDelta(t.taskId);
            back += t.value;
        } else {
            revert InvalidReceiptStatus(t.taskId, o.status);
        }
        if (back != 0) accounts[sender].balance += uint128(back);
        s.credit += uint256(used) * t.gasPx;
        s.taskIds[i] = t.taskId;
        s.deltaHashes[i] = o.deltaHash;
        s.outputHashes[i] = o.outputHash;
        s.gasUsed[i] = used;
        s.statuses[i] = o.status;
    }

    function _entry(BatchTask calldata t, Outcome calldata o)
        private
        pure
        returns (Digests.BatchEntry memory)
    {
        return Digests.BatchEntry(
            t.taskId,
            t.inputsHash,
            o.deltaHash,
            o.outputHash,
            t.value,
            keccak256(o.payouts),
            t.gasLimit,
            o.gasUsed,
            o.status
        );
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
