// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {IZkmlOracle} from "../interfaces/IZkmlOracle.sol";
import {ModelOutputs} from "../libraries/ModelOutputs.sol";
import {ZkmlConsumer} from "../ZkmlConsumer.sol";

/// @title KycGate
/// @notice Example (ZK-KYC): admits an address when a KYC classifier, run on the user's
/// private features, says "pass", without the features ever touching the chain.
///
/// The model must have hashed, requester-bound inputs (`build --input-visibility hashed
/// --bind-requester`) and one input commitment: the Poseidon hash of the applicant's features,
/// a random salt and the applicant's address (`zkml_oracle.oracle.input_felts` with a
/// `Binding`). The applicant asks the oracle directly, with this gate as the callback:
/// `requestPrivateInference(modelId, [commitment], gate, CALLBACK_GAS_LIMIT, deadline,
/// ciphertext)` with the features and salt sealed to a relayer's key (or `requestInference`
/// with the same arguments but the ciphertext, to prove it themselves). The oracle
/// accepts only a proof whose input instance is that commitment (`ZkmlOracleInputMismatch`)
/// and whose requester element is the request's requester (`ZkmlOracleRequesterMismatch`);
/// the gate admits that requester, read back from the oracle. So a copier who requests with
/// an applicant's commitment can never have the applicant's proof settle their request, and
/// the salt keeps guesses of the features from hashing to the commitment. The class is the
/// argmax of the verified outputs (ties go to the lower index); the requester is admitted when
/// it equals `passClass`.
contract KycGate is ZkmlConsumer {
    /// @notice The gas the oracle must give the callback (pass it as `callbackGasLimit`).
    uint32 public constant CALLBACK_GAS_LIMIT = 100_000;

    // --- immutables ---

    bytes32 private immutable _modelId;
    uint256 private immutable _passClass;

    // --- state ---

    mapping(address account => bool) private _admitted;

    // --- events ---

    /// @notice `account` was admitted: the verified class of its committed input is `passClass`.
    event Admitted(address indexed account, uint256 indexed requestId);
    /// @notice `applicant` was refused: the verified class is `verifiedClass`.
    event Refused(address indexed applicant, uint256 indexed requestId, uint256 verifiedClass);

    // --- errors ---

    /// @notice The model's input is not a single requester-bound Poseidon commitment.
    error KycGateModelNotBound(bytes32 modelId);
    /// @notice `passClass` is not one of the model's outputs.
    error KycGateInvalidClass(uint256 passClass, uint256 outputCount);
    /// @notice The callback is for another model's request.
    error KycGateUnknownRequest(uint256 requestId, bytes32 modelId);

    // --- constructor ---

    /// @param oracle_ The oracle (trusted: only it may call back).
    /// @param modelId_ The KYC classifier: hashed, requester-bound inputs, one commitment.
    /// @param passClass_ The output index (class) that admits.
    constructor(IZkmlOracle oracle_, bytes32 modelId_, uint256 passClass_) ZkmlConsumer(oracle_) {
        IZkmlOracle.ModelConfig memory config = oracle_.getModel(modelId_).config;
        if (!config.hashedInputs || !config.requesterBound || config.inputCount != 1) {
            revert KycGateModelNotBound(modelId_);
        }
        if (passClass_ >= config.outputCount) revert KycGateInvalidClass(passClass_, config.outputCount);
        _modelId = modelId_;
        _passClass = passClass_;
    }

    // --- views ---

    /// @notice Whether `account` passed verification.
    function isAdmitted(address account) external view returns (bool) {
        return _admitted[account];
    }

    /// @notice (model id, pass class).
    function terms() external view returns (bytes32, uint256) {
        return (_modelId, _passClass);
    }

    // --- callback ---

    /// @dev The oracle checked the proof's requester element against the request's
    /// requester, so the requester read back here is the one the commitment names. Bounded:
    /// one pass over the model's outputs (their count is fixed by the model).
    function _onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata outputs) internal override {
        if (modelId != _modelId) revert KycGateUnknownRequest(requestId, modelId);
        address requester = _callbackRequester();
        uint256 verifiedClass = ModelOutputs.argmax(outputs);
        if (verifiedClass == _passClass) {
            _admitted[requester] = true;
            emit Admitted(requester, requestId);
        } else {
            emit Refused(requester, requestId, verifiedClass);
        }
    }

    /// @dev Any applicant's own request: the model is requester-bound, so the oracle settled it
    /// only with a proof whose commitment names that requester, the account admitted here.
    function _acceptsRequester(address, bytes32 modelId) internal view override returns (bool) {
        return modelId == _modelId;
    }
}
