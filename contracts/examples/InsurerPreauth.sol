// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {IZkmlOracle} from "../interfaces/IZkmlOracle.sol";
import {ModelOutputs} from "../libraries/ModelOutputs.sol";
import {ZkmlConsumer} from "../ZkmlConsumer.sol";

/// @title InsurerPreauth
/// @notice Example (medical diagnosis): an insurer pre-authorises a patient's procedure at
/// once when a diagnostic model, run on the patient's private clinical features, puts them in
/// the low-risk class; any other class is referred to a specialist review. The features never
/// touch the chain, and the insurer learns only the verified risk class.
///
/// The model must have hashed, requester-bound inputs (`build --input-visibility hashed
/// --bind-requester`): the request carries one Poseidon commitment of the features, a random
/// salt and the patient's address. The patient asks the oracle with
/// `requestPrivateInference(modelId, [commitment], insurer, CALLBACK_GAS_LIMIT, deadline,
/// ciphertext)`, the features and salt sealed to a relayer's key; the relayer decrypts, checks
/// them against the commitment, proves and fulfils; the oracle accepts only a proof for that
/// commitment whose requester element is the patient. The risk class is the argmax of the
/// verified outputs (ties go to the lower index).
contract InsurerPreauth is ZkmlConsumer {
    /// @notice The gas the oracle must give the callback (pass it as `callbackGasLimit`).
    uint32 public constant CALLBACK_GAS_LIMIT = 100_000;

    enum Decision {
        None,
        Preauthorised,
        Referred
    }

    // --- immutables ---

    bytes32 private immutable _modelId;
    uint256 private immutable _lowRiskClass;

    // --- state ---

    mapping(address patient => Decision) private _decisions;

    // --- events ---

    /// @notice `patient`'s procedure is pre-authorised: verified risk class `lowRiskClass`.
    event Preauthorised(address indexed patient, uint256 indexed requestId);
    /// @notice `patient` is referred to a specialist review: verified risk class `riskClass`.
    event Referred(address indexed patient, uint256 indexed requestId, uint256 riskClass);

    // --- errors ---

    /// @notice The model's input is not a single requester-bound Poseidon commitment.
    error InsurerPreauthModelNotPrivate(bytes32 modelId);
    /// @notice `lowRiskClass` is not one of the model's outputs.
    error InsurerPreauthInvalidClass(uint256 lowRiskClass, uint256 outputCount);
    /// @notice The callback is for another model's request.
    error InsurerPreauthUnknownModel(uint256 requestId, bytes32 modelId);

    // --- constructor ---

    /// @param oracle_ The oracle (trusted: only it may call back).
    /// @param modelId_ The diagnostic model: hashed, requester-bound inputs, one commitment.
    /// @param lowRiskClass_ The output index (class) that pre-authorises.
    constructor(IZkmlOracle oracle_, bytes32 modelId_, uint256 lowRiskClass_) ZkmlConsumer(oracle_) {
        IZkmlOracle.ModelConfig memory config = oracle_.getModel(modelId_).config;
        if (!config.hashedInputs || !config.requesterBound || config.inputCount != 1) {
            revert InsurerPreauthModelNotPrivate(modelId_);
        }
        if (lowRiskClass_ >= config.outputCount) {
            revert InsurerPreauthInvalidClass(lowRiskClass_, config.outputCount);
        }
        _modelId = modelId_;
        _lowRiskClass = lowRiskClass_;
    }

    // --- views ---

    /// @notice The latest decision for `patient` (None before any verified result).
    function decisionOf(address patient) external view returns (Decision) {
        return _decisions[patient];
    }

    // --- callback ---

    /// @dev The oracle checked the proof's requester element against the request's requester,
    /// so the requester read back here is the patient the commitment names. Bounded: one pass
    /// over the model's outputs.
    function _onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata outputs) internal override {
        if (modelId != _modelId) revert InsurerPreauthUnknownModel(requestId, modelId);
        address patient = _callbackRequester();
        uint256 riskClass = ModelOutputs.argmax(outputs);
        if (riskClass == _lowRiskClass) {
            _decisions[patient] = Decision.Preauthorised;
            emit Preauthorised(patient, requestId);
        } else {
            _decisions[patient] = Decision.Referred;
            emit Referred(patient, requestId, riskClass);
        }
    }

    /// @dev Any patient's own request: the model is requester-bound, so the oracle settled it
    /// only with a proof whose commitment names that requester, the patient decided on here.
    function _acceptsRequester(address, bytes32 modelId) internal view override returns (bool) {
        return modelId == _modelId;
    }
}
