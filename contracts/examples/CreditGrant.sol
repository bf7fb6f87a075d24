// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {IZkmlOracle} from "../interfaces/IZkmlOracle.sol";
import {ZkmlConsumer} from "../ZkmlConsumer.sol";

/// @title CreditGrant
/// @notice Example (credit-gated grant): an Ether pool that grants a fixed amount to an
/// applicant whose verified credit score is above a threshold.
///
/// Flow: the applicant calls {applyForGrant} with the model's input felts (their features)
/// and the data provider's EIP-712 attestation of them, paying the oracle fee; the pool requests the inference with itself as the callback. When a
/// relayer fulfils the request with a valid proof, the oracle calls {onInferenceResult}: the
/// score is output `scoreIndex` of the model (raw fixed point at the model's output scale,
/// `value = score / 2**scale`; for the bundled example model, output 1). If
/// `score > scoreThreshold` and the pool has `grantAmount` unreserved, the grant is reserved
/// for the applicant, who {claim}s it (pull payment). The callback only writes a few slots and
/// emits one event, well under {CALLBACK_GAS_LIMIT} (itself far below Chainlink Functions'
/// 300 000 gas callback budget); it never sends Ether.
///
/// Provenance: a proof shows what the model says about an input, not that the input is the
/// applicant's. The features must be attested by {attestor} (a data provider, e.g. a credit
/// bureau) with an EIP-712 signature over `CreditFeatures(applicant, subject, inputHash,
/// expiry)`: `inputHash` is keccak256 of the input felts, `subject` the provider's id of the
/// person. An applicant cannot invent features, reuse another applicant's attestation, or
/// (through Sybil addresses) get a second grant for the same subject: one grant per address
/// and per subject.
///
/// A request that is never answered (expired, its model deactivated, or its callback failed)
/// can be {abandon}ed: the pool cancels it at the oracle and sends its fee back to the
/// applicant who paid it.
contract CreditGrant is ZkmlConsumer, Ownable, ReentrancyGuard, EIP712 {
    /// @notice The gas the oracle gives the callback.
    uint32 public constant CALLBACK_GAS_LIMIT = 150_000;
    /// @notice The EIP-712 type the attestor signs.
    bytes32 public constant CREDIT_FEATURES_TYPEHASH =
        keccak256("CreditFeatures(address applicant,bytes32 subject,bytes32 inputHash,uint256 expiry)");

    /// @notice The outcome of a verified score.
    enum Decision {
        Granted,
        ScoreTooLow,
        InsufficientFunds,
        SubjectGranted // another address of the same subject was granted meanwhile
    }

    /// @notice Where an applicant stands (one grant per address).
    enum GrantStatus {
        None,
        Granted,
        Claimed
    }

    struct Application {
        uint256 requestId;
        uint64 deadline;
        bytes32 subject;
    }

    // --- immutables ---

    bytes32 private immutable _modelId;
    uint256 private immutable _scoreIndex;
    int256 private immutable _scoreThreshold;
    uint256 private immutable _grantAmount;
    uint64 private immutable _requestTtl;
    address private immutable _attestor;

    // --- state ---

    mapping(address applicant => Application) private _pending;
    mapping(uint256 requestId => address applicant) private _applicantOf;
    mapping(address applicant => GrantStatus) private _status;
    mapping(bytes32 subject => bool) private _subjectGranted;
    uint256 private _reserved;

    // --- events ---

    /// @notice Ether was added to the pool.
    event Funded(address indexed from, uint256 amount);
    /// @notice `applicant` applied; the oracle's request `requestId` carries their input.
    event GrantRequested(address indexed applicant, uint256 indexed requestId, uint64 deadline, uint256 fee);
    /// @notice The verified `score` of `applicant` was received and decided on.
    event GrantDecided(address indexed applicant, uint256 indexed requestId, int256 score, Decision decision);
    /// @notice `applicant` withdrew their grant.
    event GrantClaimed(address indexed applicant, uint256 amount);
    /// @notice An unanswered application was dropped after its deadline.
    event ApplicationAbandoned(address indexed applicant, uint256 indexed requestId, uint256 refund);
    /// @notice The owner withdrew unreserved Ether.
    event FundsWithdrawn(address indexed to, uint256 amount);

    // --- errors ---

    /// @notice `applicant` already received a grant.
    error CreditGrantAlreadyGranted(address applicant);
    /// @notice `applicant` has an application in flight.
    error CreditGrantApplicationPending(address applicant, uint256 requestId);
    /// @notice `applicant` has no application in flight.
    error CreditGrantNoApplication(address applicant);
    /// @notice The application's deadline has not passed yet.
    error CreditGrantNotExpired(uint256 requestId, uint64 deadline);
    /// @notice The callback is for a request this pool did not make (or already decided).
    error CreditGrantUnknownRequest(uint256 requestId, bytes32 modelId);
    /// @notice Nothing to claim.
    error CreditGrantNothingToClaim(address applicant);
    /// @notice More than the unreserved balance was asked for.
    error CreditGrantInsufficientFunds(uint256 requested, uint256 available);
    /// @notice Sending Ether failed.
    error CreditGrantTransferFailed(address to, uint256 amount);
    /// @notice A constructor argument is unusable.
    error CreditGrantInvalidConfig(string reason);
    /// @notice The features are not attested by {attestor} for this applicant, or the
    /// attestation expired.
    error CreditGrantBadAttestation(address applicant, address signer, uint256 expiry);
    /// @notice `subject` already received a grant (through some address).
    error CreditGrantSubjectGranted(bytes32 subject);

    // --- constructor ---

    /// @param oracle_ The oracle (trusted: only it may call back).
    /// @param modelId_ The credit model (registered at the oracle).
    /// @param scoreIndex_ Which model output is the score.
    /// @param scoreThreshold_ Grants go only to scores strictly above this (raw fixed point at
    /// the model's output scale).
    /// @param grantAmount_ Wei granted per approved applicant.
    /// @param requestTtl_ Seconds an application may wait for its proof.
    /// @param owner_ May withdraw unreserved funds.
    /// @param attestor_ The data provider whose EIP-712 signature vouches for the features.
    constructor(
        IZkmlOracle oracle_,
        bytes32 modelId_,
        uint256 scoreIndex_,
        int256 scoreThreshold_,
        uint256 grantAmount_,
        uint64 requestTtl_,
        address owner_,
        address attestor_
    ) ZkmlConsumer(oracle_) Ownable(owner_) EIP712("CreditGrant", "1") {
        if (scoreIndex_ >= oracle_.getModel(modelId_).config.outputCount) {
            revert CreditGrantInvalidConfig("scoreIndex out of range");
        }
        if (grantAmount_ == 0) revert CreditGrantInvalidConfig("grantAmount is zero");
        if (requestTtl_ == 0) revert CreditGrantInvalidConfig("requestTtl is zero");
        if (attestor_ == address(0)) revert CreditGrantInvalidConfig("attestor is zero");
        _attestor = attestor_;
        _modelId = modelId_;
        _scoreIndex = scoreIndex_;
        _scoreThreshold = scoreThreshold_;
        _grantAmount = grantAmount_;
        _requestTtl = requestTtl_;
    }

    /// @notice Adds Ether to the pool. Emits {Funded}.
    receive() external payable {
        emit Funded(msg.sender, msg.value);
    }

    // --- applicants ---

    /// @notice Applies for a grant: requests the credit model's output on `inputFelts`, with
    /// `msg.value` as the oracle fee. The features must carry {attestor}'s EIP-712 signature
    /// for the caller ({CreditGrantBadAttestation}), and their subject must not have had a
    /// grant ({CreditGrantSubjectGranted}). Emits {GrantRequested}.
    /// @dev The oracle is trusted and `requestInference` calls nothing back, so recording the
    /// application after the call (its id is only known then) is safe; `nonReentrant` anyway.
    /// @param inputFelts The model's input, as field elements (what the proof must carry).
    /// @param subject The attestor's id of the person the features describe.
    /// @param expiry The attestation's expiry (unix seconds).
    /// @param signature The attestor's EIP-712 signature of `CreditFeatures`.
    /// @return requestId The oracle's request id.
    function applyForGrant(uint256[] calldata inputFelts, bytes32 subject, uint256 expiry, bytes calldata signature)
        external
        payable
        nonReentrant
        returns (uint256 requestId)
    {
        if (_status[msg.sender] != GrantStatus.None) revert CreditGrantAlreadyGranted(msg.sender);
        uint256 current = _pending[msg.sender].requestId;
        if (current != 0) revert CreditGrantApplicationPending(msg.sender, current);
        if (_subjectGranted[subject]) revert CreditGrantSubjectGranted(subject);
        bytes32 digest = _hashTypedDataV4(
            keccak256(
                abi.encode(
                    CREDIT_FEATURES_TYPEHASH, msg.sender, subject, keccak256(abi.encodePacked(inputFelts)), expiry
                )
            )
        );
        (address signer,,) = ECDSA.tryRecover(digest, signature);
        if (signer != _attestor || block.timestamp > expiry) {
            revert CreditGrantBadAttestation(msg.sender, signer, expiry);
        }
        uint64 deadline = uint64(block.timestamp) + _requestTtl;
        requestId = oracle().requestInference{value: msg.value}(
            _modelId, inputFelts, address(this), CALLBACK_GAS_LIMIT, deadline
        );
        _pending[msg.sender] = Application({requestId: requestId, deadline: deadline, subject: subject});
        _applicantOf[requestId] = msg.sender;
        emit GrantRequested(msg.sender, requestId, deadline, msg.value);
    }

    /// @notice Withdraws the caller's grant. Emits {GrantClaimed}.
    function claim() external nonReentrant {
        if (_status[msg.sender] != GrantStatus.Granted) revert CreditGrantNothingToClaim(msg.sender);
        uint256 amount = _grantAmount;
        _status[msg.sender] = GrantStatus.Claimed;
        _reserved -= amount;
        emit GrantClaimed(msg.sender, amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert CreditGrantTransferFailed(msg.sender, amount);
    }

    /// @notice Drops the caller's unanswered application once its deadline has passed (or its
    /// model was deactivated), so they may apply again; cancels the request at the oracle if
    /// it is still pending there and sends its fee back to the caller. Emits
    /// {ApplicationAbandoned}.
    /// @param request The application's oracle request, as the oracle's `InferenceRequested`
    /// emitted it (the oracle stores only a commitment to it and refuses other fields).
    function abandon(IZkmlOracle.Request calldata request) external nonReentrant {
        Application memory app = _pending[msg.sender];
        if (app.requestId == 0 || request.id != app.requestId) revert CreditGrantNoApplication(msg.sender);
        if (block.timestamp <= app.deadline && oracle().getModel(_modelId).active) {
            revert CreditGrantNotExpired(app.requestId, app.deadline);
        }
        delete _pending[msg.sender];
        delete _applicantOf[app.requestId];
        uint256 refund = _cancelRequest(request);
        emit ApplicationAbandoned(msg.sender, app.requestId, refund);
        if (refund != 0) {
            (bool ok,) = payable(msg.sender).call{value: refund}("");
            if (!ok) revert CreditGrantTransferFailed(msg.sender, refund);
        }
    }

    // --- pool ---

    /// @notice Withdraws unreserved Ether (reserved grants stay claimable). Emits {FundsWithdrawn}.
    /// @param to The recipient.
    /// @param amount How much, in wei.
    function withdrawFunds(address payable to, uint256 amount) external onlyOwner nonReentrant {
        uint256 available = availableFunds();
        if (amount > available) revert CreditGrantInsufficientFunds(amount, available);
        emit FundsWithdrawn(to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert CreditGrantTransferFailed(to, amount);
    }

    // --- views ---

    /// @notice The pool's Ether not reserved for approved grants.
    function availableFunds() public view returns (uint256) {
        return address(this).balance - _reserved;
    }

    /// @notice The in-flight application of `applicant` (zeroes if none).
    function pendingApplication(address applicant) external view returns (uint256 requestId, uint64 deadline) {
        Application memory app = _pending[applicant];
        return (app.requestId, app.deadline);
    }

    /// @notice Where `applicant` stands.
    function grantStatus(address applicant) external view returns (GrantStatus) {
        return _status[applicant];
    }

    /// @notice Whether `applicant` was granted (claimed or not).
    function granted(address applicant) external view returns (bool) {
        return _status[applicant] != GrantStatus.None;
    }

    /// @notice What `applicant` can claim, in wei.
    function claimable(address applicant) external view returns (uint256) {
        return _status[applicant] == GrantStatus.Granted ? _grantAmount : 0;
    }

    /// @notice The data provider whose signature vouches for applicants' features.
    function attestor() external view returns (address) {
        return _attestor;
    }

    /// @notice Whether `subject` received a grant.
    function subjectGranted(bytes32 subject) external view returns (bool) {
        return _subjectGranted[subject];
    }

    /// @notice (model id, score output index, score threshold, grant amount, request TTL).
    function terms() external view returns (bytes32, uint256, int256, uint256, uint64) {
        return (_modelId, _scoreIndex, _scoreThreshold, _grantAmount, _requestTtl);
    }

    // --- callback ---

    /// @dev Decides on the verified score: three slots cleared, at most two written, one event,
    /// no Ether sent (about 96 000 gas for a first grant, all slots cold).
    function _onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata outputs) internal override {
        address applicant = _applicantOf[requestId];
        if (applicant == address(0) || modelId != _modelId) revert CreditGrantUnknownRequest(requestId, modelId);
        delete _applicantOf[requestId];
        bytes32 subject = _pending[applicant].subject;
        delete _pending[applicant];
        int256 score = outputs[_scoreIndex];
        Decision decision;
        if (_subjectGranted[subject]) {
            decision = Decision.SubjectGranted;
        } else if (score <= _scoreThreshold) {
            decision = Decision.ScoreTooLow;
        } else if (availableFunds() < _grantAmount) {
            decision = Decision.InsufficientFunds;
        } else {
            decision = Decision.Granted;
            _status[applicant] = GrantStatus.Granted;
            _subjectGranted[subject] = true;
            _reserved += _grantAmount;
        }
        emit GrantDecided(applicant, requestId, score, decision);
    }
}
