// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IZkmlAttestations} from "./interfaces/IZkmlAttestations.sol";
import {IZkmlJudge, IZkmlJudgeInput} from "./interfaces/IZkmlJudge.sol";
import {IZkmlOracle} from "./interfaces/IZkmlOracle.sol";
import {ZkmlConsumer} from "./ZkmlConsumer.sol";

/// @title ZkmlJudge
/// @notice A judging policy over a panel of verified models (see {IZkmlJudge}), deployed and
/// configured once by a DAO or protocol; its settings never change (a new policy is a new
/// judge). A case judges a set of actions: the subject is the hash of the actions and the
/// model input is derived from them by the policy's {IZkmlJudgeInput}, so neither can be
/// chosen by whoever opens the case. {isFavourable} is what a guard (for instance
/// {ZkmlJudgedTimelock}) asks before the actions may run.
///
/// Bounded work: a panel has at most {MAX_SEATS} seats; every loop runs over one panel's
/// seats or distinct models. The callback does a few storage writes and reads the seats of
/// the answering model (no outputs are stored: they are in {PanelAnswered}).
contract ZkmlJudge is IZkmlJudge, ZkmlConsumer, ReentrancyGuard {
    /// @notice The most seats a panel may have.
    uint256 public constant MAX_SEATS = 7;

    uint8 private constant FIRST = 0;
    uint8 private constant APPEAL = 1;

    /// @dev A panel as stored: its seats, each seat's index into `models` (distinct models,
    /// one request each per case), its quorum, disagreement outcome and fee.
    struct StoredPanel {
        Seat[] seats;
        uint8[] seatModel;
        bytes32[] models;
        uint8 quorum;
        Ruling onDisagreement;
        uint256 feePerRequest;
    }

    /// @dev What the judge knows of one of its oracle requests (one slot).
    struct RequestRef {
        uint64 caseId;
        uint8 panel;
        uint8 modelIndex;
        bool resolved;
        bool answered;
    }

    Policy private _policy;
    StoredPanel[2] private _panels;

    uint256 private _caseCount;
    mapping(uint256 caseId => Case) private _cases;
    mapping(uint256 caseId => uint256[]) private _inputs;
    mapping(uint256 caseId => mapping(uint8 panel => uint256[])) private _requestIds;
    mapping(bytes32 subject => uint256 caseId) private _caseOf;
    mapping(uint256 requestId => RequestRef) private _refs;
    mapping(address account => uint256) private _refunds;

    /// @param oracle_ The oracle (trusted: only it may call back).
    /// @param policy_ Input derivation, appeal window, request TTL and callback gas, and the
    /// optional accuracy requirement.
    /// @param first The first panel.
    /// @param appealPanel The appeal panel; no seats (and `appealWindow` 0) for no appeals.
    constructor(IZkmlOracle oracle_, Policy memory policy_, Panel memory first, Panel memory appealPanel)
        ZkmlConsumer(oracle_)
    {
        if (policy_.input == address(0)) revert ZkmlJudgeInvalidConfig("no input source");
        if (policy_.requestTtl == 0 || policy_.callbackGasLimit == 0) {
            revert ZkmlJudgeInvalidConfig("zero request ttl or callback gas");
        }
        if (policy_.minAccuracyBps > 10_000) revert ZkmlJudgeInvalidConfig("minAccuracyBps above 10000");
        if (first.seats.length == 0) revert ZkmlJudgeInvalidConfig("first panel has no seats");
        if ((appealPanel.seats.length == 0) != (policy_.appealWindow == 0)) {
            revert ZkmlJudgeInvalidConfig("an appeal panel needs an appeal window, and the reverse");
        }
        _policy = policy_;
        uint256 inputCount = _storePanel(oracle_, FIRST, first, type(uint256).max);
        if (appealPanel.seats.length != 0) _storePanel(oracle_, APPEAL, appealPanel, inputCount);
    }

    /// @notice Accepts refunds from the oracle ({_cancelRequest}); nothing else.
    receive() external payable {
        if (msg.sender != address(oracle())) revert ZkmlJudgeUnexpectedEther(msg.sender);
    }

    // --- cases ---

    /// @inheritdoc IZkmlJudge
    /// @dev Reverts {ZkmlJudgeCaseExists} if the subject has a case that is not void,
    /// {ZkmlJudgeWrongFee} unless `msg.value` pays each first-panel request exactly; the
    /// oracle's refusals (an inactive model, a wrong input count) are passed on. Emits
    /// {CaseOpened} and a {PanelRequested} per distinct model.
    function openCase(address[] calldata targets, uint256[] calldata values, bytes[] calldata calldatas)
        external
        payable
        nonReentrant
        returns (uint256 caseId)
    {
        if (targets.length == 0) revert ZkmlJudgeBadActions("no actions");
        if (targets.length != values.length || targets.length != calldatas.length) {
            revert ZkmlJudgeBadActions("length mismatch");
        }
        bytes32 subject = subjectOf(targets, values, calldatas);
        uint256 existing = _caseOf[subject];
        if (existing != 0 && caseState(existing) != CaseState.Void) revert ZkmlJudgeCaseExists(subject, existing);
        uint256[] memory felts = IZkmlJudgeInput(_policy.input).inputOf(targets, values, calldatas);

        caseId = ++_caseCount;
        _caseOf[subject] = caseId;
        Case storage c = _cases[caseId];
        c.subject = subject;
        c.inputHash = keccak256(abi.encodePacked(felts));
        c.openedAt = uint64(block.timestamp);
        c.opener = msg.sender;
        _inputs[caseId] = felts;
        emit CaseOpened(caseId, subject, msg.sender, felts);
        _requestPanel(caseId, c, FIRST, felts);
    }

    /// @inheritdoc IZkmlJudge
    /// @dev Only while the first ruling's window is open ({ZkmlJudgeAppealClosed} after it,
    /// {ZkmlJudgeUnexpectedState} in any other state); `msg.value` pays each appeal-panel
    /// request exactly. Emits {CaseAppealed} and a {PanelRequested} per distinct model.
    function appeal(uint256 caseId) external payable nonReentrant {
        CaseState state = caseState(caseId);
        Case storage c = _cases[caseId];
        if (state == CaseState.Final && c.panel == FIRST && _panels[APPEAL].seats.length != 0) {
            revert ZkmlJudgeAppealClosed(caseId, c.ruledAt + _policy.appealWindow);
        }
        if (state != CaseState.Ruled) revert ZkmlJudgeUnexpectedState(caseId, state);
        c.appellant = msg.sender;
        c.favourable = 0;
        c.unfavourable = 0;
        emit CaseAppealed(caseId, msg.sender);
        _requestPanel(caseId, c, APPEAL, _inputs[caseId]);
    }

    /// @inheritdoc IZkmlJudge
    /// @dev A request still answerable (pending, before its deadline, model active) is left
    /// alone. When the last request of the panel is resolved, the panel rules. Emits
    /// {PanelAbstained} per request resolved and {RefundCredited} if anything came back.
    /// The fields of a pending request are checked against the oracle's commitment
    /// ({ZkmlJudgeRequestMismatch} otherwise) before its deadline and model are trusted.
    function reclaim(uint256 caseId, IZkmlOracle.Request[] calldata requests)
        external
        nonReentrant
        returns (uint256 refunded)
    {
        Case storage c = _cases[caseId];
        if (c.pending == 0) revert ZkmlJudgeUnexpectedState(caseId, caseState(caseId));
        uint8 p = c.panel;
        uint256[] storage ids = _requestIds[caseId][p];
        IZkmlOracle oracle_ = oracle();
        uint256 n = ids.length;
        if (requests.length != n) revert ZkmlJudgeRequestCount(caseId, n, requests.length);
        for (uint256 i = 0; i < n; ++i) {
            uint256 requestId = ids[i];
            RequestRef storage ref = _refs[requestId];
            if (ref.resolved) continue;
            IZkmlOracle.Request calldata request = requests[i];
            if (request.id != requestId) revert ZkmlJudgeRequestMismatch(requestId);
            uint256 refund;
            if (oracle_.requestStatus(requestId) == IZkmlOracle.RequestStatus.Pending) {
                if (!oracle_.isCommitted(request)) revert ZkmlJudgeRequestMismatch(requestId);
                bool answerable = block.timestamp <= request.deadline && oracle_.getModel(request.modelId).active;
                if (answerable) continue;
                refund = _cancelRequest(request);
            }
            // Otherwise the oracle settled it but the callback failed: its fee was earned.
            ref.resolved = true;
            c.pending -= 1;
            refunded += refund;
            emit PanelAbstained(caseId, requestId, refund);
        }
        if (refunded != 0) {
            address payer = p == FIRST ? c.opener : c.appellant;
            _refunds[payer] += refunded;
            emit RefundCredited(payer, refunded);
        }
        if (c.pending == 0) _rule(caseId, c);
    }

    /// @inheritdoc IZkmlJudge
    function withdrawRefund() external nonReentrant {
        uint256 amount = _refunds[msg.sender];
        if (amount == 0) revert ZkmlJudgeNothingToWithdraw(msg.sender);
        _refunds[msg.sender] = 0;
        emit RefundWithdrawn(msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    // --- views ---

    /// @inheritdoc IZkmlJudge
    function subjectOf(address[] calldata targets, uint256[] calldata values, bytes[] calldata calldatas)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(targets, values, calldatas));
    }

    /// @inheritdoc IZkmlJudge
    function caseOf(bytes32 subject) external view returns (uint256) {
        return _caseOf[subject];
    }

    /// @inheritdoc IZkmlJudge
    function caseState(uint256 caseId) public view returns (CaseState) {
        Case storage c = _cases[caseId];
        if (c.openedAt == 0) return CaseState.None;
        if (c.panel == APPEAL) return c.pending != 0 ? CaseState.Appealed : CaseState.Final;
        if (c.pending != 0) return CaseState.Deliberating;
        if (c.ruling == Ruling.None) return CaseState.Void;
        return block.timestamp < uint256(c.ruledAt) + _policy.appealWindow ? CaseState.Ruled : CaseState.Final;
    }

    /// @inheritdoc IZkmlJudge
    function getCase(uint256 caseId) external view returns (Case memory) {
        if (_cases[caseId].openedAt == 0) revert ZkmlJudgeUnknownCase(caseId);
        return _cases[caseId];
    }

    /// @notice The input felts of `caseId` (what every panel of the case was asked about).
    function inputOf(uint256 caseId) external view returns (uint256[] memory) {
        return _inputs[caseId];
    }

    /// @inheritdoc IZkmlJudge
    function getRequests(uint256 caseId, uint8 panelIndex) external view returns (PanelRequest[] memory out) {
        uint256[] storage ids = _requestIds[caseId][panelIndex];
        out = new PanelRequest[](ids.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            RequestRef storage ref = _refs[ids[i]];
            out[i] = PanelRequest({
                requestId: ids[i],
                modelId: _panels[ref.panel].models[ref.modelIndex],
                resolved: ref.resolved,
                answered: ref.answered
            });
        }
    }

    /// @inheritdoc IZkmlJudge
    function panel(uint8 index) external view returns (Panel memory) {
        StoredPanel storage s = _panels[index];
        return Panel({
            seats: s.seats,
            quorum: s.quorum,
            onDisagreement: s.onDisagreement,
            feePerRequest: s.feePerRequest
        });
    }

    /// @notice The distinct models of panel `index`, one request each per case.
    function panelModels(uint8 index) external view returns (bytes32[] memory) {
        return _panels[index].models;
    }

    /// @notice What opening a case (`index` 0) or appealing (1) costs.
    function panelFee(uint8 index) public view returns (uint256) {
        StoredPanel storage s = _panels[index];
        return s.feePerRequest * s.models.length;
    }

    /// @inheritdoc IZkmlJudge
    function policy() external view returns (Policy memory) {
        return _policy;
    }

    /// @inheritdoc IZkmlJudge
    function isFavourable(bytes32 subject) external view returns (bool) {
        uint256 caseId = _caseOf[subject];
        return caseId != 0 && caseState(caseId) == CaseState.Final && _cases[caseId].ruling == Ruling.Favourable;
    }

    /// @inheritdoc IZkmlJudge
    function refundOf(address account) external view returns (uint256) {
        return _refunds[account];
    }

    /// @notice The number of cases opened (the last case id).
    function caseCount() external view returns (uint256) {
        return _caseCount;
    }

    // --- callback ---

    /// @dev Counts the answering model's seats; the panel rules on its last answer.
    function _onInferenceResult(uint256 requestId, bytes32, /* modelId: `ref` names it */ int256[] calldata outputs)
        internal
        override
    {
        RequestRef storage ref = _refs[requestId];
        uint256 caseId = ref.caseId;
        if (caseId == 0 || ref.resolved) revert ZkmlJudgeUnknownRequest(requestId);
        ref.resolved = true;
        ref.answered = true;
        Case storage c = _cases[caseId];
        StoredPanel storage s = _panels[ref.panel];
        uint8 modelIndex = ref.modelIndex;
        uint8 favourable = c.favourable;
        uint8 unfavourable = c.unfavourable;
        uint256 n = s.seats.length;
        for (uint256 i = 0; i < n; ++i) {
            if (s.seatModel[i] != modelIndex) continue;
            Seat storage seat = s.seats[i];
            int256 value = outputs[seat.outputIndex];
            bool pass = seat.direction == Direction.AtLeast ? value >= seat.threshold : value <= seat.threshold;
            if (pass) ++favourable;
            else ++unfavourable;
        }
        c.favourable = favourable;
        c.unfavourable = unfavourable;
        c.pending -= 1;
        emit PanelAnswered(caseId, requestId, outputs);
        if (c.pending == 0) _rule(caseId, c);
    }

    // --- internal ---

    function _requestPanel(uint256 caseId, Case storage c, uint8 p, uint256[] memory felts) private {
        StoredPanel storage s = _panels[p];
        uint256 n = s.models.length;
        uint256 fee = s.feePerRequest;
        if (msg.value != fee * n) revert ZkmlJudgeWrongFee(fee * n, msg.value);
        c.panel = p;
        c.pending = uint8(n);
        uint256[] storage ids = _requestIds[caseId][p];
        for (uint256 i = 0; i < n; ++i) {
            ids.push(_request(caseId, p, i, s.models[i], felts, fee));
        }
    }

    function _request(uint256 caseId, uint8 p, uint256 modelIndex, bytes32 modelId, uint256[] memory felts, uint256 fee)
        private
        returns (uint256 requestId)
    {
        Policy storage pol = _policy;
        uint64 deadline = uint64(block.timestamp) + pol.requestTtl;
        requestId = oracle().requestInference{value: fee}(modelId, felts, address(this), pol.callbackGasLimit, deadline);
        _refs[requestId] = RequestRef({
            caseId: uint64(caseId),
            panel: p,
            modelIndex: uint8(modelIndex),
            resolved: false,
            answered: false
        });
        emit PanelRequested(caseId, p, requestId, modelId);
    }

    /// @dev The panel's ruling from its seats' counts (every request resolved).
    function _rule(uint256 caseId, Case storage c) private {
        uint8 p = c.panel;
        uint256 favourable = c.favourable;
        uint256 unfavourable = c.unfavourable;
        if (favourable + unfavourable == 0) {
            // Nobody answered: a first panel leaves the case void; an appeal leaves the first
            // ruling in place, final.
            if (p == FIRST) emit CaseVoided(caseId);
            else emit CaseRuled(caseId, p, c.ruling, 0, 0);
            return;
        }
        StoredPanel storage s = _panels[p];
        uint256 quorum = s.quorum;
        bool pro = favourable >= quorum;
        bool con = unfavourable >= quorum;
        Ruling ruling = pro && !con ? Ruling.Favourable : con && !pro ? Ruling.Unfavourable : s.onDisagreement;
        c.ruling = ruling;
        if (p == FIRST) {
            c.firstRuling = ruling;
            c.ruledAt = uint64(block.timestamp);
        }
        emit CaseRuled(caseId, p, ruling, favourable, unfavourable);
    }

    /// @dev Validates and stores panel `p`; returns the models' common input count.
    function _storePanel(IZkmlOracle oracle_, uint8 p, Panel memory panel_, uint256 inputCount)
        private
        returns (uint256)
    {
        uint256 n = panel_.seats.length;
        if (n > MAX_SEATS) revert ZkmlJudgeInvalidConfig("too many seats");
        if (panel_.quorum == 0 || panel_.quorum > n) revert ZkmlJudgeInvalidConfig("quorum out of range");
        if (panel_.onDisagreement == Ruling.None) revert ZkmlJudgeInvalidConfig("no disagreement outcome");
        StoredPanel storage s = _panels[p];
        s.quorum = panel_.quorum;
        s.onDisagreement = panel_.onDisagreement;
        s.feePerRequest = panel_.feePerRequest;
        for (uint256 i = 0; i < n; ++i) {
            Seat memory seat = panel_.seats[i];
            uint256 index = _modelIndex(s.models, seat.modelId);
            if (index == s.models.length) {
                inputCount = _admitModel(oracle_, seat.modelId, inputCount);
                s.models.push(seat.modelId);
            }
            IZkmlOracle.Model memory model = oracle_.getModel(seat.modelId);
            if (seat.outputIndex >= model.config.outputCount) revert ZkmlJudgeInvalidConfig("output index out of range");
            s.seats.push(seat);
            s.seatModel.push(uint8(index));
        }
        return inputCount;
    }

    /// @dev Checks that `modelId` takes inputs like the others, and is
    /// attested well enough if the policy asks for it.
    function _admitModel(IZkmlOracle oracle_, bytes32 modelId, uint256 inputCount) private view returns (uint256) {
        uint256 count = oracle_.getModel(modelId).config.inputCount; // reverts for an unknown model
        if (inputCount != type(uint256).max && count != inputCount) {
            revert ZkmlJudgeInvalidConfig("panel models take different inputs");
        }
        Policy storage pol = _policy;
        if (pol.attestations != address(0)) {
            bool ok = IZkmlAttestations(pol.attestations).meetsAccuracy(modelId, pol.testSetId, pol.minAccuracyBps);
            if (!ok) revert ZkmlJudgeModelNotAttested(modelId);
        }
        return count;
    }

    function _modelIndex(bytes32[] storage models, bytes32 modelId) private view returns (uint256 i) {
        uint256 n = models.length;
        for (; i < n; ++i) {
            if (models[i] == modelId) return i;
        }
    }
}
