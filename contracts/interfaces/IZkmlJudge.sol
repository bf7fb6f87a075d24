// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {IZkmlOracle} from "./IZkmlOracle.sol";

/// @title IZkmlJudgeInput
/// @notice Derives a judged model's input felts from what is decided (the actions of a
/// proposal), so that nobody describes a proposal to the panel: a whole-treasury transfer is
/// judged as a whole-treasury transfer. A DAO writes one for its judge model's features.
interface IZkmlJudgeInput {
    /// @notice The model input (felts at the model's input scale) for these actions.
    function inputOf(address[] calldata targets, uint256[] calldata values, bytes[] calldata calldatas)
        external
        view
        returns (uint256[] memory felts);
}

/// @title IZkmlJudge
/// @notice A judging policy over verified model outputs (docs/judge.md): a *case* is opened
/// for a set of actions (its subject is keccak256(abi.encode(targets, values, calldatas))) and
/// asks each model of a *panel* for its output on an input derived from those actions; each
/// *seat* compares one output with a threshold; the panel rules Favourable when at least
/// `quorum` seats find for it and fewer than `quorum` against, Unfavourable in the mirror case,
/// and `onDisagreement` otherwise (both sides, or neither, reach the quorum: ties, abstentions).
/// A first ruling may be appealed within `appealWindow` by paying the appeal panel's fees; the
/// appeal panel's ruling replaces it and is final. Panel requests are ordinary oracle requests:
/// fees are escrowed by the oracle and come back (to whoever paid) when a request goes
/// unanswered ({reclaim}, {withdrawRefund}).
interface IZkmlJudge {
    /// @notice Which side of the threshold is favourable (the threshold itself included).
    enum Direction {
        AtLeast, // favourable iff output >= threshold
        AtMost // favourable iff output <= threshold
    }

    enum Ruling {
        None,
        Favourable,
        Unfavourable
    }

    /// @notice Where a case stands ({caseState}).
    enum CaseState {
        None,
        Deliberating, // the first panel's requests are out
        Ruled, // first ruling given, appeal window open
        Appealed, // the appeal panel's requests are out
        Final, // the ruling can no longer change
        Void // no seat of the first panel answered: no ruling; the subject may be judged again
    }

    /// @notice One seat of a panel: model `modelId`'s output `outputIndex` against `threshold`
    /// (signed fixed point at the model's output scale).
    struct Seat {
        bytes32 modelId;
        uint32 outputIndex;
        Direction direction;
        int256 threshold;
    }

    /// @notice A panel: its seats (one oracle request per distinct model: seats that share a
    /// model share its answer), the quorum, the ruling when neither side reaches the quorum
    /// alone, and the fee paid to the oracle for each of its requests.
    struct Panel {
        Seat[] seats;
        uint8 quorum;
        Ruling onDisagreement;
        uint256 feePerRequest;
    }

    /// @notice The judge's fixed settings.
    /// @dev `attestations` zero: no accuracy requirement; otherwise every model of both panels
    /// needs an attestation of at least `minAccuracyBps` on `testSetId` (checked at
    /// construction: attestations are recorded for good).
    struct Policy {
        address input; // IZkmlJudgeInput
        uint64 appealWindow; // seconds after a first ruling
        uint64 requestTtl; // seconds each panel request may wait for its proof
        uint32 callbackGasLimit;
        address attestations; // IZkmlAttestations, or zero
        bytes32 testSetId;
        uint16 minAccuracyBps;
    }

    /// @notice A case as {getCase} shows it.
    struct Case {
        bytes32 subject;
        bytes32 inputHash; // keccak256(abi.encodePacked(input felts))
        uint8 panel; // 0: first panel, 1: appeal panel (the requests now out or last answered)
        Ruling ruling; // current ruling (None while the first panel deliberates)
        Ruling firstRuling;
        uint64 openedAt;
        uint64 ruledAt; // first ruling's time (the appeal window runs from it)
        uint8 pending; // requests of `panel` still unresolved
        uint8 favourable; // seats of `panel` that found for, so far
        uint8 unfavourable; // seats of `panel` that found against, so far
        address opener;
        address appellant;
    }

    /// @notice One panel request of a case, as {getRequests} shows it (its outputs are in
    /// its {PanelAnswered} event).
    struct PanelRequest {
        uint256 requestId;
        bytes32 modelId;
        bool resolved;
        bool answered; // false when resolved: abstained (cancelled, or its callback failed)
    }

    // --- events ---
    event CaseOpened(uint256 indexed caseId, bytes32 indexed subject, address indexed opener, uint256[] input);
    event PanelRequested(uint256 indexed caseId, uint8 panel, uint256 indexed requestId, bytes32 indexed modelId);
    event PanelAnswered(uint256 indexed caseId, uint256 indexed requestId, int256[] outputs);
    /// @notice A request went unanswered (cancelled, or answered with a callback that failed).
    event PanelAbstained(uint256 indexed caseId, uint256 indexed requestId, uint256 refund);
    /// @notice Panel `panel` ruled; `favourable` and `unfavourable` count its seats.
    event CaseRuled(uint256 indexed caseId, uint8 panel, Ruling ruling, uint256 favourable, uint256 unfavourable);
    event CaseVoided(uint256 indexed caseId);
    event CaseAppealed(uint256 indexed caseId, address indexed appellant);
    event RefundCredited(address indexed account, uint256 amount);
    event RefundWithdrawn(address indexed account, uint256 amount);

    // --- errors ---
    error ZkmlJudgeInvalidConfig(string reason);
    error ZkmlJudgeModelNotAttested(bytes32 modelId);
    error ZkmlJudgeUnknownCase(uint256 caseId);
    /// @notice `subject` already has case `caseId` (only a void case may be opened again).
    error ZkmlJudgeCaseExists(bytes32 subject, uint256 caseId);
    error ZkmlJudgeWrongFee(uint256 expected, uint256 actual);
    error ZkmlJudgeBadActions(string reason);
    error ZkmlJudgeUnexpectedState(uint256 caseId, CaseState state);
    /// @notice The appeal window of `caseId` closed at `closedAt`.
    error ZkmlJudgeAppealClosed(uint256 caseId, uint64 closedAt);
    error ZkmlJudgeUnknownRequest(uint256 requestId);
    /// @notice {reclaim} got `given` requests for a panel of `expected`.
    error ZkmlJudgeRequestCount(uint256 caseId, uint256 expected, uint256 given);
    /// @notice {reclaim} got fields for request `requestId` that are not the ones the oracle
    /// committed to (or another request's, out of {getRequests} order).
    error ZkmlJudgeRequestMismatch(uint256 requestId);
    error ZkmlJudgeNothingToWithdraw(address account);
    error ZkmlJudgeUnexpectedEther(address sender);

    // --- cases ---
    /// @notice Opens a case on these actions, paying the first panel's fees (`msg.value` =
    /// fee per request x its distinct models).
    function openCase(address[] calldata targets, uint256[] calldata values, bytes[] calldata calldatas)
        external
        payable
        returns (uint256 caseId);

    /// @notice Appeals a first ruling within its window, paying the appeal panel's fees.
    function appeal(uint256 caseId) external payable;

    /// @notice Resolves the case's unanswered requests that can no longer be answered (past
    /// their deadline, model deactivated, callback failed): their seats abstain and their fees
    /// are credited back to whoever paid them. Anyone may call.
    /// @param requests The fields of the current panel's requests, in {getRequests} order, as
    /// the oracle's `InferenceRequested` emitted them (it keeps only their commitment); a
    /// resolved request's entry is not read.
    function reclaim(uint256 caseId, IZkmlOracle.Request[] calldata requests) external returns (uint256 refunded);

    /// @notice Pays out the caller's credited refunds.
    function withdrawRefund() external;

    // --- views ---
    function subjectOf(address[] calldata targets, uint256[] calldata values, bytes[] calldata calldatas)
        external
        pure
        returns (bytes32);
    function caseOf(bytes32 subject) external view returns (uint256 caseId);
    function caseState(uint256 caseId) external view returns (CaseState);
    function getCase(uint256 caseId) external view returns (Case memory);
    function getRequests(uint256 caseId, uint8 panel) external view returns (PanelRequest[] memory);
    function panel(uint8 index) external view returns (Panel memory);
    function policy() external view returns (Policy memory);
    /// @notice Whether `subject`'s case has a final Favourable ruling.
    function isFavourable(bytes32 subject) external view returns (bool);
    function refundOf(address account) external view returns (uint256);
}
