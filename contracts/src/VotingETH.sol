// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// A sample Ethereum contract driven by a secret contract through the Enigma bridge, in the
/// style of Discovery's VotingETH: polls are public, votes are cast privately in a secret
/// contract, and the secret contract's Ethereum callbacks (executed by `Enigma` after it
/// verifies the enclave-signed receipt) record who voted and the tallied result.
///
/// `revertWith` always reverts, so a secret contract can request a callback that fails (to test
/// the ReceiptFailedETH path).
contract VotingETH {
    enum PollStatus {
        Undefined,
        InProgress,
        Passed,
        Rejected
    }

    struct Poll {
        address creator;
        uint8 quorumPercentage;
        PollStatus status;
        uint32 voteCount;
        uint256 talliedQuorum;
        string description;
    }

    /// The Enigma contract: the only caller allowed to validate votes and finalize polls.
    address public immutable enigma;

    Poll[] private polls;
    mapping(uint256 => mapping(address => bool)) public hasVoted;
    /// When a poll opened with a voting period closes (Unix seconds); 0 for the others.
    mapping(uint256 => uint256) public closesAt;

    event PollCreated(
        uint256 indexed pollId, address indexed creator, uint256 quorumPercentage, string description
    );
    event VoteValidated(uint256 indexed pollId, address indexed voter);
    event PollFinalized(uint256 indexed pollId, PollStatus status, uint256 talliedQuorum);

    error NotEnigma(address caller);
    error InvalidQuorum(uint256 quorumPercentage);
    error UnknownPoll(uint256 pollId);
    error PollNotInProgress(uint256 pollId, PollStatus status);
    error AlreadyVoted(uint256 pollId, address voter);
    error Requested(string reason);
    error PollStillOpen(uint256 pollId, uint256 closesAt);
    error PollExpired(uint256 pollId, uint256 closedAt);

    modifier onlyEnigma() {
        if (msg.sender != enigma) revert NotEnigma(msg.sender);
        _;
    }

    constructor(address enigma_) {
        enigma = enigma_;
    }

    /// Opens a poll that passes when the tallied share of yes votes reaches `quorumPercentage`.
    function createPoll(uint256 quorumPercentage, string calldata description)
        external
        returns (uint256 pollId)
    {
        pollId = _createPoll(quorumPercentage, description);
    }

    /// Discovery's `createPoll`: a poll open for `voteLength` seconds, which can be tallied only
    /// once it has closed.
    function createTimedPoll(
        uint256 quorumPercentage,
        string calldata description,
        uint256 voteLength
    ) external returns (uint256 pollId) {
        pollId = _createPoll(quorumPercentage, description);
        closesAt[pollId] = block.timestamp + voteLength;
    }

    /// Discovery's callback for a vote cast in secret: counts it while the poll is open.
    function validateCastVote(uint256 pollId) external onlyEnigma {
        Poll storage poll = _openPoll(pollId);
        uint256 closes = closesAt[pollId];
        if (closes != 0 && block.timestamp >= closes) revert PollExpired(pollId, closes);
        ++poll.voteCount;
        emit VoteValidated(pollId, address(0));
    }

    /// Discovery's callback for a tally: only once the poll's voting period is over.
    function validateTallyPoll(uint256 pollId, uint256 talliedQuorum) external onlyEnigma {
        uint256 closes = closesAt[pollId];
        if (block.timestamp < closes) revert PollStillOpen(pollId, closes);
        _finalize(pollId, talliedQuorum);
    }

    function _createPoll(uint256 quorumPercentage, string calldata description)
        private
        returns (uint256 pollId)
    {
        if (quorumPercentage == 0 || quorumPercentage > 100) revert InvalidQuorum(quorumPercentage);
        pollId = polls.length;
        polls.push(
            Poll({
                creator: msg.sender,
                quorumPercentage: uint8(quorumPercentage),
                status: PollStatus.InProgress,
                voteCount: 0,
                talliedQuorum: 0,
                description: description
            })
        );
        emit PollCreated(pollId, msg.sender, quorumPercentage, description);
    }

    /// Records that `voter` cast a (secret) vote in an open poll, at most once.
    function validateVote(uint256 pollId, address voter) external onlyEnigma {
        Poll storage poll = _openPoll(pollId);
        if (hasVoted[pollId][voter]) revert AlreadyVoted(pollId, voter);
        hasVoted[pollId][voter] = true;
        ++poll.voteCount;
        emit VoteValidated(pollId, voter);
    }

    /// Closes a poll with the percentage of yes votes the secret contract tallied.
    function finalizePoll(uint256 pollId, uint256 talliedQuorum) external onlyEnigma {
        _finalize(pollId, talliedQuorum);
    }

    function _finalize(uint256 pollId, uint256 talliedQuorum) private {
        Poll storage poll = _openPoll(pollId);
        PollStatus status =
            talliedQuorum >= poll.quorumPercentage ? PollStatus.Passed : PollStatus.Rejected;
        poll.status = status;
        poll.talliedQuorum = talliedQuorum;
        emit PollFinalized(pollId, status, talliedQuorum);
    }

    /// Always reverts with `reason`: a callback target that fails on demand.
    function revertWith(string calldata reason) external pure {
        revert Requested(reason);
    }

    function pollCount() external view returns (uint256) {
        return polls.length;
    }

    function getPoll(uint256 pollId) external view returns (Poll memory) {
        if (pollId >= polls.length) revert UnknownPoll(pollId);
        return polls[pollId];
    }

    function _openPoll(uint256 pollId) private view returns (Poll storage poll) {
        if (pollId >= polls.length) revert UnknownPoll(pollId);
        poll = polls[pollId];
        if (poll.status != PollStatus.InProgress) revert PollNotInProgress(pollId, poll.status);
    }
}
