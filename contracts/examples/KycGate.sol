// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IZkmlOracle} from "../interfaces/IZkmlOracle.sol";
import {ZkmlConsumer} from "../ZkmlConsumer.sol";

/// @title KycGate
/// @notice Example (ZK-KYC): admits an address when a KYC classifier, run on the user's
/// private features, says "pass", without the features ever touching the chain.
///
/// The model must have hashed inputs and exactly one input commitment (the Poseidon hash of
/// the private input tensor, as ezkl exposes it; `zkml_oracle.oracle.input_felts` computes
/// it). The user calls {requestVerification} with only that commitment; the gate requests the
/// inference with `inputFelts = [commitment]`, so the oracle accepts only a proof whose input
/// instance is that commitment: a proof made on any other input is refused there
/// (`ZkmlOracleInputMismatch`). The class is the argmax of the verified outputs (ties go to
/// the lower index); the user is admitted when it equals `passClass`.
///
/// Each commitment admits at most one address. Caveats of this minimal gate: the commitment
/// is not bound to the address (anyone may copy a pending commitment; the race is only won
/// if someone who knows the private input proves it), and an unsalted commitment of
/// low-entropy features can be brute-forced: a production gate puts the address and a salt
/// into the committed input.
///
/// Fees: the applicant pays the oracle fee. A request that is never answered (past its
/// deadline, or its model deactivated) is cancelled by {reclaimFee}, or when the applicant
/// applies again, and its fee goes back to the applicant.
contract KycGate is ZkmlConsumer, ReentrancyGuard {
    /// @notice The gas the oracle gives the callback.
    uint32 public constant CALLBACK_GAS_LIMIT = 100_000;

    struct Pending {
        address applicant;
        uint64 deadline;
        uint256 commitment;
    }

    // --- immutables ---

    bytes32 private immutable _modelId;
    uint256 private immutable _passClass;
    uint64 private immutable _requestTtl;

    // --- state ---

    mapping(uint256 requestId => Pending) private _requests;
    mapping(address applicant => uint256 requestId) private _pendingOf;
    mapping(address account => bool) private _admitted;
    mapping(uint256 commitment => address account) private _admittedBy;

    // --- events ---

    /// @notice `applicant` asked to be verified on the private input committed to by `commitment`.
    event VerificationRequested(
        address indexed applicant, uint256 indexed requestId, uint256 commitment, uint64 deadline
    );
    /// @notice `account` was admitted: the verified class of its committed input is `passClass`.
    event Admitted(address indexed account, uint256 indexed requestId, uint256 commitment);
    /// @notice `applicant` was refused: the verified class is `verifiedClass` (or the
    /// commitment already admitted someone, then `verifiedClass == passClass`).
    event Refused(address indexed applicant, uint256 indexed requestId, uint256 verifiedClass);
    /// @notice `applicant`'s unanswered request was cancelled; `refund` wei went back to them.
    event FeeReclaimed(address indexed applicant, uint256 indexed requestId, uint256 refund);

    // --- errors ---

    /// @notice The model's input is not a single Poseidon commitment.
    error KycGateModelNotHashed(bytes32 modelId);
    /// @notice `passClass` is not one of the model's outputs.
    error KycGateInvalidClass(uint256 passClass, uint256 outputCount);
    /// @notice `account` is already admitted.
    error KycGateAlreadyAdmitted(address account);
    /// @notice `applicant` has a verification in flight until `deadline`.
    error KycGateRequestPending(address applicant, uint256 requestId, uint64 deadline);
    /// @notice `commitment` already admitted `account`.
    error KycGateCommitmentUsed(uint256 commitment, address account);
    /// @notice The callback is for a request this gate did not make (or already decided).
    error KycGateUnknownRequest(uint256 requestId, bytes32 modelId);
    /// @notice `applicant` has no request in flight.
    error KycGateNoRequest(address applicant);
    /// @notice Only the oracle sends Ether here (refunds).
    error KycGateUnexpectedEther(address from);
    /// @notice Sending Ether failed.
    error KycGateTransferFailed(address to, uint256 amount);

    // --- constructor ---

    /// @param oracle_ The oracle (trusted: only it may call back).
    /// @param modelId_ The KYC classifier: hashed inputs, one input commitment.
    /// @param passClass_ The output index (class) that admits.
    /// @param requestTtl_ Seconds a verification may wait for its proof.
    constructor(IZkmlOracle oracle_, bytes32 modelId_, uint256 passClass_, uint64 requestTtl_) ZkmlConsumer(oracle_) {
        IZkmlOracle.ModelConfig memory config = oracle_.getModel(modelId_).config;
        if (!config.hashedInputs || config.inputCount != 1) revert KycGateModelNotHashed(modelId_);
        if (passClass_ >= config.outputCount) revert KycGateInvalidClass(passClass_, config.outputCount);
        _modelId = modelId_;
        _passClass = passClass_;
        _requestTtl = requestTtl_;
    }

    /// @notice Asks for verification of the private input committed to by `commitment`
    /// (`msg.value` is the oracle fee). A previous request of the caller that expired
    /// unanswered is superseded: cancelled, its fee refunded to the caller ({FeeReclaimed}).
    /// Emits {VerificationRequested}.
    /// @dev The oracle is trusted and `requestInference` calls nothing back; `nonReentrant` anyway.
    /// @param commitment The Poseidon commitment of the caller's private features (a felt).
    /// @return requestId The oracle's request id.
    function requestVerification(uint256 commitment) external payable nonReentrant returns (uint256 requestId) {
        if (_admitted[msg.sender]) revert KycGateAlreadyAdmitted(msg.sender);
        address holder = _admittedBy[commitment];
        if (holder != address(0)) revert KycGateCommitmentUsed(commitment, holder);
        uint256 current = _pendingOf[msg.sender];
        uint256 refund;
        if (current != 0) {
            uint64 currentDeadline = _requests[current].deadline;
            if (block.timestamp <= currentDeadline) revert KycGateRequestPending(msg.sender, current, currentDeadline);
            refund = _release(current); // expired: it can never be fulfilled
        }
        uint256[] memory inputFelts = new uint256[](1);
        inputFelts[0] = commitment;
        uint64 deadline = uint64(block.timestamp) + _requestTtl;
        requestId = oracle().requestInference{value: msg.value}(
            _modelId, inputFelts, address(this), CALLBACK_GAS_LIMIT, deadline
        );
        _requests[requestId] = Pending({applicant: msg.sender, deadline: deadline, commitment: commitment});
        _pendingOf[msg.sender] = requestId;
        emit VerificationRequested(msg.sender, requestId, commitment, deadline);
        if (refund != 0) _pay(msg.sender, refund);
    }

    /// @notice Cancels the caller's unanswered request (past its deadline, or its model
    /// deactivated: the oracle's refusal is passed on otherwise) and sends its fee back.
    /// A request answered with a failed callback is only forgotten. Emits {FeeReclaimed}.
    /// @return refund The wei sent back.
    function reclaimFee() external nonReentrant returns (uint256 refund) {
        uint256 current = _pendingOf[msg.sender];
        if (current == 0) revert KycGateNoRequest(msg.sender);
        refund = _release(current);
        if (refund != 0) _pay(msg.sender, refund);
    }

    /// @notice Accepts the oracle's refunds only.
    receive() external payable {
        if (msg.sender != address(oracle())) revert KycGateUnexpectedEther(msg.sender);
    }

    // --- views ---

    /// @notice Whether `account` passed verification.
    function isAdmitted(address account) external view returns (bool) {
        return _admitted[account];
    }

    /// @notice The account `commitment` admitted (zero if none).
    function admittedBy(uint256 commitment) external view returns (address) {
        return _admittedBy[commitment];
    }

    /// @notice The verification in flight for `applicant` (0 if none).
    function pendingRequest(address applicant) external view returns (uint256) {
        return _pendingOf[applicant];
    }

    /// @notice (model id, pass class, request TTL).
    function terms() external view returns (bytes32, uint256, uint64) {
        return (_modelId, _passClass, _requestTtl);
    }

    // --- callback ---

    /// @dev Bounded: one pass over the model's outputs (their count is fixed by the model).
    function _onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata outputs) internal override {
        Pending memory p = _requests[requestId];
        if (p.applicant == address(0) || modelId != _modelId) revert KycGateUnknownRequest(requestId, modelId);
        delete _requests[requestId];
        delete _pendingOf[p.applicant];
        uint256 verifiedClass = _argmax(outputs);
        if (verifiedClass == _passClass && _admittedBy[p.commitment] == address(0)) {
            _admitted[p.applicant] = true;
            _admittedBy[p.commitment] = p.applicant;
            emit Admitted(p.applicant, requestId, p.commitment);
        } else {
            emit Refused(p.applicant, requestId, verifiedClass);
        }
    }

    /// @dev Forgets request `requestId` and cancels it at the oracle; its refund.
    function _release(uint256 requestId) private returns (uint256 refund) {
        address applicant = _requests[requestId].applicant;
        delete _requests[requestId];
        delete _pendingOf[applicant];
        refund = _cancelRequest(requestId);
        emit FeeReclaimed(applicant, requestId, refund);
    }

    function _pay(address to, uint256 amount) private {
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert KycGateTransferFailed(to, amount);
    }

    function _argmax(int256[] calldata outputs) private pure returns (uint256 best) {
        uint256 n = outputs.length;
        for (uint256 i = 1; i < n; ++i) {
            if (outputs[i] > outputs[best]) best = i;
        }
    }
}
