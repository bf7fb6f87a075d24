// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IZkmlOracle} from "../interfaces/IZkmlOracle.sol";
import {ZkmlConsumer} from "../ZkmlConsumer.sol";

/// @title IFraudGuardClient
/// @notice What a {FraudGuard} calls back when the transfer a client asked it to screen has
/// its verified score.
interface IFraudGuardClient {
    /// @notice Screening `requestId` has its verdict: `cleared` when `score` (the model's
    /// output, signed fixed point at its output scale) is at most the guard's `maxScore`.
    function onTransferScreened(uint256 requestId, bool cleared, int256 score) external;
}

/// @title FraudGuard
/// @notice Example (fraud detection): screens each transfer on its own features. A client (a
/// token or treasury) asks the guard to {screen} a transfer with that transfer's features; the
/// guard requests an inference on exactly those features from the oracle (the fee escrowed
/// there), and the oracle's callback delivers the verified score of that request, which the
/// oracle settles only with a proof whose input instances are those features. The guard then
/// tells the client whether that very transfer is cleared (`score <= maxScore`) or blocked.
/// A result for any other input cannot reach a screening: a proof of another input does not
/// fulfil the request (`ZkmlOracleInputMismatch`), a request someone else made naming this
/// guard is refused ({ZkmlConsumer}), and nothing pushed to a feed is read. An unanswered
/// screening can be cancelled by its client once the request expired (or its model was
/// deactivated), and its fee comes back to the client.
///
/// The score is output {scoreOutput} of the model (for the bundled example model, output 0,
/// the fraud probability), compared in the model's own fixed point: `maxScore` = the
/// threshold * 2**outputScale.
contract FraudGuard is ZkmlConsumer, Ownable, ReentrancyGuard {
    /// @notice The gas the guard asks the oracle to give its callback (its own bookkeeping and
    /// the client's {IFraudGuardClient-onTransferScreened}).
    uint32 public constant CALLBACK_GAS_LIMIT = 150_000;

    /// @notice Where a screening stands.
    enum Verdict {
        None,
        Pending,
        Cleared,
        Blocked,
        Cancelled
    }

    /// @dev One slot: the client that asked, and the verdict.
    struct Screening {
        address client;
        Verdict verdict;
    }

    // --- immutables ---

    bytes32 private immutable _modelId;
    uint256 private immutable _scoreOutput;

    // --- state ---

    int256 private _maxScore;
    mapping(uint256 requestId => Screening) private _screenings;

    // --- events ---

    /// @notice `client` asked to screen a transfer whose features hash to `inputHash`
    /// (keccak256 of the packed felts, as the oracle's request records it).
    event ScreeningRequested(uint256 indexed requestId, address indexed client, bytes32 inputHash);
    /// @notice The transfer of screening `requestId` has its verified score and verdict.
    event TransferScreened(uint256 indexed requestId, address indexed client, bool cleared, int256 score);
    /// @notice The client cancelled an unanswered screening; `refund` wei went back to it.
    event ScreeningCancelled(uint256 indexed requestId, address indexed client, uint256 refund);
    /// @notice The score above which transfers are blocked changed.
    event MaxScoreSet(int256 previous, int256 current);

    // --- errors ---

    /// @notice A constructor argument is unusable.
    error FraudGuardInvalidConfig(string reason);
    /// @notice The callback is for another model's request.
    error FraudGuardUnknownRequest(uint256 requestId, bytes32 modelId);
    /// @notice Screening `requestId` has no pending verdict (unknown, answered or cancelled).
    error FraudGuardNotPending(uint256 requestId);
    /// @notice Only the client that asked for screening `requestId` may cancel it.
    error FraudGuardNotClient(uint256 requestId, address caller);
    /// @notice Returning `amount` wei to `client` failed.
    error FraudGuardRefundFailed(address client, uint256 amount);
    /// @notice Only the oracle sends Ether to the guard (refunds).
    error FraudGuardUnexpectedEther(address sender);

    // --- constructor ---

    /// @param oracle_ The oracle (trusted: only it may call back).
    /// @param modelId_ The fraud model (public or hashed inputs).
    /// @param scoreOutput_ Which of the model's outputs is the fraud score.
    /// @param maxScore_ Transfers scoring above this are blocked (model output fixed point).
    /// @param owner_ May change {maxScore}.
    constructor(IZkmlOracle oracle_, bytes32 modelId_, uint256 scoreOutput_, int256 maxScore_, address owner_)
        ZkmlConsumer(oracle_)
        Ownable(owner_)
    {
        IZkmlOracle.ModelConfig memory config = oracle_.getModel(modelId_).config;
        if (scoreOutput_ >= config.outputCount) revert FraudGuardInvalidConfig("scoreOutput is not an output");
        _modelId = modelId_;
        _scoreOutput = scoreOutput_;
        _maxScore = maxScore_;
        emit MaxScoreSet(0, maxScore_);
    }

    // --- screening ---

    /// @notice Asks the oracle to score a transfer on its `features` (the model's input felts,
    /// or the commitment for a hashed-input model); `msg.value` is the oracle's fee. The
    /// verdict comes back to the caller through {IFraudGuardClient-onTransferScreened} (an
    /// account without code only gets the {TransferScreened} event).
    /// @param features The transfer's input felts.
    /// @param deadline When the request expires (then {cancel} returns the fee).
    /// @return requestId The oracle's request, which identifies the screening.
    function screen(uint256[] calldata features, uint64 deadline)
        external
        payable
        nonReentrant
        returns (uint256 requestId)
    {
        // The id is the oracle's: the screening is recorded after the request (the oracle is
        // trusted and calls nothing back while requesting).
        requestId = oracle().requestInference{value: msg.value}(
            _modelId, features, address(this), CALLBACK_GAS_LIMIT, deadline
        );
        _screenings[requestId] = Screening({client: msg.sender, verdict: Verdict.Pending});
        emit ScreeningRequested(requestId, msg.sender, keccak256(abi.encodePacked(features)));
    }

    /// @notice Cancels an unanswered screening (its request expired or its model was
    /// deactivated: the oracle's refusal is passed on otherwise) and returns its fee to the
    /// client; also frees a screening whose callback failed (nothing to refund then).
    /// Emits {ScreeningCancelled}.
    /// @param request The screening's request, as the oracle's `InferenceRequested` emitted
    /// it (the oracle keeps only a commitment to its fields and refuses others).
    /// @return refund What came back to the client, in wei.
    function cancel(IZkmlOracle.Request calldata request) external nonReentrant returns (uint256 refund) {
        uint256 requestId = request.id;
        Screening storage screening = _screenings[requestId];
        if (screening.client != msg.sender) revert FraudGuardNotClient(requestId, msg.sender);
        if (screening.verdict != Verdict.Pending) revert FraudGuardNotPending(requestId);
        screening.verdict = Verdict.Cancelled;
        refund = _cancelRequest(request);
        emit ScreeningCancelled(requestId, msg.sender, refund);
        if (refund != 0) {
            (bool ok,) = msg.sender.call{value: refund}("");
            if (!ok) revert FraudGuardRefundFailed(msg.sender, refund);
        }
    }

    /// @notice Accepts the oracle's refunds only.
    receive() external payable {
        if (msg.sender != address(oracle())) revert FraudGuardUnexpectedEther(msg.sender);
    }

    // --- callback ---

    /// @dev The oracle settled this request only with a proof of its own features: the score
    /// is that transfer's. The verdict is recorded before the client is told.
    function _onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata outputs) internal override {
        if (modelId != _modelId) revert FraudGuardUnknownRequest(requestId, modelId);
        Screening storage screening = _screenings[requestId];
        if (screening.verdict != Verdict.Pending) revert FraudGuardNotPending(requestId);
        int256 score = outputs[_scoreOutput];
        bool cleared = score <= _maxScore;
        screening.verdict = cleared ? Verdict.Cleared : Verdict.Blocked;
        address client = screening.client;
        emit TransferScreened(requestId, client, cleared, score);
        if (client.code.length != 0) IFraudGuardClient(client).onTransferScreened(requestId, cleared, score);
    }

    // --- configuration (owner) ---

    /// @notice Sets the score above which transfers are blocked (for verdicts delivered from
    /// now on). Emits {MaxScoreSet}.
    function setMaxScore(int256 maxScore_) external onlyOwner {
        emit MaxScoreSet(_maxScore, maxScore_);
        _maxScore = maxScore_;
    }

    // --- views ---

    /// @notice Screening `requestId`: who asked, and where it stands.
    function screening(uint256 requestId) external view returns (address client, Verdict verdict) {
        Screening memory s = _screenings[requestId];
        return (s.client, s.verdict);
    }

    /// @notice (model id, score output, max score).
    function terms() external view returns (bytes32, uint256, int256) {
        return (_modelId, _scoreOutput, _maxScore);
    }
}

/// @title GuardedTreasury
/// @notice Example: an Ether treasury whose every payment is screened by a {FraudGuard} on
/// that payment's own features first. {requestPayment} reserves the amount and asks the guard;
/// the guard's verdict releases it to the recipient (who withdraws it) or blocks it; an
/// unanswered payment can be abandoned once its request expired, and its fee comes back.
contract GuardedTreasury is Ownable, ReentrancyGuard, IFraudGuardClient {
    /// @notice Where a payment stands.
    enum PaymentState {
        None,
        Screening,
        Paid,
        Blocked,
        Abandoned
    }

    /// @dev A payment, keyed by its screening's request id.
    struct Payment {
        address to;
        PaymentState state;
        uint256 amount;
    }

    FraudGuard private immutable _guard;

    uint256 private _reserved; // screening and owed amounts
    mapping(uint256 requestId => Payment) private _payments;
    mapping(address account => uint256) private _owed;

    /// @notice Ether arrived.
    event Deposited(address indexed from, uint256 amount);
    /// @notice Payment `requestId` of `amount` wei to `to` is being screened.
    event PaymentRequested(uint256 indexed requestId, address indexed to, uint256 amount);
    /// @notice Payment `requestId` passed its screening: `to` may withdraw it.
    event Paid(uint256 indexed requestId, address indexed to, uint256 amount, int256 score);
    /// @notice Payment `requestId` failed its screening: nothing moves.
    event Blocked(uint256 indexed requestId, address indexed to, uint256 amount, int256 score);
    /// @notice Payment `requestId` was abandoned unanswered; `refund` wei of fee came back.
    event Abandoned(uint256 indexed requestId, uint256 refund);
    /// @notice `account` withdrew `amount` wei it was paid.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice Not enough unreserved Ether for the payment.
    error GuardedTreasuryInsufficientFunds(uint256 amount, uint256 available);
    /// @notice Only the guard delivers verdicts.
    error GuardedTreasuryNotGuard(address caller);
    /// @notice Payment `requestId` is not being screened.
    error GuardedTreasuryNotScreening(uint256 requestId);
    /// @notice `account` has nothing to withdraw.
    error GuardedTreasuryNothingOwed(address account);
    /// @notice Sending Ether to `to` failed.
    error GuardedTreasuryTransferFailed(address to, uint256 amount);

    /// @param guard_ The fraud guard that screens every payment.
    /// @param owner_ May request and abandon payments.
    constructor(FraudGuard guard_, address owner_) Ownable(owner_) {
        _guard = guard_;
    }

    /// @notice Accepts Ether (deposits, and fees the guard returns). Emits {Deposited}.
    receive() external payable {
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Reserves `amount` wei for `to` and asks the guard to screen the payment on its
    /// `features`; `msg.value` is the oracle's fee. Emits {PaymentRequested}.
    /// @return requestId The screening's (oracle) request id, which names the payment.
    function requestPayment(address to, uint256 amount, uint256[] calldata features, uint64 deadline)
        external
        payable
        onlyOwner
        nonReentrant
        returns (uint256 requestId)
    {
        uint256 available = address(this).balance - msg.value - _reserved;
        if (amount > available) revert GuardedTreasuryInsufficientFunds(amount, available);
        _reserved += amount;
        requestId = _guard.screen{value: msg.value}(features, deadline);
        _payments[requestId] = Payment({to: to, state: PaymentState.Screening, amount: amount});
        emit PaymentRequested(requestId, to, amount);
    }

    /// @inheritdoc IFraudGuardClient
    /// @dev Only the guard; the payment must be under screening. Cleared: the amount is owed to
    /// the recipient ({withdraw}); blocked: it is released back into the treasury.
    function onTransferScreened(uint256 requestId, bool cleared, int256 score) external {
        if (msg.sender != address(_guard)) revert GuardedTreasuryNotGuard(msg.sender);
        Payment storage payment = _payments[requestId];
        if (payment.state != PaymentState.Screening) revert GuardedTreasuryNotScreening(requestId);
        uint256 amount = payment.amount;
        if (cleared) {
            payment.state = PaymentState.Paid;
            _owed[payment.to] += amount;
            emit Paid(requestId, payment.to, amount, score);
        } else {
            payment.state = PaymentState.Blocked;
            _reserved -= amount;
            emit Blocked(requestId, payment.to, amount, score);
        }
    }

    /// @notice Abandons a payment whose screening went unanswered (see {FraudGuard-cancel}):
    /// its amount is released and its fee comes back into the treasury. Emits {Abandoned}.
    /// @param request The screening's request, as the oracle's `InferenceRequested` emitted it.
    function abandonPayment(IZkmlOracle.Request calldata request) external onlyOwner nonReentrant {
        uint256 requestId = request.id;
        Payment storage payment = _payments[requestId];
        if (payment.state != PaymentState.Screening) revert GuardedTreasuryNotScreening(requestId);
        payment.state = PaymentState.Abandoned;
        _reserved -= payment.amount;
        uint256 refund = _guard.cancel(request);
        emit Abandoned(requestId, refund);
    }

    /// @notice Sends the caller what it was paid. Emits {Withdrawn}.
    function withdraw() external nonReentrant {
        uint256 amount = _owed[msg.sender];
        if (amount == 0) revert GuardedTreasuryNothingOwed(msg.sender);
        _owed[msg.sender] = 0;
        _reserved -= amount;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert GuardedTreasuryTransferFailed(msg.sender, amount);
    }

    // --- views ---

    /// @notice Payment `requestId`.
    function payment(uint256 requestId) external view returns (address to, PaymentState state, uint256 amount) {
        Payment memory p = _payments[requestId];
        return (p.to, p.state, p.amount);
    }

    /// @notice What `account` may withdraw.
    function owed(address account) external view returns (uint256) {
        return _owed[account];
    }

    /// @notice Ether held for payments under screening or owed.
    function reserved() external view returns (uint256) {
        return _reserved;
    }

    /// @notice The fraud guard that screens every payment.
    function guard() external view returns (FraudGuard) {
        return _guard;
    }
}
