// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IZkmlOracle} from "../interfaces/IZkmlOracle.sol";
import {ZkmlConsumer} from "../ZkmlConsumer.sol";

/// @title SmartJudgeDao
/// @notice Example (model-gated governance): a minimal DAO whose proposals execute only if
/// the members voted for them AND a verified "judge" model classifies them as approvable.
///
/// Lifecycle of a proposal (see {state}):
/// 1. {propose} (a member): an action (`target`, `value`, `data`) and the judge model's input
///    (`judgeInput`, felts describing the proposal; fixed at proposal time) -> Active.
/// 2. {vote} (each member once, while Active). When the voting period ends: Succeeded if
///    `forVotes >= quorum` and `forVotes > againstVotes`, else Defeated.
/// 3. {requestJudgement} (anyone, paying the oracle fee) on a Succeeded proposal -> Judging.
///    The oracle calls back with the verified outputs of the judge on `judgeInput`; the class
///    is their argmax (ties to the lower index): `approveClass` -> Approved, else Rejected.
///    A judgement that is never answered may be requested again after its deadline; its
///    fee goes back to whoever paid it with {reclaimJudgementFee}.
/// 4. {execute} (anyone) an Approved proposal -> Executed, then the call is made.
///
/// Members are fixed at construction, one vote each. No function loops over members or
/// proposals; the callback loops once over the model's outputs (a count fixed by the model).
contract SmartJudgeDao is ZkmlConsumer, ReentrancyGuard {
    /// @notice The gas the oracle gives the callback.
    uint32 public constant CALLBACK_GAS_LIMIT = 100_000;

    /// @notice Where a proposal stands.
    enum ProposalState {
        None,
        Active,
        Defeated,
        Succeeded,
        Judging,
        Approved,
        Rejected,
        Executed
    }

    /// @dev What is stored; Active/Defeated/Succeeded are derived from `Voting` and the time.
    enum Stage {
        None,
        Voting,
        Judging,
        Approved,
        Rejected,
        Executed
    }

    struct Proposal {
        address proposer;
        uint64 voteEnd;
        Stage stage;
        uint32 forVotes;
        uint32 againstVotes;
        address target;
        uint256 value;
        bytes data;
        uint256[] judgeInput;
        uint256 judgeRequestId;
        uint64 judgeDeadline;
    }

    // --- immutables ---

    bytes32 private immutable _modelId;
    uint256 private immutable _approveClass;
    uint256 private immutable _inputCount;
    uint32 private immutable _quorum;
    uint64 private immutable _votingPeriod;
    uint64 private immutable _judgeTtl;

    // --- state ---

    mapping(address account => bool) private _isMember;
    uint256 private _memberCount;
    uint256 private _proposalCount;
    mapping(uint256 proposalId => Proposal) private _proposals;
    mapping(uint256 proposalId => mapping(address member => bool)) private _hasVoted;
    mapping(uint256 requestId => uint256 proposalId) private _proposalOfRequest;
    mapping(uint256 requestId => address payer) private _payerOf;

    // --- events ---

    /// @notice `account` is a member (emitted at construction).
    event MemberAdded(address indexed account);
    /// @notice Ether arrived in the treasury.
    event Deposited(address indexed from, uint256 amount);
    /// @notice A proposal was made.
    event ProposalCreated(
        uint256 indexed proposalId,
        address indexed proposer,
        address target,
        uint256 value,
        bytes data,
        uint256[] judgeInput,
        uint64 voteEnd,
        string description
    );
    /// @notice `voter` voted on `proposalId`.
    event VoteCast(uint256 indexed proposalId, address indexed voter, bool support);
    /// @notice The unanswered judgement `requestId` was cancelled; `refund` wei went to `payer`.
    event JudgementFeeReclaimed(uint256 indexed requestId, address indexed payer, uint256 refund);
    /// @notice The judge model was asked about `proposalId` (oracle request `requestId`).
    event JudgementRequested(uint256 indexed proposalId, uint256 indexed requestId, uint64 deadline, uint256 fee);
    /// @notice The verified judgement of `proposalId` arrived.
    event JudgementReceived(
        uint256 indexed proposalId, uint256 indexed requestId, uint256 verifiedClass, bool approved
    );
    /// @notice `proposalId` was executed.
    event ProposalExecuted(uint256 indexed proposalId);

    // --- errors ---

    /// @notice A constructor or proposal argument is unusable.
    error SmartJudgeDaoInvalidConfig(string reason);
    /// @notice Only members may do this.
    error SmartJudgeDaoNotMember(address account);
    /// @notice The proposal is not in a state that allows this.
    error SmartJudgeDaoUnexpectedState(uint256 proposalId, ProposalState current);
    /// @notice `voter` already voted on `proposalId`.
    error SmartJudgeDaoAlreadyVoted(uint256 proposalId, address voter);
    /// @notice The judge input does not have the model's input count.
    error SmartJudgeDaoWrongInputCount(uint256 expected, uint256 actual);
    /// @notice The callback is for a request this DAO did not make (or no longer waits for).
    error SmartJudgeDaoUnknownRequest(uint256 requestId, bytes32 modelId);

    // --- constructor ---

    /// @param oracle_ The oracle (trusted: only it may call back).
    /// @param modelId_ The judge model.
    /// @param approveClass_ The class (output index) that approves execution.
    /// @param members_ The members, one vote each (no duplicates, no zero address).
    /// @param quorum_ The least number of "for" votes a proposal needs.
    /// @param votingPeriod_ Seconds a proposal is open for voting.
    /// @param judgeTtl_ Seconds a judgement request may wait for its proof.
    constructor(
        IZkmlOracle oracle_,
        bytes32 modelId_,
        uint256 approveClass_,
        address[] memory members_,
        uint32 quorum_,
        uint64 votingPeriod_,
        uint64 judgeTtl_
    ) ZkmlConsumer(oracle_) {
        IZkmlOracle.ModelConfig memory config = oracle_.getModel(modelId_).config;
        if (approveClass_ >= config.outputCount) revert SmartJudgeDaoInvalidConfig("approveClass out of range");
        if (quorum_ == 0 || quorum_ > members_.length) revert SmartJudgeDaoInvalidConfig("quorum out of range");
        if (votingPeriod_ == 0 || judgeTtl_ == 0) revert SmartJudgeDaoInvalidConfig("zero period");
        for (uint256 i = 0; i < members_.length; ++i) {
            address m = members_[i];
            if (m == address(0) || _isMember[m]) revert SmartJudgeDaoInvalidConfig("zero or duplicate member");
            _isMember[m] = true;
            emit MemberAdded(m);
        }
        _memberCount = members_.length;
        _modelId = modelId_;
        _approveClass = approveClass_;
        _inputCount = config.inputCount;
        _quorum = quorum_;
        _votingPeriod = votingPeriod_;
        _judgeTtl = judgeTtl_;
    }

    /// @notice Accepts Ether into the treasury. Emits {Deposited}.
    receive() external payable {
        emit Deposited(msg.sender, msg.value);
    }

    // --- governance ---

    /// @notice Proposes calling `target` with `value` wei and `data`, judged on `judgeInput`.
    /// Members only. Emits {ProposalCreated}.
    /// @param target The contract or account to call on execution.
    /// @param value Wei sent with the call (from the DAO's balance).
    /// @param data The call data.
    /// @param judgeInput The judge model's input felts describing this proposal.
    /// @param description Human-readable text (only in the event).
    /// @return proposalId Consecutive from 1.
    function propose(
        address target,
        uint256 value,
        bytes calldata data,
        uint256[] calldata judgeInput,
        string calldata description
    ) external returns (uint256 proposalId) {
        _onlyMember();
        if (target == address(0)) revert SmartJudgeDaoInvalidConfig("target is zero");
        if (judgeInput.length != _inputCount) revert SmartJudgeDaoWrongInputCount(_inputCount, judgeInput.length);
        proposalId = ++_proposalCount;
        Proposal storage p = _proposals[proposalId];
        p.proposer = msg.sender;
        p.voteEnd = uint64(block.timestamp) + _votingPeriod;
        p.stage = Stage.Voting;
        p.target = target;
        p.value = value;
        p.data = data;
        p.judgeInput = judgeInput;
        emit ProposalCreated(proposalId, msg.sender, target, value, data, judgeInput, p.voteEnd, description);
    }

    /// @notice Votes for (`support`) or against an Active proposal, once per member.
    /// Emits {VoteCast}.
    /// @param proposalId The proposal.
    /// @param support True for, false against.
    function vote(uint256 proposalId, bool support) external {
        _onlyMember();
        _expect(proposalId, ProposalState.Active);
        if (_hasVoted[proposalId][msg.sender]) revert SmartJudgeDaoAlreadyVoted(proposalId, msg.sender);
        _hasVoted[proposalId][msg.sender] = true;
        Proposal storage p = _proposals[proposalId];
        if (support) p.forVotes += 1;
        else p.againstVotes += 1;
        emit VoteCast(proposalId, msg.sender, support);
    }

    /// @notice Asks the judge model about a Succeeded proposal (or again, about one whose
    /// judgement expired unanswered); `msg.value` is the oracle fee. Emits {JudgementRequested}.
    /// @dev The oracle is trusted and `requestInference` calls nothing back; `nonReentrant` anyway.
    /// @param proposalId The proposal.
    /// @return requestId The oracle's request id.
    function requestJudgement(uint256 proposalId) external payable nonReentrant returns (uint256 requestId) {
        ProposalState current = state(proposalId);
        Proposal storage p = _proposals[proposalId];
        bool expired = current == ProposalState.Judging && block.timestamp > p.judgeDeadline;
        if (current != ProposalState.Succeeded && !expired) revert SmartJudgeDaoUnexpectedState(proposalId, current);
        if (expired) delete _proposalOfRequest[p.judgeRequestId];
        uint64 deadline = uint64(block.timestamp) + _judgeTtl;
        requestId = oracle().requestInference{value: msg.value}(
            _modelId, p.judgeInput, address(this), CALLBACK_GAS_LIMIT, deadline
        );
        p.stage = Stage.Judging;
        p.judgeRequestId = requestId;
        p.judgeDeadline = deadline;
        _proposalOfRequest[requestId] = proposalId;
        _payerOf[requestId] = msg.sender;
        emit JudgementRequested(proposalId, requestId, deadline, msg.value);
    }

    /// @notice Cancels judgement request `requestId` if it went unanswered (past its deadline,
    /// or the judge model deactivated: the oracle's refusal is passed on otherwise) and sends
    /// its fee back to whoever paid it (anyone may call). The proposal may then be judged
    /// again once that request's deadline has passed. Emits {JudgementFeeReclaimed}.
    /// @param request The oracle request made by {requestJudgement}, as the oracle's
    /// `InferenceRequested` emitted it (the oracle refuses other fields).
    /// @return refund The wei sent back.
    function reclaimJudgementFee(IZkmlOracle.Request calldata request) external nonReentrant returns (uint256 refund) {
        uint256 requestId = request.id;
        address payer = _payerOf[requestId];
        if (payer == address(0)) revert SmartJudgeDaoUnknownRequest(requestId, _modelId);
        delete _payerOf[requestId];
        refund = _cancelRequest(request);
        emit JudgementFeeReclaimed(requestId, payer, refund);
        if (refund != 0) Address.sendValue(payable(payer), refund);
    }

    /// @notice Executes an Approved proposal (anyone may): marks it Executed, then makes its
    /// call; a failing call reverts the whole execution (its error bubbled up, or
    /// `FailedCall`), which may be retried. Emits {ProposalExecuted}.
    /// @param proposalId The proposal.
    /// @return result What the call returned.
    function execute(uint256 proposalId) external nonReentrant returns (bytes memory result) {
        _expect(proposalId, ProposalState.Approved);
        Proposal storage p = _proposals[proposalId];
        p.stage = Stage.Executed;
        emit ProposalExecuted(proposalId);
        // A plain call, as OpenZeppelin's Governor makes it: `target` may be an account
        // without code (a payment); a revert is bubbled up.
        (bool ok, bytes memory ret) = p.target.call{value: p.value}(p.data);
        return Address.verifyCallResult(ok, ret);
    }

    // --- views ---

    /// @notice Where `proposalId` stands (None if it does not exist).
    function state(uint256 proposalId) public view returns (ProposalState) {
        Proposal storage p = _proposals[proposalId];
        Stage stage = p.stage;
        if (stage == Stage.None) return ProposalState.None;
        if (stage == Stage.Voting) {
            if (block.timestamp <= p.voteEnd) return ProposalState.Active;
            bool passed = p.forVotes >= _quorum && p.forVotes > p.againstVotes;
            return passed ? ProposalState.Succeeded : ProposalState.Defeated;
        }
        if (stage == Stage.Judging) return ProposalState.Judging;
        if (stage == Stage.Approved) return ProposalState.Approved;
        if (stage == Stage.Rejected) return ProposalState.Rejected;
        return ProposalState.Executed;
    }

    /// @notice The votes on `proposalId` (for, against) and when voting ends.
    function proposalVotes(uint256 proposalId)
        external
        view
        returns (uint32 forVotes, uint32 againstVotes, uint64 voteEnd)
    {
        Proposal storage p = _proposals[proposalId];
        return (p.forVotes, p.againstVotes, p.voteEnd);
    }

    /// @notice The action and judge input of `proposalId`.
    function proposalAction(uint256 proposalId)
        external
        view
        returns (address target, uint256 value, bytes memory data, uint256[] memory judgeInput)
    {
        Proposal storage p = _proposals[proposalId];
        return (p.target, p.value, p.data, p.judgeInput);
    }

    /// @notice The latest judgement request of `proposalId` and its deadline (zeroes if none).
    function judgement(uint256 proposalId) external view returns (uint256 requestId, uint64 deadline) {
        Proposal storage p = _proposals[proposalId];
        return (p.judgeRequestId, p.judgeDeadline);
    }

    /// @notice Whether `account` is a member.
    function isMember(address account) external view returns (bool) {
        return _isMember[account];
    }

    /// @notice Whether `member` voted on `proposalId`.
    function hasVoted(uint256 proposalId, address member) external view returns (bool) {
        return _hasVoted[proposalId][member];
    }

    /// @notice (model id, approve class, quorum, voting period, judge TTL, member count).
    function parameters() external view returns (bytes32, uint256, uint32, uint64, uint64, uint256) {
        return (_modelId, _approveClass, _quorum, _votingPeriod, _judgeTtl, _memberCount);
    }

    /// @notice The number of proposals made (the last proposal id).
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    // --- callback ---

    /// @dev A few storage writes and one event.
    function _onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata outputs) internal override {
        uint256 proposalId = _proposalOfRequest[requestId];
        if (proposalId == 0 || modelId != _modelId) revert SmartJudgeDaoUnknownRequest(requestId, modelId);
        delete _proposalOfRequest[requestId];
        Proposal storage p = _proposals[proposalId];
        uint256 verifiedClass = _argmax(outputs);
        bool approved = verifiedClass == _approveClass;
        p.stage = approved ? Stage.Approved : Stage.Rejected;
        emit JudgementReceived(proposalId, requestId, verifiedClass, approved);
    }

    // --- internal ---

    function _onlyMember() private view {
        if (!_isMember[msg.sender]) revert SmartJudgeDaoNotMember(msg.sender);
    }

    function _expect(uint256 proposalId, ProposalState expected) private view {
        ProposalState current = state(proposalId);
        if (current != expected) revert SmartJudgeDaoUnexpectedState(proposalId, current);
    }

    function _argmax(int256[] calldata outputs) private pure returns (uint256 best) {
        uint256 n = outputs.length;
        for (uint256 i = 1; i < n; ++i) {
            if (outputs[i] > outputs[best]) best = i;
        }
    }
}
