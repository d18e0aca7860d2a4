// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAttestationVerifier} from "./IAttestationVerifier.sol";
import {IEnigmaToken} from "./IEnigmaToken.sol";
import {Signatures} from "./Signatures.sol";

/// What `Enigma` and its extension `EnigmaBatches` share: the types, the storage layout (the
/// extension runs by DELEGATECALL on Enigma's storage), the events and errors, and the internals
/// both use. Nothing here is deployed on its own.
abstract contract EnigmaCore {
    // =============================================================================================
    // Types

    enum WorkerStatus {
        Unregistered,
        LoggedIn,
        LoggedOut
    }

    enum TaskStatus {
        RecordUndefined,
        RecordCreated,
        ReceiptVerified,
        ReceiptFailed,
        ReceiptFailedETH,
        ReceiptFailedReturn
    }

    /// A worker, keyed by its operating address (the account that sends its transactions).
    struct Worker {
        address signer;
        WorkerStatus status;
        uint8 evidenceKind;
        bool listed;
        uint40 registeredAt;
        uint128 balance;
        uint64 loggedOutAt;
        bytes32 mrEnclave;
        // Selection weight history: the stake as of each login/logout/deposit (0 while logged
        // out), so an epoch can be computed "as of" any recent block without racing workers
        // that change their state while the key manager signs.
        Checkpoint[] weights;
    }

    struct Checkpoint {
        uint64 fromBlock;
        uint128 weight;
    }

    /// An epoch's worker, with the running sum of stakes up to and including it, so selection
    /// is a binary search instead of a walk over all workers.
    struct Member {
        address signer;
        uint96 cumulativeStake;
    }

    struct Epoch {
        uint256 seed;
        uint64 firstBlockNumber;
        uint64 snapshotBlock;
        Member[] members;
    }

    /// A user's prepaid ENG and task counter, packed so a task record touches one slot.
    struct Account {
        uint128 balance;
        uint64 taskNonce;
    }

    /// Three slots: what a receipt needs to check and settle a task, read once. `seq` is the
    /// task's place in its contract's order, `scTag` the first 12 bytes of the contract's address
    /// (the record names its contract; receipts are accepted only in `seq` order).
    struct Task {
        address sender;
        TaskStatus status;
        bool isDeploy;
        uint32 epoch;
        uint40 createdAt;
        // Whether the task escrowed a value (kept in `taskValues`, read only when set).
        bool paid;
        bytes32 inputsHash;
        uint64 gasLimit;
        uint64 gasPx;
        uint32 seq;
        bytes12 scTag;
    }

    /// Delta hashes appended by one receipt batch (four or more), kept as a commitment in one
    /// slot instead of the hashes: the hashes are the non-zero `deltaHashes` of the batch's
    /// `ReceiptsVerified` event (from `firstDeltaIndex`, in order), mined in block
    /// `blockNumber`, and `listHash` is the first 19 bytes of keccak256(hash_0 ‖ … ‖
    /// hash_{count-1}), which a reader checks them against (docs/api.md section 8).
    struct DeltaChunk {
        uint32 first;
        uint32 count;
        uint40 blockNumber;
        bytes19 listHash;
    }

    /// A batch of compute tasks recorded by one sender in one transaction, keyed by the root of
    /// the Merkle tree of its tasks (`EnigmaBatches`): two slots, whatever its size. Bit i of
    /// `open` is set while task i awaits its receipt or refund; bit 255 is always set, so the
    /// word is never zero and closing a task rewrites a live slot instead of creating one.
    struct RecordBatch {
        address sender;
        uint32 epoch;
        uint40 createdAt;
        uint8 count;
        uint256 open;
    }

    struct SecretContract {
        address owner;
        uint32 deltaCount;
        // Tasks recorded for the contract, and the sequence number its next receipt needs at
        // least (receipts land in record order; a task skipped is only refundable).
        uint32 taskCount;
        uint32 nextReceiptSeq;
        bytes32 codeHash;
        bytes32 lastDeltaHash;
        // ENG the contract holds: the values of its successful tasks less what it paid out.
        uint128 balance;
        // Delta hashes committed one at a time (or in small batches) by index; a zero entry
        // means "look in the chunks" (only delta 0 may be a zero hash).
        mapping(uint256 => bytes32) inlineDeltas;
        DeltaChunk[] chunks;
    }

    // =============================================================================================
    // Constants and configuration

    uint16 internal constant WORKER_PRODUCT_ID = 1;
    uint16 internal constant KEY_MANAGER_PRODUCT_ID = 2;
    uint8 internal constant EVIDENCE_SIMULATION = 0;
    uint8 internal constant EVIDENCE_IAS = 1;
    /// Gas given to an Ethereum callback. Fixed, so the submitter of a receipt cannot make a
    /// callback fail by sending too little gas: a receipt without this much to spare reverts.
    uint256 internal constant CALLBACK_GAS = 1_000_000;
    /// Gas kept back across a callback to record its failure.
    uint256 internal constant CALLBACK_RESERVE = 50_000;
    /// The most workers in the active set (logged in, or logged out and not yet pruned by an
    /// epoch): bounds the epoch's worker loop, so setWorkersParams stays under a block's gas.
    uint256 public constant MAX_ACTIVE_WORKERS = 500;
    /// Selection draws at most this many rounds per group member (see getWorkerGroup).
    uint256 internal constant SELECTION_ROUNDS_PER_MEMBER = 32;
    /// A batch appending fewer deltas than this stores them in slots; more are one chunk.
    uint256 internal constant CHUNK_MIN = 4;
    /// A payout in a receipt: recipient (20 bytes) and uint128 amount (16 bytes).
    uint256 internal constant PAYOUT_SIZE = 36;

    /// The most tasks in one record batch (`createTaskBatch`): one bit each in its `open` word,
    /// whose top bit stays set.
    uint256 internal constant MAX_RECORD_BATCH = 255;

    // Immutables live in code, not storage: `Enigma` and `EnigmaBatches` are both constructed with
    // the same values (Enigma's constructor deploys its extension).
    IEnigmaToken public immutable token;
    /// Blocks after which an open task's fee can be returned.
    uint256 public immutable timeoutBlocks;
    /// Workers selected per contract and epoch.
    uint256 public immutable groupSize;

    // =============================================================================================
    // State

    /// May change the task limits below and hand this role on.
    address public owner;
    /// The lowest gas price a task may offer (grains per unit of gas).
    uint64 public minGasPrice;
    /// The highest gas limit a task may ask for: bounds the work one record can demand.
    uint64 public maxGasLimit;

    /// Whether the principal's attestation has been verified (required before any epoch).
    bool public principalRegistered;
    bytes32 public principalMrEnclave;

    mapping(address => Worker) internal workers;
    /// Signer address => operating address. Kept after unregistering, so receipts signed for
    /// past epochs still credit the right worker and a signer can never move to another operator.
    mapping(address => address) public operatorOf;
    /// Operating addresses in registration order (entries are never removed; re-registering
    /// keeps the position).
    address[] internal workerList;
    /// The active set: operators logged in, or logged out and not yet pruned (in the order they
    /// joined it; an epoch lists its workers in this order). `activeIndex` is position + 1.
    address[] internal activeList;
    mapping(address => uint256) internal activeIndex;

    Epoch[] internal epochs;
    mapping(address => Account) internal accounts;
    mapping(bytes32 => Task) internal tasks;
    mapping(bytes32 => uint256) internal taskValues;
    mapping(bytes32 => SecretContract) internal contracts;
    bytes32[] internal contractList;

    /// Record batches by their root (see RecordBatch).
    mapping(bytes32 => RecordBatch) internal recordBatches;

    bool internal transient locked;

    // =============================================================================================
    // Events

    event Registered(
        address indexed operator,
        address indexed signer,
        uint8 evidenceKind,
        bytes32 mrEnclave,
        bytes evidence
    );
    event Unregistered(address indexed operator, address indexed signer);
    event PrincipalRegistered(
        address indexed signer, uint8 evidenceKind, bytes32 mrEnclave, bytes evidence
    );
    event DepositSuccessful(address indexed operator, uint256 amount, uint256 balance);
    event WithdrawSuccessful(address indexed operator, uint256 amount, uint256 balance);
    event LoggedIn(address indexed operator, address indexed signer);
    event LoggedOut(address indexed operator, address indexed signer);
    event WorkersParameterized(
        uint256 seed, uint256 firstBlockNumber, uint256 nonce, address[] workers, uint256[] stakes
    );
    event BalanceDeposited(address indexed user, uint256 amount, uint256 balance);
    event BalanceWithdrawn(address indexed user, uint256 amount, uint256 balance);
    event TaskRecordCreated(
        bytes32 indexed taskId,
        bytes32 indexed scAddr,
        bytes32 inputsHash,
        uint64 gasLimit,
        uint64 gasPx,
        address indexed sender,
        uint256 firstBlockNumber,
        bool isDeploy,
        uint256 seq
    );
    event TaskRecordsCreated(
        bytes32[] taskIds,
        bytes32[] scAddrs,
        uint256[] seqs,
        bytes32[] inputsHashes,
        uint64[] gasLimits,
        uint64 gasPx,
        address indexed sender,
        uint256 firstBlockNumber
    );
    event TaskLimitsSet(uint64 minGasPrice, uint64 maxGasLimit);
    event OwnerChanged(address owner);
    event SecretContractDeployed(
        bytes32 indexed scAddr, bytes32 codeHash, bytes32 initDeltaHash, bytes32 preCodeHash
    );
    /// `deltaIndex` is the index of the contract's delta-chain tip after the receipt: the new
    /// delta's index when `deltaHash` is non-zero.
    event ReceiptVerified(
        bytes32 indexed taskId,
        bytes32 indexed scAddr,
        bytes32 deltaHash,
        uint256 deltaIndex,
        bytes32 outputHash,
        uint64 gasUsed,
        address indexed signer
    );
    /// The batch as submitted; the non-zero delta hashes of success entries were appended in
    /// order starting at `firstDeltaIndex`.
    event ReceiptsVerified(
        bytes32 indexed scAddr,
        bytes32[] taskIds,
        bytes32[] deltaHashes,
        bytes32[] outputHashes,
        uint64[] gasUsed,
        uint8[] statuses,
        uint256 firstDeltaIndex,
        address indexed signer
    );
    event ReceiptFailed(
        bytes32 indexed taskId,
        bytes32 indexed scAddr,
        bytes32 outputHash,
        uint64 gasUsed,
        address indexed signer
    );
    /// The receipt verified but its Ethereum callback failed: fees settled, no delta appended
    /// (for a deploy, the contract is not registered).
    event ReceiptFailedETH(
        bytes32 indexed taskId,
        bytes32 indexed scAddr,
        bytes32 deltaHash,
        bytes32 outputHash,
        uint64 gasUsed,
        address ethAddress,
        address indexed signer
    );
    /// The fee and escrowed value of a task nobody committed returned to its sender.
    event TaskFeeReturned(bytes32 indexed taskId, address indexed sender, uint256 fee);
    /// A secret contract paid `amount` from its balance to `to`'s prepaid balance.
    event Paid(bytes32 indexed scAddr, address indexed to, uint256 amount);

    // =============================================================================================
    // Errors

    error InvalidConfiguration(string reason);
    error NotOwner();
    error GasPriceTooLow(uint64 gasPx, uint64 minGasPrice);
    error GasLimitTooHigh(uint64 gasLimit, uint64 maxGasLimit);
    error ActiveSetFull(uint256 max);
    /// The report data of the evidence does not bind the caller (the operator) and the
    /// principal: the evidence was made for another operator (e.g. copied from a pending
    /// registration).
    error OperatorNotBound(address operator);
    /// The receipt's task has a sequence number below its contract's next one (a receipt of an
    /// earlier-recorded task landed first, or it was replayed).
    error ReceiptOutOfOrder(bytes32 taskId, uint256 seq, uint256 nextReceiptSeq);
    /// The task was recorded for another contract.
    error TaskOfAnotherContract(bytes32 taskId, bytes32 scAddr);
    error ReentrantCall();
    error TokenTransferFailed();
    error PermitFailed();
    error ZeroAmount();
    error InsufficientBalance(uint256 available, uint256 requested);
    // attestation and workers
    error EvidenceKindDisabled(uint8 evidenceKind);
    error ZeroSigner();
    error SignerIsPrincipal();
    error SignerTaken(address signer, address operator);
    error AlreadyRegistered();
    error NotRegistered();
    error AlreadyLoggedIn();
    error NotLoggedIn();
    error WorkerLoggedIn();
    error StakeLocked(uint256 loggedOutAt, uint256 epochSnapshotBlock);
    // epochs and selection
    error PrincipalNotRegistered();
    error EpochNotOver(uint256 nextEpochBlock);
    error SnapshotTooOld(uint256 snapshotBlock, uint256 epochFirstBlock);
    error SnapshotInFuture(uint256 snapshotBlock, uint256 currentBlock);
    error InvalidPrincipalSignature(address recovered);
    error NoEpoch();
    error NoEpochAtBlock(uint256 blockNumber);
    error EpochNotFound(uint256 nonce);
    // task records
    error WrongEpoch(uint256 firstBlockNumber, uint256 currentFirstBlockNumber);
    error NoActiveWorkers();
    error WrongTaskNonce(uint256 expected, uint256 given);
    error ZeroGasLimit();
    error EmptyBatch();
    error LengthMismatch();
    error TaskNotOpen(bytes32 taskId, TaskStatus status);
    error TaskNotTimedOut(bytes32 taskId, uint256 timeoutBlock);
    // receipts
    error NotADeployTask(bytes32 taskId);
    error NotAComputeTask(bytes32 taskId);
    error DeployAddressMismatch(bytes32 scAddr, bytes32 taskId);
    error UnknownSecretContract(bytes32 scAddr);
    error GasUsedAboveLimit(bytes32 taskId, uint64 gasUsed, uint64 gasLimit);
    error InvalidReceiptSignature();
    error WorkerNotSelected(address signer);
    error BatchSpansEpochs(bytes32 taskId);
    error InvalidReceiptStatus(bytes32 taskId, uint8 status);
    error FailedTaskWithDelta(bytes32 taskId);
    error InsufficientGasForCallback(uint256 available, uint256 needed);
    error PayoutBeyondBalance(bytes32 scAddr, uint256 amount, uint256 balance);

    modifier nonReentrant() {
        if (locked) revert ReentrantCall();
        locked = true;
        _;
        locked = false;
    }

    constructor(address token_, uint256 timeoutBlocks_, uint256 groupSize_) {
        if (token_ == address(0)) revert InvalidConfiguration("token is the zero address");
        if (timeoutBlocks_ == 0) revert InvalidConfiguration("timeoutBlocks is zero");
        if (groupSize_ == 0) revert InvalidConfiguration("groupSize is zero");
        token = IEnigmaToken(token_);
        timeoutBlocks = timeoutBlocks_;
        groupSize = groupSize_;
    }


    // =============================================================================================
    // Shared internals

    function _group(Epoch storage e, bytes32 scAddr) internal view returns (address[] memory group) {
        Member[] storage members = e.members;
        uint256 n = members.length;
        uint256 size = groupSize < n ? groupSize : n;
        group = new address[](size);
        if (size == 0) return group;
        uint256 total = members[n - 1].cumulativeStake;
        uint256 seed = e.seed;
        uint256 found;
        uint256 rounds = size * SELECTION_ROUNDS_PER_MEMBER;
        for (uint256 nonce; found < size && nonce < rounds; ++nonce) {
            uint256 r = uint256(keccak256(abi.encode(seed, scAddr, nonce))) % total;
            // First member whose cumulative stake exceeds r; cumulative stakes strictly
            // increase (every stake is positive), so this is the walk of the specification.
            uint256 low;
            uint256 high = n - 1;
            while (low < high) {
                uint256 mid = (low + high) / 2;
                if (members[mid].cumulativeStake > r) high = mid;
                else low = mid + 1;
            }
            address pick = members[low].signer;
            bool chosen;
            for (uint256 j; j < found; ++j) {
                if (group[j] == pick) {
                    chosen = true;
                    break;
                }
            }
            if (!chosen) group[found++] = pick;
        }
        assembly ("memory-safe") {
            mstore(group, found)
        }
    }

    function _currentEpochFor(uint256 firstBlockNumber) internal view returns (uint32) {
        uint256 n = epochs.length;
        if (n == 0) revert NoEpoch();
        Epoch storage e = epochs[n - 1];
        if (e.firstBlockNumber != firstBlockNumber) {
            revert WrongEpoch(firstBlockNumber, e.firstBlockNumber);
        }
        if (e.members.length == 0) revert NoActiveWorkers();
        return uint32(n - 1);
    }

    function _checkLimits(uint64 gasLimit, uint64 gasPx) internal view {
        if (gasLimit == 0) revert ZeroGasLimit();
        if (gasLimit > maxGasLimit) revert GasLimitTooHigh(gasLimit, maxGasLimit);
        if (gasPx < minGasPrice) revert GasPriceTooLow(gasPx, minGasPrice);
    }

    /// The next sequence number of deployed contract `scAddr`.
    function _nextSeq(bytes32 scAddr) internal returns (uint256 seq) {
        SecretContract storage sc = _deployed(scAddr);
        seq = sc.taskCount;
        sc.taskCount = uint32(seq + 1);
    }

    function _deployed(bytes32 scAddr) internal view returns (SecretContract storage sc) {
        sc = contracts[scAddr];
        if (sc.owner == address(0)) revert UnknownSecretContract(scAddr);
    }

    /// The receipt's signer, required to be in the group selected for `scAddr` in `epoch`.
    function _selectedSigner(uint256 epoch, bytes32 scAddr, bytes32 digest, bytes calldata sig)
        internal
        view
        returns (address signer)
    {
        signer = Signatures.recover(digest, sig);
        if (signer == address(0)) revert InvalidReceiptSignature();
        address[] memory group = _group(epochs[epoch], scAddr);
        for (uint256 i; i < group.length; ++i) {
            if (group[i] == signer) return signer;
        }
        revert WorkerNotSelected(signer);
    }

    /// Credits the stake of the worker whose enclave signs as `signer`. The selection weight is
    /// not changed (see deposit).
    function _credit(address signer, uint256 amount) internal {
        if (amount != 0) workers[operatorOf[signer]].balance += uint128(amount);
    }

    /// Settles a successful task's money: its value joins the contract's balance, then each
    /// payout (`to(20) ‖ uint128 amount(16)`, as the enclave signed them) moves from that balance
    /// to the recipient's prepaid balance, never beyond it.
    function _pay(SecretContract storage sc, bytes32 scAddr, uint256 value, bytes calldata payouts)
        internal
    {
        if (value == 0 && payouts.length == 0) return;
        // (A ragged tail cannot be signed by an enclave; its slice would revert anyway.)
        uint256 balance = sc.balance + value;
        for (uint256 o; o < payouts.length; o += PAYOUT_SIZE) {
            address to = address(bytes20(payouts[o:o + 20]));
            uint256 amount = uint128(bytes16(payouts[o + 20:o + PAYOUT_SIZE]));
            if (amount > balance) revert PayoutBeyondBalance(scAddr, amount, balance);
            balance -= amount;
            accounts[to].balance += uint128(amount);
            emit Paid(scAddr, to, amount);
        }
        sc.balance = uint128(balance);
    }

    function _escrow(Account storage a, uint256 fee) internal {
        uint256 balance = a.balance;
        if (balance >= fee) {
            a.balance = uint128(balance - fee);
        } else {
            _pull(fee);
        }
    }

    function _pull(uint256 amount) internal {
        if (amount != 0 && !token.transferFrom(msg.sender, address(this), amount)) {
            revert TokenTransferFailed();
        }
    }

    function _appendDeltas(SecretContract storage sc, bytes32[] memory hashes, uint256 count)
        internal
    {
        if (count == 0) return;
        uint256 first = sc.deltaCount;
        if (count < CHUNK_MIN) {
            for (uint256 i; i < count; ++i) {
                sc.inlineDeltas[first + i] = hashes[i];
            }
        } else {
            bytes32 listHash;
            assembly ("memory-safe") {
                listHash := keccak256(add(hashes, 0x20), mul(count, 0x20))
            }
            sc.chunks.push(
                DeltaChunk(
                    uint32(first), uint32(count), uint40(block.number), bytes19(listHash)
                )
            );
        }
        sc.deltaCount = uint32(first + count);
        sc.lastDeltaHash = hashes[count - 1];
    }

    /// Calls `target` with `payload` and CALLBACK_GAS gas, copying no return data (a callee
    /// cannot grief with a huge return). The token and this contract are never valid targets: a
    /// secret contract must not be able to move the stakes and fees held here.
    function _callback(address target, bytes calldata payload) internal returns (bool ok) {
        if (target == address(token) || target == address(this) || target.code.length == 0) {
            return false;
        }
        bytes memory data = payload;
        // The callee must be able to get the full CALLBACK_GAS despite the 63/64 rule, and the
        // reserve must remain for recording the outcome.
        uint256 needed = CALLBACK_GAS + CALLBACK_GAS / 63 + CALLBACK_RESERVE;
        uint256 available = gasleft();
        if (available < needed) revert InsufficientGasForCallback(available, needed);
        assembly ("memory-safe") {
            ok := call(CALLBACK_GAS, target, 0, add(data, 0x20), mload(data), 0, 0)
        }
    }
}
