// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IZkmlConsumer} from "./interfaces/IZkmlConsumer.sol";
import {IZkmlOracle} from "./interfaces/IZkmlOracle.sol";
import {IZkmlVerifier} from "./interfaces/IZkmlVerifier.sol";
import {FieldEncoding} from "./libraries/FieldEncoding.sol";

/// @title ZkmlOracle
/// @notice Verified model inference on-chain (protocol v1, shared/specs/oracle-protocol.md).
///
/// - Registry: a model id is keccak256(abi.encode(config)) and binds, for ever, one verifier
///   contract and one artifact digest. Registration needs {REGISTRAR_ROLE}; the admin
///   ({DEFAULT_ADMIN_ROLE}) may (de)activate a model, nothing may mutate it.
/// - Request/fulfil: a request fixes its input felts (public inputs, or the Poseidon
///   commitment of a private input) and escrows its fee; anyone may fulfil it once, before its
///   deadline, with a proof the bound verifier accepts and whose input instances equal the
///   request's. The fee is credited to the fulfiller (pull payment, {withdraw}); an expired
///   request may be cancelled by its requester, who is credited the fee back.
/// - Push feed: anyone may publish a verified result as a model's next round
///   ({submitResult}); rounds are consecutive from 1 with strictly increasing `updatedAt`,
///   as Chainlink's feeds (read them through `ZkmlFeedAdapter`).
///
/// Every state-changing entry point except the admin ones is `nonReentrant`: a consumer
/// callback can never re-enter the oracle (protocol guarantee 5).
contract ZkmlOracle is IZkmlOracle, AccessControl, ReentrancyGuard {
    // --- constants ---

    /// @notice The role allowed to register models.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice At most this many bytes of a failed callback's revert data go into {CallbackFailed}.
    uint256 public constant MAX_CALLBACK_REASON = 256;
    /// @notice Gas kept back for the bookkeeping around the callback (the call itself, the
    /// event after it), on top of what EIP-150 withholds.
    uint256 public constant CALLBACK_GAS_OVERHEAD = 10_000;
    /// @notice The largest output scale (bits of fraction) a model may declare.
    uint8 public constant MAX_OUTPUT_SCALE = 128;

    // --- immutables ---

    bool private immutable _allowDevSrs;

    // --- state ---

    mapping(bytes32 modelId => Model) private _models;
    mapping(uint256 requestId => Request) private _requests;
    uint256 private _requestCount;
    mapping(bytes32 modelId => mapping(uint80 round => Result)) private _results;
    mapping(bytes32 modelId => uint80) private _latestRound;
    mapping(bytes32 modelId => mapping(bytes32 inputHash => uint80)) private _roundOfInput;
    mapping(address account => uint256) private _pendingWithdrawals;

    // --- constructor ---

    /// @param admin Gets {DEFAULT_ADMIN_ROLE} and {REGISTRAR_ROLE}.
    /// @param allowDevSrs_ Accept models built with a test-only SRS on any chain (protocol
    /// guarantee 7: only ever for a test network where forgeable proofs are acceptable). On a
    /// local dev chain (chain id 31337 or 1337) they are always accepted.
    constructor(address admin, bool allowDevSrs_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
        _allowDevSrs = allowDevSrs_;
    }

    // --- registry ---

    /// @inheritdoc IZkmlOracle
    /// @dev Requires {REGISTRAR_ROLE}. Refuses an inconsistent layout
    /// ({ZkmlOracleInvalidConfig}), an id already taken ({ZkmlOracleModelExists}) and, off a
    /// local dev chain without the constructor's override, a dev-SRS model
    /// ({ZkmlOracleDevSrsModel}). The model starts active. Emits {ModelRegistered}.
    function registerModel(ModelConfig calldata config)
        external
        onlyRole(REGISTRAR_ROLE)
        returns (bytes32 modelId)
    {
        _validateConfig(config);
        modelId = keccak256(abi.encode(config));
        if (_models[modelId].registeredAt != 0) revert ZkmlOracleModelExists(modelId);
        if (config.devSrs && !devSrsAllowed()) revert ZkmlOracleDevSrsModel(modelId);
        _models[modelId] = Model({config: config, active: true, registeredAt: uint64(block.timestamp)});
        emit ModelRegistered(modelId, config.verifier, config.artifactDigest, config);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Requires {DEFAULT_ADMIN_ROLE}. Pending requests of an inactive model cannot be
    /// fulfilled; they can be cancelled after their deadline. Emits {ModelActiveSet}.
    function setModelActive(bytes32 modelId, bool active) external onlyRole(DEFAULT_ADMIN_ROLE) {
        Model storage model = _existingModel(modelId);
        model.active = active;
        emit ModelActiveSet(modelId, active);
    }

    // --- request / fulfil ---

    /// @inheritdoc IZkmlOracle
    /// @dev `inputFelts` are the input instances the proof must carry (felts < r), as many as
    /// the model's `inputCount`; `deadline` (unix seconds) must be in the future; `callback`
    /// may be zero (no callback); `msg.value` is the fee, escrowed until fulfilment or
    /// cancellation. Request ids are consecutive from 1. Emits {InferenceRequested}.
    function requestInference(
        bytes32 modelId,
        uint256[] calldata inputFelts,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline
    ) external payable nonReentrant returns (uint256 requestId) {
        Model storage model = _activeModel(modelId);
        uint256 expected = model.config.inputCount;
        if (inputFelts.length != expected) revert ZkmlOracleWrongInputCount(expected, inputFelts.length);
        _checkFelts(inputFelts, 0);
        if (deadline <= block.timestamp) revert ZkmlOracleBadDeadline(deadline);

        requestId = ++_requestCount;
        _requests[requestId] = Request({
            modelId: modelId,
            requester: msg.sender,
            callback: callback,
            callbackGasLimit: callbackGasLimit,
            deadline: deadline,
            status: RequestStatus.Pending,
            fee: msg.value,
            inputHash: keccak256(abi.encodePacked(inputFelts)),
            fulfiller: address(0)
        });
        emit InferenceRequested(
            requestId, modelId, msg.sender, inputFelts, msg.value, deadline, callback, callbackGasLimit
        );
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Checks, in order: the request is pending ({ZkmlOracleUnknownRequest},
    /// {ZkmlOracleRequestNotPending}: losing a race to another fulfiller shows as status
    /// Fulfilled), not past its deadline, its model active, `instances` has the model's count
    /// and every instance is a felt, the input slice equals the request's input
    /// ({ZkmlOracleInputMismatch}), the bound verifier accepts the proof
    /// ({ZkmlOracleInvalidProof}). Then records the fulfilment, credits the fee to the caller,
    /// emits {RequestFulfilled} with the outputs as signed fixed-point integers, and only then
    /// calls the consumer with exactly the requester's gas limit: its revert or gas exhaustion
    /// is recorded as {CallbackFailed} and never undoes the fulfilment. The caller must send
    /// enough gas for the callback to get its limit under EIP-150
    /// ({ZkmlOracleInsufficientCallbackGas}).
    function fulfill(uint256 requestId, bytes calldata proof, uint256[] calldata instances)
        external
        nonReentrant
    {
        Request storage request = _requests[requestId];
        RequestStatus status = request.status;
        if (status == RequestStatus.None) revert ZkmlOracleUnknownRequest(requestId);
        if (status != RequestStatus.Pending) revert ZkmlOracleRequestNotPending(requestId, status);
        uint64 deadline = request.deadline;
        if (block.timestamp > deadline) revert ZkmlOracleRequestExpired(requestId, deadline);
        bytes32 modelId = request.modelId;
        ModelConfig storage config = _activeModel(modelId).config;
        _checkInstances(config, instances);
        uint256 inputOffset = config.inputOffset;
        if (_hashSlice(instances, inputOffset, inputOffset + config.inputCount) != request.inputHash) {
            revert ZkmlOracleInputMismatch(requestId);
        }
        _verify(modelId, config.verifier, proof, instances);

        // Effects.
        request.status = RequestStatus.Fulfilled;
        request.fulfiller = msg.sender;
        uint256 fee = request.fee;
        if (fee != 0) _pendingWithdrawals[msg.sender] += fee;
        int256[] memory outputs = _outputs(config, instances);
        emit RequestFulfilled(requestId, modelId, msg.sender, outputs);

        // Interaction, last.
        address callback = request.callback;
        if (callback != address(0)) {
            _callConsumer(requestId, modelId, callback, request.callbackGasLimit, outputs);
        }
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Only the requester, only once the deadline has passed, only while pending.
    /// Emits {RequestCancelled}; withdraw the refund with {withdraw}.
    function cancel(uint256 requestId) external nonReentrant {
        Request storage request = _requests[requestId];
        RequestStatus status = request.status;
        if (status == RequestStatus.None) revert ZkmlOracleUnknownRequest(requestId);
        if (status != RequestStatus.Pending) revert ZkmlOracleRequestNotPending(requestId, status);
        if (msg.sender != request.requester) revert ZkmlOracleNotRequester(requestId, msg.sender);
        uint64 deadline = request.deadline;
        if (block.timestamp <= deadline) revert ZkmlOracleRequestNotExpired(requestId, deadline);

        request.status = RequestStatus.Cancelled;
        uint256 refund = request.fee;
        if (refund != 0) _pendingWithdrawals[msg.sender] += refund;
        emit RequestCancelled(requestId, refund);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Reverts {ZkmlOracleNothingToWithdraw} when nothing is credited, and
    /// {ZkmlOracleTransferFailed} when the caller refuses the Ether. Emits {Withdrawn}.
    function withdraw() external nonReentrant {
        uint256 amount = _pendingWithdrawals[msg.sender];
        if (amount == 0) revert ZkmlOracleNothingToWithdraw(msg.sender);
        _pendingWithdrawals[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert ZkmlOracleTransferFailed(msg.sender, amount);
    }

    // --- push feed ---

    /// @inheritdoc IZkmlOracle
    /// @dev Anyone may submit. The model must be active, and the proof pass the same checks
    /// as in {fulfill} (count, felts, verifier). Rounds are consecutive from 1 and at most one
    /// per block ({ZkmlOracleRoundTooSoon}), so `updatedAt` strictly increases. The result is
    /// also indexed by its input hash (keccak256 of the input slice) for {resultOf}.
    /// Emits {ResultSubmitted}.
    function submitResult(bytes32 modelId, bytes calldata proof, uint256[] calldata instances)
        external
        nonReentrant
        returns (uint80 round)
    {
        ModelConfig storage config = _activeModel(modelId).config;
        uint80 last = _latestRound[modelId];
        if (last != 0) {
            uint64 lastUpdatedAt = _results[modelId][last].updatedAt;
            if (block.timestamp <= lastUpdatedAt) revert ZkmlOracleRoundTooSoon(modelId, lastUpdatedAt);
        }
        _checkInstances(config, instances);
        _verify(modelId, config.verifier, proof, instances);

        uint256 inputOffset = config.inputOffset;
        bytes32 inputHash = _hashSlice(instances, inputOffset, inputOffset + config.inputCount);
        int256[] memory outputs = _outputs(config, instances);
        round = last + 1;
        Result storage result = _results[modelId][round];
        result.round = round;
        result.updatedAt = uint64(block.timestamp);
        result.inputHash = inputHash;
        result.outputs = outputs;
        _latestRound[modelId] = round;
        _roundOfInput[modelId][inputHash] = round;
        emit ResultSubmitted(modelId, round, inputHash, outputs, msg.sender);
    }

    // --- views ---

    /// @inheritdoc IZkmlOracle
    /// @dev Reverts {ZkmlOracleUnknownModel} for an unregistered id.
    function getModel(bytes32 modelId) external view returns (Model memory) {
        return _existingModel(modelId);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Reverts {ZkmlOracleUnknownRequest} for an id never issued.
    function getRequest(uint256 requestId) external view returns (Request memory) {
        Request storage request = _requests[requestId];
        if (request.status == RequestStatus.None) revert ZkmlOracleUnknownRequest(requestId);
        return request;
    }

    /// @inheritdoc IZkmlOracle
    /// @dev The push feed's latest round. Reverts {ZkmlOracleUnknownModel} for an unregistered
    /// id and {ZkmlOracleNoResult} while the feed has no round.
    function latestResult(bytes32 modelId) external view returns (Result memory) {
        _existingModel(modelId);
        uint80 round = _latestRound[modelId];
        if (round == 0) revert ZkmlOracleNoResult(modelId);
        return _results[modelId][round];
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Reverts {ZkmlOracleUnknownRound} for round 0 or a round not yet submitted.
    function getResult(bytes32 modelId, uint80 round) external view returns (Result memory) {
        if (round == 0 || round > _latestRound[modelId]) revert ZkmlOracleUnknownRound(modelId, round);
        return _results[modelId][round];
    }

    /// @inheritdoc IZkmlOracle
    /// @dev The latest push-feed round whose input hash (keccak256 of the proof's input
    /// slice, as in {Request-inputHash}) is `inputHash`. Fulfilled requests are not indexed
    /// here: their outputs are in {RequestFulfilled}. Reverts {ZkmlOracleNoResult} if none.
    function resultOf(bytes32 modelId, bytes32 inputHash) external view returns (Result memory) {
        uint80 round = _roundOfInput[modelId][inputHash];
        if (round == 0) revert ZkmlOracleNoResult(modelId);
        return _results[modelId][round];
    }

    /// @inheritdoc IZkmlOracle
    function pendingWithdrawal(address account) external view returns (uint256) {
        return _pendingWithdrawals[account];
    }

    /// @notice The number of requests made so far (the last request id).
    function requestCount() external view returns (uint256) {
        return _requestCount;
    }

    /// @notice The latest push-feed round of `modelId` (0 while the feed is fresh).
    function latestRound(bytes32 modelId) external view returns (uint80) {
        return _latestRound[modelId];
    }

    /// @notice Whether dev-SRS models are accepted here: on a local dev chain (31337, 1337),
    /// or anywhere when the oracle was constructed with `allowDevSrs`.
    function devSrsAllowed() public view returns (bool) {
        return _allowDevSrs || block.chainid == 31337 || block.chainid == 1337;
    }

    // --- internal ---

    function _validateConfig(ModelConfig calldata config) private view {
        if (config.verifier.code.length == 0) revert ZkmlOracleInvalidConfig("verifier has no code");
        if (config.artifactDigest == bytes32(0)) revert ZkmlOracleInvalidConfig("artifactDigest is zero");
        uint256 n = config.numInstances;
        if (n == 0) revert ZkmlOracleInvalidConfig("numInstances is zero");
        if (config.outputCount == 0) revert ZkmlOracleInvalidConfig("outputCount is zero");
        uint256 inputEnd = uint256(config.inputOffset) + config.inputCount;
        uint256 outputEnd = uint256(config.outputOffset) + config.outputCount;
        if (inputEnd > n) revert ZkmlOracleInvalidConfig("input segment past numInstances");
        if (outputEnd > n) revert ZkmlOracleInvalidConfig("output segment past numInstances");
        if (config.inputCount != 0 && inputEnd > config.outputOffset && outputEnd > config.inputOffset) {
            revert ZkmlOracleInvalidConfig("input and output segments overlap");
        }
        if (config.outputScale > MAX_OUTPUT_SCALE) revert ZkmlOracleInvalidConfig("outputScale too large");
    }

    function _existingModel(bytes32 modelId) private view returns (Model storage model) {
        model = _models[modelId];
        if (model.registeredAt == 0) revert ZkmlOracleUnknownModel(modelId);
    }

    function _activeModel(bytes32 modelId) private view returns (Model storage model) {
        model = _existingModel(modelId);
        if (!model.active) revert ZkmlOracleModelInactive(modelId);
    }

    /// @dev Every value must be a felt; reports the first that is not, at `base + index`.
    function _checkFelts(uint256[] calldata values, uint256 base) private pure {
        uint256 n = values.length;
        for (uint256 i = 0; i < n; ++i) {
            uint256 v = values[i];
            if (!FieldEncoding.isFelt(v)) revert ZkmlOracleInstanceOutOfField(base + i, v);
        }
    }

    function _checkInstances(ModelConfig storage config, uint256[] calldata instances) private view {
        uint256 expected = config.numInstances;
        if (instances.length != expected) revert ZkmlOracleWrongInstanceCount(expected, instances.length);
        _checkFelts(instances, 0);
    }

    /// @dev keccak256(abi.encodePacked(values[start:end])), without copying through Solidity.
    function _hashSlice(uint256[] calldata values, uint256 start, uint256 end) private pure returns (bytes32 h) {
        uint256[] calldata slice = values[start:end];
        assembly ("memory-safe") {
            let len := mul(slice.length, 0x20)
            let ptr := mload(0x40)
            calldatacopy(ptr, slice.offset, len)
            h := keccak256(ptr, len)
        }
    }

    /// @dev ezkl's verifier reverts (with empty data) on an invalid proof: a revert, a false
    /// and return data shorter than a word all count as refusal. The verifier is only read
    /// (staticcall): it cannot change state or call back into anything that does.
    function _verify(bytes32 modelId, address verifier, bytes calldata proof, uint256[] calldata instances)
        private
        view
    {
        (bool ok, bytes memory ret) =
            verifier.staticcall(abi.encodeCall(IZkmlVerifier.verifyProof, (proof, instances)));
        if (!ok || ret.length < 32 || abi.decode(ret, (uint256)) != 1) revert ZkmlOracleInvalidProof(modelId);
    }

    function _outputs(ModelConfig storage config, uint256[] calldata instances)
        private
        view
        returns (int256[] memory outputs)
    {
        uint256 offset = config.outputOffset;
        uint256 n = config.outputCount;
        outputs = new int256[](n);
        for (uint256 i = 0; i < n; ++i) {
            outputs[i] = FieldEncoding.toSigned(instances[offset + i]);
        }
    }

    /// @dev Calls the consumer with exactly `gasLimit` gas: EIP-150 forwards at most 63/64 of
    /// what is left, so refuse unless that is at least `gasLimit` (the call would otherwise
    /// run with less than the requester asked for, and a griefing fulfiller could make it
    /// fail on purpose). A consumer without code gets no call and a {CallbackFailed}.
    function _callConsumer(
        uint256 requestId,
        bytes32 modelId,
        address callback,
        uint256 gasLimit,
        int256[] memory outputs
    ) private {
        bytes memory data = abi.encodeCall(IZkmlConsumer.onInferenceResult, (requestId, modelId, outputs));
        if (callback.code.length == 0) {
            emit CallbackFailed(requestId, "");
            return;
        }
        uint256 available = gasleft();
        uint256 needed = gasLimit + gasLimit / 63 + CALLBACK_GAS_OVERHEAD;
        if (available < needed) revert ZkmlOracleInsufficientCallbackGas(requestId, needed, available);
        bool ok;
        bytes memory reason;
        assembly ("memory-safe") {
            ok := call(gasLimit, callback, 0, add(data, 0x20), mload(data), 0, 0)
            // Copy at most MAX_CALLBACK_REASON bytes: a consumer cannot make the oracle pay
            // for a huge revert payload.
            let size := returndatasize()
            if gt(size, MAX_CALLBACK_REASON) { size := MAX_CALLBACK_REASON }
            reason := mload(0x40)
            mstore(reason, size)
            returndatacopy(add(reason, 0x20), 0, size)
            mstore(0x40, add(add(reason, 0x20), and(add(size, 0x1f), not(0x1f))))
        }
        if (ok) emit CallbackSucceeded(requestId);
        else emit CallbackFailed(requestId, reason);
    }
}
