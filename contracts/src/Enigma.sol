// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAttestationVerifier} from "./IAttestationVerifier.sol";
import {IEnigmaToken} from "./IEnigmaToken.sol";
import {Signatures} from "./Signatures.sol";
import {Digests} from "./Digests.sol";
import {EnigmaCore} from "./EnigmaCore.sol";
import {EnigmaBatches} from "./EnigmaBatches.sol";

/// The consensus layer of enigma (PROTOCOL.md section 5): the worker registry and stakes, the
/// epochs and worker selection, task records with escrowed fees, enclave-signed receipts, the
/// secret-contract registry with each contract's chain of state-delta hashes, and Ethereum
/// callbacks from secret contracts.
///
/// Amounts are ENG grains. Every amount held here came from a token transfer in, so every
/// balance is bounded by the token's fixed supply (1.5e16) and the narrow integer types used for
/// packing (uint96/uint128) cannot overflow.
///
/// The types, storage, events and errors are `EnigmaCore`'s. Calls to functions this contract does
/// not have go to its extension `EnigmaBatches` (deployed by the constructor) by DELEGATECALL, on
/// this contract's storage: record batches committed as one Merkle root and their receipts, which
/// do not fit under EIP-170's code-size limit beside the rest.
contract Enigma is EnigmaCore {
    /// View of a worker.
    struct WorkerInfo {
        address operator;
        address signer;
        WorkerStatus status;
        uint8 evidenceKind;
        bytes32 mrEnclave;
        uint256 balance;
        uint256 weight;
        uint256 registeredAt;
        uint256 loggedOutAt;
    }

    /// View of an epoch. `nonce` is its index (0 for the first epoch).
    struct EpochInfo {
        uint256 nonce;
        uint256 seed;
        uint256 firstBlockNumber;
        uint256 snapshotBlock;
        address[] workers;
        uint256[] stakes;
    }

    /// View of a task record.
    struct TaskRecord {
        address sender;
        bool isDeploy;
        TaskStatus status;
        bytes32 inputsHash;
        uint64 gasLimit;
        uint64 gasPx;
        uint256 epoch;
        uint256 firstBlockNumber;
        uint256 createdAt;
        uint256 seq;
        bytes12 scTag;
        uint256 value;
    }

    /// View of a secret contract.
    struct SecretContractInfo {
        address owner;
        bytes32 codeHash;
        uint256 deltaCount;
        bytes32 lastDeltaHash;
        uint256 taskCount;
        uint256 nextReceiptSeq;
        uint256 balance;
    }

    /// Minimum number of blocks between two epochs.
    uint256 public immutable epochSize;
    /// The key manager enclave's signer address.
    address public immutable principal;
    /// Verifier for evidence kind 0 (zero: simulation evidence disabled).
    IAttestationVerifier public immutable simulationVerifier;
    /// Verifier for evidence kind 1 (zero: IAS evidence disabled).
    IAttestationVerifier public immutable iasVerifier;
    /// The extension (`EnigmaBatches`) that unknown calls go to.
    address internal immutable batches;

    constructor(
        address token_,
        uint256 epochSize_,
        uint256 timeoutBlocks_,
        address principal_,
        uint256 groupSize_,
        address simulationVerifier_,
        address iasVerifier_,
        uint64 minGasPrice_,
        uint64 maxGasLimit_
    ) EnigmaCore(token_, timeoutBlocks_, groupSize_) {
        if (epochSize_ == 0) revert InvalidConfiguration("epochSize is zero");
        if (principal_ == address(0)) revert InvalidConfiguration("principal is the zero address");
        epochSize = epochSize_;
        principal = principal_;
        batches = address(new EnigmaBatches(token_, timeoutBlocks_, groupSize_));
        simulationVerifier = IAttestationVerifier(simulationVerifier_);
        iasVerifier = IAttestationVerifier(iasVerifier_);
        owner = msg.sender;
        _setTaskLimits(minGasPrice_, maxGasLimit_);
    }

    /// Runs the extension's code on this contract's storage; its answer or revert passes through.
    fallback() external {
        address extension = batches;
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, 0, calldatasize())
            let ok := delegatecall(gas(), extension, p, calldatasize(), 0, 0)
            returndatacopy(p, 0, returndatasize())
            if iszero(ok) { revert(p, returndatasize()) }
            return(p, returndatasize())
        }
    }

    // =============================================================================================
    // Owner: task limits

    /// Sets the lowest gas price and the highest gas limit a task record may carry. A task that
    /// pays nothing, or asks for unbounded work, is refused when recorded.
    function setTaskLimits(uint64 minGasPrice_, uint64 maxGasLimit_) external {
        if (msg.sender != owner) revert NotOwner();
        _setTaskLimits(minGasPrice_, maxGasLimit_);
    }

    /// Hands the owner's role to `owner_` (the zero address renounces it: the limits are then
    /// fixed).
    function setOwner(address owner_) external {
        if (msg.sender != owner) revert NotOwner();
        owner = owner_;
        emit OwnerChanged(owner_);
    }

    function _setTaskLimits(uint64 minGasPrice_, uint64 maxGasLimit_) private {
        if (maxGasLimit_ == 0) revert InvalidConfiguration("maxGasLimit is zero");
        minGasPrice = minGasPrice_;
        maxGasLimit = maxGasLimit_;
        emit TaskLimitsSet(minGasPrice_, maxGasLimit_);
    }

    // =============================================================================================
    // Workers

    /// Registers the caller (the operating address) as a worker whose enclave signs with
    /// `signer`, after `evidence` of kind `evidenceKind` (0 simulation, 1 IAS) proves that
    /// `signer` belongs to an allowed worker enclave (product id 1) whose report data binds the
    /// caller and this network's principal (so copied evidence registers nobody else).
    function register(address signer, uint8 evidenceKind, bytes calldata evidence)
        external
        nonReentrant
    {
        if (signer == address(0)) revert ZeroSigner();
        if (signer == principal) revert SignerIsPrincipal();
        Worker storage w = workers[msg.sender];
        if (w.status != WorkerStatus.Unregistered) revert AlreadyRegistered();
        address bound = operatorOf[signer];
        if (bound != address(0) && bound != msg.sender) revert SignerTaken(signer, bound);

        (bytes32 mrEnclave, bytes32 binding) =
            _verifier(evidenceKind).verify(signer, WORKER_PRODUCT_ID, evidence);
        if (binding != Digests.reportBinding(msg.sender, principal)) {
            revert OperatorNotBound(msg.sender);
        }

        operatorOf[signer] = msg.sender;
        w.signer = signer;
        w.status = WorkerStatus.LoggedOut;
        w.evidenceKind = evidenceKind;
        w.registeredAt = uint40(block.number);
        w.mrEnclave = mrEnclave;
        if (!w.listed) {
            w.listed = true;
            workerList.push(msg.sender);
        }
        emit Registered(msg.sender, signer, evidenceKind, mrEnclave, evidence);
    }

    /// Records the key manager's attestation: `evidence` must prove that `principal` belongs to
    /// an allowed key-manager enclave (product id 2). Anyone may submit it (the evidence is the
    /// proof); epochs can be set only after it.
    function registerPrincipal(uint8 evidenceKind, bytes calldata evidence) external nonReentrant {
        (bytes32 mrEnclave,) =
            _verifier(evidenceKind).verify(principal, KEY_MANAGER_PRODUCT_ID, evidence);
        principalRegistered = true;
        principalMrEnclave = mrEnclave;
        emit PrincipalRegistered(principal, evidenceKind, mrEnclave, evidence);
    }

    /// Adds `amount` ENG (transferred from the caller) to the caller's stake. While logged in,
    /// the new balance becomes the selection weight for epochs from this block on; `amount` may
    /// be zero to bring earned fees into the weight.
    function deposit(uint256 amount) external nonReentrant {
        Worker storage w = workers[msg.sender];
        if (w.status == WorkerStatus.Unregistered) revert NotRegistered();
        uint256 balance = w.balance + amount;
        w.balance = uint128(balance);
        if (w.status == WorkerStatus.LoggedIn) _checkpoint(w, balance);
        _pull(amount);
        emit DepositSuccessful(msg.sender, amount, balance);
    }

    /// Pays `amount` of the caller's stake back, only when the caller has been logged out since
    /// before the current epoch: at or before the block its worker list was taken from
    /// (snapshotBlock), so the current epoch cannot select it.
    function withdraw(uint256 amount) external nonReentrant {
        Worker storage w = workers[msg.sender];
        if (!w.listed) revert NotRegistered();
        if (w.status == WorkerStatus.LoggedIn) revert WorkerLoggedIn();
        uint256 n = epochs.length;
        if (n != 0) {
            uint256 snapshot = epochs[n - 1].snapshotBlock;
            if (w.loggedOutAt > snapshot) revert StakeLocked(w.loggedOutAt, snapshot);
        }
        uint256 balance = w.balance;
        if (amount > balance) revert InsufficientBalance(balance, amount);
        balance -= amount;
        w.balance = uint128(balance);
        _push(msg.sender, amount);
        emit WithdrawSuccessful(msg.sender, amount, balance);
    }

    /// Joins the selection from the next epoch on, weighted by the current stake.
    function login() external nonReentrant {
        Worker storage w = workers[msg.sender];
        if (w.status == WorkerStatus.Unregistered) revert NotRegistered();
        if (w.status == WorkerStatus.LoggedIn) revert AlreadyLoggedIn();
        if (activeIndex[msg.sender] == 0) {
            if (activeList.length >= MAX_ACTIVE_WORKERS) revert ActiveSetFull(MAX_ACTIVE_WORKERS);
            activeList.push(msg.sender);
            activeIndex[msg.sender] = activeList.length;
        }
        w.status = WorkerStatus.LoggedIn;
        _checkpoint(w, w.balance);
        emit LoggedIn(msg.sender, w.signer);
    }

    /// Leaves the selection from the next epoch on.
    function logout() external nonReentrant {
        Worker storage w = workers[msg.sender];
        if (w.status != WorkerStatus.LoggedIn) revert NotLoggedIn();
        w.status = WorkerStatus.LoggedOut;
        w.loggedOutAt = uint64(block.number);
        _checkpoint(w, 0);
        emit LoggedOut(msg.sender, w.signer);
    }

    /// Ends the registration (the stake stays withdrawable under the usual rule). The operator
    /// may register again later, with this or another signer.
    function unregister() external nonReentrant {
        Worker storage w = workers[msg.sender];
        if (w.status == WorkerStatus.Unregistered) revert NotRegistered();
        if (w.status == WorkerStatus.LoggedIn) revert WorkerLoggedIn();
        w.status = WorkerStatus.Unregistered;
        emit Unregistered(msg.sender, w.signer);
    }

    // =============================================================================================
    // Users' prepaid balance

    /// Adds `amount` ENG (transferred from the caller, who approved this contract) to the
    /// caller's prepaid balance, from which task fees are escrowed.
    function depositBalance(uint256 amount) external nonReentrant {
        _depositBalance(amount);
    }

    /// `depositBalance` in one transaction: the ERC-2612 permit for `amount` is applied first.
    /// A permit already used (e.g. front-run) is fine as long as the allowance is there.
    function depositBalanceWithPermit(
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant {
        try token.permit(msg.sender, address(this), amount, deadline, v, r, s) {}
        catch {
            if (token.allowance(msg.sender, address(this)) < amount) revert PermitFailed();
        }
        _depositBalance(amount);
    }

    function withdrawBalance(uint256 amount) external nonReentrant {
        Account storage a = accounts[msg.sender];
        uint256 balance = a.balance;
        if (amount > balance) revert InsufficientBalance(balance, amount);
        balance -= amount;
        a.balance = uint128(balance);
        _push(msg.sender, amount);
        emit BalanceWithdrawn(msg.sender, amount, balance);
    }

    // =============================================================================================
    // Epochs

    /// Starts a new epoch with the key manager's `seed`. The workers and stakes are the active
    /// workers as of block `blockNumber` (getActiveWorkers(blockNumber)), which must lie in the
    /// current epoch and not in the future; `signature` is the principal's over
    /// Digests.epoch(seed, nonce, blockNumber, groupSize, signers, stakes) with `nonce` the new
    /// epoch's index (docs/api.md §4). Anyone may submit it: the signature is the authorization.
    function setWorkersParams(uint256 blockNumber, uint256 seed, bytes calldata signature)
        external
        nonReentrant
    {
        if (!principalRegistered) revert PrincipalNotRegistered();
        uint256 nonce = epochs.length;
        if (nonce != 0) {
            uint256 first = epochs[nonce - 1].firstBlockNumber;
            if (block.number < first + epochSize) revert EpochNotOver(first + epochSize);
            if (blockNumber < first) revert SnapshotTooOld(blockNumber, first);
        }
        if (blockNumber > block.number) revert SnapshotInFuture(blockNumber, block.number);

        (address[] memory signers, uint256[] memory stakes) = _activeWorkers(blockNumber);
        address recovered = Signatures.recover(
            Digests.epoch(seed, nonce, blockNumber, groupSize, signers, stakes), signature
        );
        if (recovered != principal) revert InvalidPrincipalSignature(recovered);

        Epoch storage e = epochs.push();
        e.seed = seed;
        e.firstBlockNumber = uint64(block.number);
        e.snapshotBlock = uint64(blockNumber);
        uint256 cumulative;
        for (uint256 i; i < signers.length; ++i) {
            cumulative += stakes[i];
            e.members.push(Member(signers[i], uint96(cumulative)));
        }
        _pruneActive(blockNumber);
        emit WorkersParameterized(seed, block.number, nonce, signers, stakes);
    }

    // =============================================================================================
    // Task records

    /// Records a deployment task; its id, and the new contract's address, is
    /// keccak256(abi.encodePacked(sender, uint256(nonce))). `nonce` must be the caller's task
    /// counter (so the client knows the address before sending).
    function createDeploymentTaskRecord(
        bytes32 inputsHash,
        uint64 gasLimit,
        uint64 gasPx,
        uint256 firstBlockNumber,
        uint256 nonce
    ) external nonReentrant returns (bytes32 taskId) {
        Account storage a = accounts[msg.sender];
        if (nonce != a.taskNonce) revert WrongTaskNonce(a.taskNonce, nonce);
        uint32 epoch = _currentEpochFor(firstBlockNumber);
        _checkLimits(gasLimit, gasPx);
        taskId = keccak256(abi.encodePacked(msg.sender, nonce));
        _storeTask(taskId, inputsHash, gasLimit, gasPx, epoch, true, taskId, 0, 0);
        a.taskNonce = uint64(nonce + 1);
        _escrow(a, uint256(gasLimit) * gasPx);
        emit TaskRecordCreated(
            taskId, taskId, inputsHash, gasLimit, gasPx, msg.sender, firstBlockNumber, true, 0
        );
    }

    /// Records a compute task on contract `scAddr` (deployed); its id is
    /// keccak256(abi.encodePacked(sender, uint256(nonce))), where `nonce` must be the caller's
    /// task counter (the client binds its encrypted inputs to the id), and it takes the
    /// contract's next sequence number: its receipt must land after those of the contract's
    /// tasks recorded before it. `value` ENG is escrowed with the fee: on success it joins the
    /// contract's balance, otherwise it returns to the sender.
    function createTaskRecord(
        bytes32 scAddr,
        bytes32 inputsHash,
        uint64 gasLimit,
        uint64 gasPx,
        uint256 firstBlockNumber,
        uint256 nonce,
        uint256 value
    ) external nonReentrant returns (bytes32 taskId) {
        uint32 epoch = _currentEpochFor(firstBlockNumber);
        _checkLimits(gasLimit, gasPx);
        Account storage a = accounts[msg.sender];
        if (nonce != a.taskNonce) revert WrongTaskNonce(a.taskNonce, nonce);
        taskId = keccak256(abi.encodePacked(msg.sender, nonce));
        uint256 seq = _nextSeq(scAddr);
        _storeTask(taskId, inputsHash, gasLimit, gasPx, epoch, false, scAddr, seq, value);
        a.taskNonce = uint64(nonce + 1);
        _escrow(a, uint256(gasLimit) * gasPx + value);
        emit TaskRecordCreated(
            taskId, scAddr, inputsHash, gasLimit, gasPx, msg.sender, firstBlockNumber, false, seq
        );
    }

    /// Records several compute tasks (each on its contract, in the order given) with consecutive
    /// nonces from `nonce` (the caller's task counter), escrowing their fees and values together.
    function createTaskRecords(
        bytes32[] calldata scAddrs,
        bytes32[] calldata inputsHashes,
        uint64[] calldata gasLimits,
        uint64 gasPx,
        uint256 firstBlockNumber,
        uint256 nonce,
        uint256[] calldata values
    ) external nonReentrant returns (bytes32[] memory taskIds) {
        uint256 n = inputsHashes.length;
        if (n == 0) revert EmptyBatch();
        if (gasLimits.length != n || scAddrs.length != n || values.length != n) {
            revert LengthMismatch();
        }
        uint32 epoch = _currentEpochFor(firstBlockNumber);
        Account storage a = accounts[msg.sender];
        if (nonce != a.taskNonce) revert WrongTaskNonce(a.taskNonce, nonce);
        uint256 fee;
        taskIds = new bytes32[](n);
        uint256[] memory seqs = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            uint64 gasLimit = gasLimits[i];
            _checkLimits(gasLimit, gasPx);
            bytes32 taskId = keccak256(abi.encodePacked(msg.sender, nonce + i));
            uint256 seq = _nextSeq(scAddrs[i]);
            _storeTask(
                taskId, inputsHashes[i], gasLimit, gasPx, epoch, false, scAddrs[i], seq, values[i]
            );
            taskIds[i] = taskId;
            seqs[i] = seq;
            fee += uint256(gasLimit) * gasPx + values[i];
        }
        a.taskNonce = uint64(nonce + n);
        _escrow(a, fee);
        emit TaskRecordsCreated(
            taskIds, scAddrs, seqs, inputsHashes, gasLimits, gasPx, msg.sender, firstBlockNumber
        );
    }

    /// Returns the whole fee (and the escrowed value) of a task nobody committed, to the
    /// sender's prepaid balance, once `timeoutBlocks` blocks have passed since its record.
    /// Anyone may call it.
    function returnFeesForTask(bytes32 taskId) external nonReentrant {
        Task storage t = _openTask(taskId);
        Task memory task = t;
        uint256 timeoutBlock = uint256(task.createdAt) + timeoutBlocks;
        if (block.number < timeoutBlock) revert TaskNotTimedOut(taskId, timeoutBlock);
        t.status = TaskStatus.ReceiptFailedReturn;
        uint256 amount = uint256(task.gasLimit) * task.gasPx + _valueOf(task, taskId);
        accounts[task.sender].balance += uint128(amount);
        emit TaskFeeReturned(taskId, task.sender, amount);
    }

    // =============================================================================================
    // Receipts

    /// Commits a successful deployment: registers the contract at address `taskId` with owner =
    /// the task's sender, `codeHash`, and delta 0 = `initDeltaHash` (even if zero). `sig` is the
    /// selected worker's over the deploy-success digest. With `ethAddress` non-zero, that
    /// contract is then called with `ethPayload`; if the call fails the deployment does not
    /// happen and the task ends ReceiptFailedETH (fees still settle).
    function deploySecretContract(
        bytes32 taskId,
        bytes32 preCodeHash,
        bytes32 codeHash,
        bytes32 initDeltaHash,
        uint64 gasUsed,
        bytes calldata ethPayload,
        address ethAddress,
        bytes calldata sig
    ) external nonReentrant {
        Task storage t = _openTask(taskId);
        if (!t.isDeploy) revert NotADeployTask(taskId);
        Task memory task = t;
        if (gasUsed > task.gasLimit) revert GasUsedAboveLimit(taskId, gasUsed, task.gasLimit);
        bytes32 digest = Digests.deploySuccess(
            taskId,
            task.inputsHash,
            codeHash,
            initDeltaHash,
            task.gasLimit,
            gasUsed,
            ethPayload,
            ethAddress
        );
        address signer = _selectedSigner(task.epoch, taskId, digest, sig);

        t.status = TaskStatus.ReceiptVerified;
        _settle(task, gasUsed, signer);
        SecretContract storage sc = contracts[taskId];
        sc.owner = task.sender;
        sc.deltaCount = 1;
        sc.codeHash = codeHash;
        sc.lastDeltaHash = initDeltaHash;
        if (initDeltaHash != bytes32(0)) sc.inlineDeltas[0] = initDeltaHash;
        contractList.push(taskId);

        if (ethAddress != address(0) && !_callback(ethAddress, ethPayload)) {
            delete contracts[taskId].inlineDeltas[0];
            delete contracts[taskId];
            contractList.pop();
            t.status = TaskStatus.ReceiptFailedETH;
            emit ReceiptFailedETH(
                taskId, taskId, initDeltaHash, codeHash, gasUsed, ethAddress, signer
            );
            return;
        }
        emit SecretContractDeployed(taskId, codeHash, initDeltaHash, preCodeHash);
        emit ReceiptVerified(taskId, taskId, initDeltaHash, 0, codeHash, gasUsed, signer);
    }

    /// Commits a successful compute task on contract `scAddr`. `sig` is the selected worker's
    /// over the compute-success digest, whose prevDeltaHash is the contract's current last delta
    /// hash. A non-zero `stateDeltaHash` is appended to the contract's delta chain. With
    /// `ethAddress` non-zero that contract is called with `ethPayload`; if the call fails the
    /// delta is not appended, the escrowed value returns to the sender and the task ends
    /// ReceiptFailedETH (fees still settle). Otherwise the value joins the contract's balance and
    /// `payouts` (36 bytes each: recipient, uint128 amount) are paid from it.
    function commitReceipt(
        bytes32 scAddr,
        bytes32 taskId,
        bytes32 stateDeltaHash,
        bytes32 outputHash,
        uint64 gasUsed,
        bytes calldata ethPayload,
        address ethAddress,
        bytes calldata payouts,
        bytes calldata sig
    ) external nonReentrant {
        Task storage t = _openTask(taskId);
        if (t.isDeploy) revert NotAComputeTask(taskId);
        Task memory task = t;
        if (gasUsed > task.gasLimit) revert GasUsedAboveLimit(taskId, gasUsed, task.gasLimit);
        SecretContract storage sc = _deployed(scAddr);
        _inOrder(sc, task, taskId, scAddr);
        bytes32 prevDeltaHash = sc.lastDeltaHash;
        uint256 value = _valueOf(task, taskId);
        bytes32 digest = Digests.computeSuccess(
            Digests.ComputeHead(
                taskId,
                scAddr,
                sc.codeHash,
                task.inputsHash,
                sc.deltaCount,
                prevDeltaHash,
                stateDeltaHash,
                outputHash
            ),
            task.gasLimit,
            gasUsed,
            ethPayload,
            ethAddress,
            value,
            payouts
        );
        address signer = _selectedSigner(task.epoch, scAddr, digest, sig);

        t.status = TaskStatus.ReceiptVerified;
        _settle(task, gasUsed, signer);
        uint256 count = sc.deltaCount;
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
            t.status = TaskStatus.ReceiptFailedETH;
            _returnValue(task, taskId);
            emit ReceiptFailedETH(
                taskId, scAddr, stateDeltaHash, outputHash, gasUsed, ethAddress, signer
            );
            return;
        }
        _pay(sc, scAddr, value, payouts);
        uint256 tip = stateDeltaHash != bytes32(0) ? count : count - 1;
        emit ReceiptVerified(taskId, scAddr, stateDeltaHash, tip, outputHash, gasUsed, signer);
    }

    /// Commits a failed task (deploy or compute; for a deploy `scAddr` is the task id). `sig` is
    /// the selected worker's over the failure digest, whose codeHash is zero for a deploy. The
    /// sender still pays for `gasUsed`.
    function commitTaskFailure(
        bytes32 scAddr,
        bytes32 taskId,
        bytes32 outputHash,
        uint64 gasUsed,
        bytes calldata sig
    ) external nonReentrant {
        Task storage t = _openTask(taskId);
        Task memory task = t;
        if (gasUsed > task.gasLimit) revert GasUsedAboveLimit(taskId, gasUsed, task.gasLimit);
        bytes32 codeHash;
        if (task.isDeploy) {
            if (scAddr != taskId) revert DeployAddressMismatch(scAddr, taskId);
        } else {
            SecretContract storage sc = _deployed(scAddr);
            _inOrder(sc, task, taskId, scAddr);
            codeHash = sc.codeHash;
        }
        uint256 value = _valueOf(task, taskId);
        bytes32 digest = Digests.failure(
            taskId, scAddr, task.inputsHash, codeHash, outputHash, task.gasLimit, gasUsed, value
        );
        address signer = _selectedSigner(task.epoch, scAddr, digest, sig);

        t.status = TaskStatus.ReceiptFailed;
        _settle(task, gasUsed, signer);
        if (value != 0) accounts[task.sender].balance += uint128(value);
        emit ReceiptFailed(taskId, scAddr, outputHash, gasUsed, signer);
    }

    /// Commits the receipts of several compute tasks of one contract and one epoch under one
    /// signature (the batch digest). `statuses[i]` is 1 for success and 0 for failure (whose
    /// delta hash must be zero); the non-zero delta hashes of successes extend the chain in
    /// order, their values join the contract's balance and their `payouts` are paid from it; the
    /// values of failures return to their senders. Batches carry no Ethereum callbacks.
    function commitReceipts(
        bytes32 scAddr,
        bytes32[] calldata taskIds,
        bytes32[] calldata deltaHashes,
        bytes32[] calldata outputHashes,
        uint64[] calldata gasUsed,
        uint8[] calldata statuses,
        bytes[] calldata payouts,
        bytes calldata sig
    ) external nonReentrant {
        uint256 n = taskIds.length;
        if (n == 0) revert EmptyBatch();
        if (
            deltaHashes.length != n || outputHashes.length != n || gasUsed.length != n
                || statuses.length != n || payouts.length != n
        ) revert LengthMismatch();
        SecretContract storage sc = _deployed(scAddr);
        bytes memory message =
            Digests.newBatch(n, scAddr, sc.codeHash, sc.deltaCount, sc.lastDeltaHash);
        bytes32[] memory appended = new bytes32[](n);
        uint256 appendedCount;
        uint256 epoch;
        uint256 credit;

        for (uint256 i; i < n; ++i) {
            bytes32 taskId = taskIds[i];
            Task storage t = tasks[taskId];
            Task memory task = t;
            if (task.status != TaskStatus.RecordCreated) revert TaskNotOpen(taskId, task.status);
            if (task.isDeploy) revert NotAComputeTask(taskId);
            _inOrder(sc, task, taskId, scAddr);
            if (i == 0) epoch = task.epoch;
            else if (task.epoch != epoch) revert BatchSpansEpochs(taskId);
            uint64 used = gasUsed[i];
            if (used > task.gasLimit) revert GasUsedAboveLimit(taskId, used, task.gasLimit);
            uint8 status = statuses[i];
            bytes32 deltaHash = deltaHashes[i];
            uint256 value = _valueOf(task, taskId);
            if (status == 1) {
                t.status = TaskStatus.ReceiptVerified;
                if (deltaHash != bytes32(0)) appended[appendedCount++] = deltaHash;
                _pay(sc, scAddr, value, payouts[i]);
            } else if (status == 0) {
                if (deltaHash != bytes32(0)) revert FailedTaskWithDelta(taskId);
                t.status = TaskStatus.ReceiptFailed;
                _returnValue(task, taskId);
            } else {
                revert InvalidReceiptStatus(taskId, status);
            }
            Digests.setBatchEntry(
                message,
                n,
                i,
                Digests.BatchEntry(
                    taskId,
                    task.inputsHash,
                    deltaHash,
                    outputHashes[i],
                    value,
                    keccak256(payouts[i]),
                    task.gasLimit,
                    used,
                    status
                )
            );
            credit += _refund(task, used);
        }

        address signer = _selectedSigner(epoch, scAddr, Digests.batchDigest(message), sig);
        uint256 firstDeltaIndex = sc.deltaCount;
        _appendDeltas(sc, appended, appendedCount);
        _credit(signer, credit);
        emit ReceiptsVerified(
            scAddr, taskIds, deltaHashes, outputHashes, gasUsed, statuses, firstDeltaIndex, signer
        );
    }

    // =============================================================================================
    // Views

    function getWorker(address operator) public view returns (WorkerInfo memory info) {
        Worker storage w = workers[operator];
        if (!w.listed) return info;
        uint256 n = w.weights.length;
        info = WorkerInfo({
            operator: operator,
            signer: w.signer,
            status: w.status,
            evidenceKind: w.evidenceKind,
            mrEnclave: w.mrEnclave,
            balance: w.balance,
            weight: n == 0 ? 0 : w.weights[n - 1].weight,
            registeredAt: w.registeredAt,
            loggedOutAt: w.loggedOutAt
        });
    }

    function getWorkerBySigner(address signer) external view returns (WorkerInfo memory) {
        return getWorker(operatorOf[signer]);
    }

    /// Number of operating addresses ever registered (the length of the registration order).
    function workerCount() external view returns (uint256) {
        return workerList.length;
    }

    /// The operating address at `index` in registration order.
    function workerAt(uint256 index) external view returns (address) {
        return workerList[index];
    }

    /// The workers and stakes an epoch snapshotted at `blockNumber` would hold: every member of
    /// the active set (in the set's own order) whose selection weight at the end of that block
    /// is non-zero, with that weight. This is exactly what the key manager signs for setWorkersParams(blockNumber, ..).
    function getActiveWorkers(uint256 blockNumber)
        external
        view
        returns (address[] memory signers, uint256[] memory stakes)
    {
        return _activeWorkers(blockNumber);
    }

    /// Number of epochs so far; also the nonce the next epoch's signature must use.
    function epochCount() external view returns (uint256) {
        return epochs.length;
    }

    /// The first block at which setWorkersParams may be called again (0 before the first epoch).
    function nextEpochBlock() external view returns (uint256) {
        uint256 n = epochs.length;
        return n == 0 ? 0 : epochs[n - 1].firstBlockNumber + epochSize;
    }

    function getEpoch(uint256 nonce) public view returns (EpochInfo memory) {
        if (nonce >= epochs.length) revert EpochNotFound(nonce);
        Epoch storage e = epochs[nonce];
        uint256 n = e.members.length;
        address[] memory signers = new address[](n);
        uint256[] memory stakes = new uint256[](n);
        uint256 previous;
        for (uint256 i; i < n; ++i) {
            Member memory m = e.members[i];
            signers[i] = m.signer;
            stakes[i] = m.cumulativeStake - previous;
            previous = m.cumulativeStake;
        }
        return EpochInfo(nonce, e.seed, e.firstBlockNumber, e.snapshotBlock, signers, stakes);
    }

    function getCurrentEpoch() external view returns (EpochInfo memory) {
        uint256 n = epochs.length;
        if (n == 0) revert NoEpoch();
        return getEpoch(n - 1);
    }

    /// The epoch containing `blockNumber`: the last one whose firstBlockNumber <= blockNumber.
    function getEpochForBlock(uint256 blockNumber) external view returns (EpochInfo memory) {
        return getEpoch(_epochAt(blockNumber));
    }

    /// The signer addresses selected for contract `scAddr` in the epoch containing `blockNumber`.
    ///
    /// With the epoch's workers w[0..n) and stakes s[0..n), total = Σ s: for nonce = 0, 1, ...:
    /// r = uint256(keccak256(abi.encode(seed, scAddr, nonce))) % total; the pick is the first
    /// worker whose cumulative stake s[0] + ... + s[j] is strictly greater than r; it joins the
    /// group unless already in it. Drawing stops when the group has min(groupSize, n) members,
    /// or after SELECTION_ROUNDS_PER_MEMBER (32) · min(groupSize, n) draws, whichever is first
    /// (a bound that only matters for groupSize > 1 with very uneven stakes).
    function getWorkerGroup(uint256 blockNumber, bytes32 scAddr)
        external
        view
        returns (address[] memory)
    {
        return _group(epochs[_epochAt(blockNumber)], scAddr);
    }

    function getTaskRecord(bytes32 taskId) external view returns (TaskRecord memory record) {
        Task memory t = tasks[taskId];
        if (t.status == TaskStatus.RecordUndefined) return record;
        return TaskRecord({
            sender: t.sender,
            isDeploy: t.isDeploy,
            status: t.status,
            inputsHash: t.inputsHash,
            gasLimit: t.gasLimit,
            gasPx: t.gasPx,
            epoch: t.epoch,
            firstBlockNumber: epochs[t.epoch].firstBlockNumber,
            createdAt: t.createdAt,
            seq: t.seq,
            scTag: t.scTag,
            value: _valueOf(t, taskId)
        });
    }

    /// The caller-side task counter: the next task of `user` gets this nonce.
    function taskNonce(address user) external view returns (uint256) {
        return accounts[user].taskNonce;
    }

    function prepaidBalance(address user) external view returns (uint256) {
        return accounts[user].balance;
    }

    function getSecretContract(bytes32 scAddr) external view returns (SecretContractInfo memory) {
        SecretContract storage sc = contracts[scAddr];
        return SecretContractInfo(
            sc.owner,
            sc.codeHash,
            sc.deltaCount,
            sc.lastDeltaHash,
            sc.taskCount,
            sc.nextReceiptSeq,
            sc.balance
        );
    }

    function secretContractCount() external view returns (uint256) {
        return contractList.length;
    }

    /// Deployed contract addresses in deployment order, [start, stop) clamped to the count.
    function getSecretContractAddresses(uint256 start, uint256 stop)
        external
        view
        returns (bytes32[] memory addresses)
    {
        if (stop > contractList.length) stop = contractList.length;
        if (start >= stop) return addresses;
        addresses = new bytes32[](stop - start);
        for (uint256 i = start; i < stop; ++i) {
            addresses[i - start] = contractList[i];
        }
    }

    // =============================================================================================
    // Internals: workers and epochs

    function _verifier(uint8 evidenceKind) private view returns (IAttestationVerifier v) {
        if (evidenceKind == EVIDENCE_SIMULATION) v = simulationVerifier;
        else if (evidenceKind == EVIDENCE_IAS) v = iasVerifier;
        if (address(v) == address(0)) revert EvidenceKindDisabled(evidenceKind);
    }

    function _checkpoint(Worker storage w, uint256 weight) private {
        uint256 n = w.weights.length;
        if (n != 0 && w.weights[n - 1].fromBlock == block.number) {
            w.weights[n - 1].weight = uint128(weight);
        } else {
            w.weights.push(Checkpoint(uint64(block.number), uint128(weight)));
        }
    }

    /// The weight in force at the end of block `blockNumber`.
    function _weightAt(Worker storage w, uint256 blockNumber) private view returns (uint256) {
        Checkpoint[] storage cps = w.weights;
        uint256 high = cps.length;
        if (high == 0) return 0;
        Checkpoint memory last = cps[high - 1];
        if (last.fromBlock <= blockNumber) return last.weight;
        // Count the checkpoints at or before the block; the answer is the last of them.
        uint256 low;
        --high;
        while (low < high) {
            uint256 mid = (low + high) / 2;
            if (cps[mid].fromBlock <= blockNumber) low = mid + 1;
            else high = mid;
        }
        return low == 0 ? 0 : cps[low - 1].weight;
    }

    /// The documented worker loop: one pass over the active set (at most MAX_ACTIVE_WORKERS).
    function _activeWorkers(uint256 blockNumber)
        private
        view
        returns (address[] memory signers, uint256[] memory stakes)
    {
        uint256 n = activeList.length;
        signers = new address[](n);
        stakes = new uint256[](n);
        uint256 k;
        for (uint256 i; i < n; ++i) {
            Worker storage w = workers[activeList[i]];
            uint256 weight = _weightAt(w, blockNumber);
            if (weight != 0) {
                signers[k] = w.signer;
                stakes[k] = weight;
                ++k;
            }
        }
        assembly ("memory-safe") {
            mstore(signers, k)
            mstore(stakes, k)
        }
    }

    /// Drops from the active set the workers logged out with no weight at `blockNumber`: every
    /// later snapshot (they are never older than the current epoch) would list them with none.
    /// Removal swaps the last member in, after the epoch's list was taken.
    function _pruneActive(uint256 blockNumber) private {
        uint256 i;
        while (i < activeList.length) {
            address operator = activeList[i];
            Worker storage w = workers[operator];
            if (w.status != WorkerStatus.LoggedIn && _weightAt(w, blockNumber) == 0) {
                address last = activeList[activeList.length - 1];
                activeList[i] = last;
                activeIndex[last] = i + 1;
                activeList.pop();
                delete activeIndex[operator];
            } else {
                ++i;
            }
        }
    }

    function _epochAt(uint256 blockNumber) private view returns (uint256) {
        uint256 n = epochs.length;
        if (n == 0 || blockNumber < epochs[0].firstBlockNumber) revert NoEpochAtBlock(blockNumber);
        if (epochs[n - 1].firstBlockNumber <= blockNumber) return n - 1;
        uint256 low;
        uint256 high = n - 1;
        while (low < high) {
            uint256 mid = (low + high) / 2;
            if (epochs[mid].firstBlockNumber <= blockNumber) low = mid + 1;
            else high = mid;
        }
        return low - 1;
    }

    // =============================================================================================
    // Internals: tasks, receipts, fees

    function _storeTask(
        bytes32 taskId,
        bytes32 inputsHash,
        uint64 gasLimit,
        uint64 gasPx,
        uint32 epoch,
        bool isDeploy,
        bytes32 scAddr,
        uint256 seq,
        uint256 value
    ) private {
        if (value != 0) taskValues[taskId] = value;
        tasks[taskId] = Task({
            sender: msg.sender,
            status: TaskStatus.RecordCreated,
            isDeploy: isDeploy,
            epoch: epoch,
            createdAt: uint40(block.number),
            paid: value != 0,
            inputsHash: inputsHash,
            gasLimit: gasLimit,
            gasPx: gasPx,
            seq: uint32(seq),
            scTag: bytes12(scAddr)
        });
    }

    /// Requires a compute task's receipt to be of a task recorded for `scAddr`, at or after the
    /// contract's next sequence number; then moves that number past it.
    function _inOrder(SecretContract storage sc, Task memory task, bytes32 taskId, bytes32 scAddr)
        private
    {
        if (task.scTag != bytes12(scAddr)) revert TaskOfAnotherContract(taskId, scAddr);
        uint256 next = sc.nextReceiptSeq;
        if (task.seq < next) revert ReceiptOutOfOrder(taskId, task.seq, next);
        sc.nextReceiptSeq = task.seq + 1;
    }

    function _openTask(bytes32 taskId) private view returns (Task storage t) {
        t = tasks[taskId];
        if (t.status != TaskStatus.RecordCreated) revert TaskNotOpen(taskId, t.status);
    }

    /// Pays the worker gasUsed·gasPx and refunds the rest of the escrowed fee to the sender.
    function _settle(Task memory task, uint64 gasUsed, address signer) private {
        _credit(signer, _refund(task, gasUsed));
    }

    /// Refunds (gasLimit - gasUsed)·gasPx to the sender's prepaid balance; returns the worker's
    /// share, gasUsed·gasPx.
    function _refund(Task memory task, uint64 gasUsed) private returns (uint256 earned) {
        uint256 refund = uint256(task.gasLimit - gasUsed) * task.gasPx;
        if (refund != 0) accounts[task.sender].balance += uint128(refund);
        return uint256(gasUsed) * task.gasPx;
    }

    /// The value task `taskId` escrowed (zero for most tasks: read only when one was).
    function _valueOf(Task memory task, bytes32 taskId) private view returns (uint256) {
        return task.paid ? taskValues[taskId] : 0;
    }

    /// Returns a failed task's escrowed value to its sender.
    function _returnValue(Task memory task, bytes32 taskId) private {
        uint256 value = _valueOf(task, taskId);
        if (value != 0) accounts[task.sender].balance += uint128(value);
    }

    function _depositBalance(uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        Account storage a = accounts[msg.sender];
        uint256 balance = a.balance + amount;
        a.balance = uint128(balance);
        _pull(amount);
        emit BalanceDeposited(msg.sender, amount, balance);
    }

    function _push(address to, uint256 amount) private {
        if (amount != 0 && !token.transfer(to, amount)) revert TokenTransferFailed();
    }
}
