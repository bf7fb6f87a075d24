// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

import {IZkmlConsumer} from "./interfaces/IZkmlConsumer.sol";
import {IZkmlOracle} from "./interfaces/IZkmlOracle.sol";
import {IZkmlVerifier} from "./interfaces/IZkmlVerifier.sol";
import {FieldEncoding} from "./libraries/FieldEncoding.sol";
import {VerifierCodeScan} from "./libraries/VerifierCodeScan.sol";

/// @title ZkmlOracle
/// @notice Verified model inference on-chain (protocol v1, shared/specs/oracle-protocol.md).
///
/// - Registry: a model id is keccak256(abi.encode(config)) and binds, for ever, one verifier
///   contract and one artifact digest. Registration needs {REGISTRAR_ROLE}; the admin
///   ({DEFAULT_ADMIN_ROLE}) may (de)activate a model, nothing may mutate it.
/// - Request/fulfil: a request fixes its input felts (public inputs, or the Poseidon
///   commitment of a private input) and escrows its fee; anyone may fulfil it once, before its
///   deadline (during its grace period, only a {FULFILLER_ROLE} holder), with a proof the
///   bound verifier accepts and whose input instances equal the request's. The fee is
///   credited to the fulfiller (pull payment, {withdraw}); an expired request (or one of a
///   deactivated model) may be cancelled by its requester, who is credited the fee back.
///   Deadlines and callback gas limits are capped ({Settings}). A batched model
///   (`batchSize` > 1) proves up to `batchSize` inferences at once: {fulfillBatch} settles a
///   request per slot with one verification.
/// - Push feed: a model's publishers (or anyone, once the admin opened its feed) may publish a
///   verified result as its next round ({submitResult}, or every slot of a batched proof as
///   one round with {submitResultBatch}); rounds are consecutive from 1 with strictly
///   increasing `updatedAt`, as Chainlink's feeds (read them through `ZkmlFeedAdapter`).
///
/// Every state-changing entry point except the admin ones is `nonReentrant` (or, making no
/// external call, `notEntered`): a consumer callback can never re-enter the oracle (protocol
/// guarantee 5).
contract ZkmlOracle is IZkmlOracle, AccessControl {
    // --- constants ---

    /// @notice The role allowed to register models.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice The role allowed to fulfil a request during its grace period
    /// ({Settings-fulfillerGracePeriod}); anyone may once it is over.
    bytes32 public constant FULFILLER_ROLE = keccak256("FULFILLER_ROLE");
    /// @notice {Settings-maxCallbackGasLimit} at deployment: Chainlink VRF's own cap.
    uint32 public constant DEFAULT_MAX_CALLBACK_GAS_LIMIT = 2_500_000;
    /// @notice {Settings-maxRequestTtl} at deployment.
    uint64 public constant DEFAULT_MAX_REQUEST_TTL = 30 days;
    /// @notice No setting may let a single callback take more than this (a block is 30 M gas).
    uint32 public constant MAX_CALLBACK_GAS_LIMIT_CAP = 15_000_000;
    /// @notice At most this many bytes of a failed callback's revert data go into {CallbackFailed}.
    uint256 public constant MAX_CALLBACK_REASON = 256;
    /// @notice Gas kept back for the bookkeeping around the callback (the call itself, the
    /// event after it), on top of what EIP-150 withholds.
    uint256 public constant CALLBACK_GAS_OVERHEAD = 10_000;
    /// @notice The largest output scale (bits of fraction) a model may declare.
    uint8 public constant MAX_OUTPUT_SCALE = 128;
    /// @notice A requester-bound slot exposes its requester's address in this many limbs of
    /// {REQUESTER_LIMB_BITS} bits, least significant first (ezkl keeps an input element exact
    /// only up to 2**24).
    uint256 public constant REQUESTER_LIMBS = 7;
    uint256 public constant REQUESTER_LIMB_BITS = 24;

    /// @dev What {fulfillBatch} plans for a slot, one byte per slot: settle its request
    /// (pending when checked), skip it (1 + {SkipReason}), or, once settled, call its consumer.
    bytes1 private constant _SETTLE = 0x00;
    bytes1 private constant _CALL_BACK = 0xff;

    // --- types ---

    /// @dev A model as stored: what a request reads (registered: a verifier; active; its
    /// input count) sits in slot 0, what fulfilling and publishing read in slots 0 and 1; the
    /// artifact digest, only ever read by {getModel}, in the third. `index` is the model's
    /// registration number (from 1). Slots 3 and 4 (params commitment, params and requester
    /// offsets) are read only for a model with hashed params or requester-bound inputs (the
    /// two flags of slot 1).
    struct StoredModel {
        // slot 0
        address verifier;
        uint32 inputCount;
        uint32 batchSize;
        uint24 index;
        bool active;
        // slot 1
        uint32 numInstances;
        uint32 inputOffset;
        uint32 outputOffset;
        uint32 outputCount;
        uint8 outputScale;
        bool hashedInputs;
        bool devSrs;
        bool hashedParams;
        bool requesterBound;
        uint64 registeredAt;
        // slot 2
        bytes32 artifactDigest;
        // slot 3
        bytes32 paramsCommitment;
        // slot 4
        uint32 paramsOffset;
        uint32 paramsCount;
        uint32 requesterOffset;
    }

    /// @dev An active model as fulfilling and publishing use it: its id and the fields of
    /// its first two slots, read once.
    struct ActiveModel {
        bytes32 id;
        address verifier;
        uint256 numInstances;
        uint256 inputOffset;
        uint256 inputCount;
        uint256 outputOffset;
        uint256 outputCount;
        uint256 batchSize;
        uint256 paramsOffset;
        uint256 paramsCount; // 0: fixed params, nothing to check
        bytes32 paramsCommitment;
        uint256 requesterOffset;
        bool requesterBound;
    }

    /// @dev The request counter, the settings and the reentrancy lock, in one slot: a request
    /// reads and writes it once; a settlement reads it anyway, so its lock costs no cold read.
    struct Config {
        uint32 maxCallbackGasLimit;
        uint32 fulfillerGracePeriod;
        uint64 maxRequestTtl;
        uint120 requestCount;
        bool entered;
    }

    /// @dev What {fulfillBatch} settled: how many requests, their fees, and the gas their
    /// callbacks need.
    struct Settlement {
        uint256 settled;
        uint256 fees;
        uint256 callbackGas;
    }

    /// @dev A model's push feed: its latest round and when it was stored (one slot, so the
    /// one-round-per-block check reads one slot).
    struct Feed {
        uint80 latestRound;
        uint64 updatedAt;
    }

    /// @dev One round of a push feed: when it was stored and its last slot (its value).
    struct Round {
        uint64 updatedAt;
        uint32 lastSlot;
    }

    /// @dev One slot's result in a round.
    struct SlotResult {
        bytes32 inputHash;
        int256[] outputs;
    }

    /// @dev Where the latest result for an input hash is (round 0: none).
    struct ResultRef {
        uint80 round;
        uint32 slot;
    }

    // --- immutables ---

    bool private immutable _allowDevSrs;

    // --- state ---

    mapping(bytes32 modelId => StoredModel) private _models;
    uint256 private _modelCount;
    /// @dev Half a slot per request: requests 2k-1 and 2k share slot k (the odd id in its low
    /// 128 bits, see {_pairOf}), so only every other request pays for a fresh slot (22.1 k
    /// gas; the second of a pair 5 k). A request's half is the low 128 bits of
    /// keccak256(abi.encode(request)) with its low two bits replaced by the status (see
    /// {_stamp}) while pending or once cancelled; cleared (zero) once fulfilled, which refunds
    /// most of the slot's write (EIP-3529) when its partner is cleared too: an issued id (<=
    /// the request count) with a zero half is Fulfilled, any other zero half was never issued.
    /// Why 126 bits bind the fields: docs/protocol.md, "The request commitment".
    mapping(uint256 pair => uint256 stamps) private _requests;
    mapping(bytes32 modelId => Feed) private _feeds;
    mapping(bytes32 modelId => mapping(uint80 round => Round)) private _rounds;
    mapping(bytes32 modelId => mapping(uint80 round => mapping(uint256 slot => SlotResult))) private _slotResults;
    mapping(bytes32 modelId => mapping(bytes32 inputHash => ResultRef)) private _resultOfInput;
    mapping(address account => uint256) private _pendingWithdrawals;
    Config private _config;
    mapping(bytes32 modelId => bytes32 codehash) private _verifierCodehashes;
    mapping(bytes32 modelId => mapping(address account => bool)) private _publishers;
    mapping(bytes32 modelId => bool) private _feedOpen;

    // --- constructor ---

    /// @param admin Gets {DEFAULT_ADMIN_ROLE} and {REGISTRAR_ROLE}.
    /// @param allowDevSrs_ Accept models built with a test-only SRS on any chain (protocol
    /// guarantee 7: only ever for a test network where forgeable proofs are acceptable). On a
    /// local dev chain (chain id 31337 or 1337) they are always accepted.
    constructor(address admin, bool allowDevSrs_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
        _allowDevSrs = allowDevSrs_;
        _setSettings(
            Settings({
                maxCallbackGasLimit: DEFAULT_MAX_CALLBACK_GAS_LIMIT,
                fulfillerGracePeriod: 0,
                maxRequestTtl: DEFAULT_MAX_REQUEST_TTL
            })
        );
    }

    // --- reentrancy lock ---

    /// @dev OpenZeppelin's `ReentrancyGuard`, with its flag in the {Config} slot rather than a
    /// slot of its own (transient storage needs solc >= 0.8.24; the oracle builds with
    /// 0.8.20): an entry point that calls out (a verifier, a consumer, a withdrawal's
    /// recipient) takes and releases the lock, which the EIP-2200 refund makes ~0.2 k gas on
    /// a slot it reads anyway (fulfilments), instead of ~2.3 k.
    modifier nonReentrant() {
        if (_config.entered) revert ReentrancyGuardReentrantCall();
        _config.entered = true;
        _;
        _config.entered = false;
    }

    /// @dev For an entry point that makes no external call (requests, {cancel}): nothing can
    /// re-enter it, so it only refuses to run inside one that does (from a consumer's
    /// callback), which a read of the flag decides, without the lock's write.
    modifier notEntered() {
        if (_config.entered) revert ReentrancyGuardReentrantCall();
        _;
    }

    // --- registry ---

    /// @inheritdoc IZkmlOracle
    /// @dev Requires {REGISTRAR_ROLE}. Refuses an inconsistent layout
    /// ({ZkmlOracleInvalidConfig}: every slot's inputs and outputs within `numInstances`,
    /// the input and output regions apart, `batchSize` >= 1), an id already taken
    /// ({ZkmlOracleModelExists}) and, off a local dev chain without the constructor's
    /// override, a dev-SRS model ({ZkmlOracleDevSrsModel}), and a verifier whose code could
    /// change what it answers: no solc layout ({ZkmlOracleUnrecognisedVerifier}), state,
    /// calls out but to precompiles ({ZkmlOracleMutableVerifier}: an upgradeable proxy is
    /// refused so; `VerifierCodeScan`, its residual risk in docs/protocol.md). Records the
    /// verifier's code hash, which every verification checks ({ZkmlOracleVerifierChanged}):
    /// the code behind the address cannot change.
    /// The model starts active, its push feed moved only by the registrar
    /// ({setFeedPublisher}, {setFeedOpen}). Emits {ModelRegistered} and {FeedPublisherSet}.
    function registerModel(ModelConfig calldata config)
        external
        onlyRole(REGISTRAR_ROLE)
        returns (bytes32 modelId)
    {
        _validateConfig(config);
        modelId = keccak256(abi.encode(config));
        if (_models[modelId].registeredAt != 0) revert ZkmlOracleModelExists(modelId);
        if (config.devSrs && !devSrsAllowed()) revert ZkmlOracleDevSrsModel(modelId);
        (bool solcLayout, uint256 offset, uint8 opcode) = VerifierCodeScan.scan(config.verifier);
        if (!solcLayout) revert ZkmlOracleUnrecognisedVerifier(config.verifier);
        if (opcode != 0) revert ZkmlOracleMutableVerifier(config.verifier, offset, opcode);
        uint256 index = ++_modelCount;
        if (index > type(uint24).max) revert ZkmlOracleTooManyModels(type(uint24).max);
        _models[modelId] = StoredModel({
            verifier: config.verifier,
            numInstances: config.numInstances,
            inputOffset: config.inputOffset,
            inputCount: config.inputCount,
            outputOffset: config.outputOffset,
            outputCount: config.outputCount,
            batchSize: config.batchSize,
            outputScale: config.outputScale,
            hashedInputs: config.hashedInputs,
            devSrs: config.devSrs,
            active: true,
            registeredAt: uint64(block.timestamp),
            index: uint24(index),
            hashedParams: config.paramsCount != 0,
            requesterBound: config.requesterBound,
            artifactDigest: config.artifactDigest,
            paramsCommitment: config.paramsCommitment,
            paramsOffset: config.paramsOffset,
            paramsCount: config.paramsCount,
            requesterOffset: config.requesterOffset
        });
        _verifierCodehashes[modelId] = config.verifier.codehash;
        _publishers[modelId][msg.sender] = true;
        emit ModelRegistered(modelId, config.verifier, config.artifactDigest, config);
        emit FeedPublisherSet(modelId, msg.sender, true);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Requires {DEFAULT_ADMIN_ROLE}. Pending requests of an inactive model cannot be
    /// fulfilled; their requesters may cancel them at once. Emits {ModelActiveSet}.
    function setModelActive(bytes32 modelId, bool active) external onlyRole(DEFAULT_ADMIN_ROLE) {
        StoredModel storage model = _existingModel(modelId);
        model.active = active;
        emit ModelActiveSet(modelId, active);
    }

    // --- request / fulfil ---

    /// @inheritdoc IZkmlOracle
    /// @dev `inputFelts` are the input instances the proof must carry (felts < r), as many as
    /// the model's `inputCount` (one slot's, for a batched model); `deadline` (unix seconds)
    /// must be in the future and at most {Settings-maxRequestTtl} away
    /// ({ZkmlOracleBadDeadline}); `callbackGasLimit` at most {Settings-maxCallbackGasLimit}
    /// ({ZkmlOracleCallbackGasLimitTooHigh}); `callback` may be zero (no callback); the
    /// request is reserved to {FULFILLER_ROLE} holders for {Settings-fulfillerGracePeriod}
    /// seconds; `msg.value` is the fee, escrowed until fulfilment or cancellation, at most
    /// type(uint96).max wei ({ZkmlOracleFeeTooLarge}). Request ids are consecutive from 1.
    /// Stores one slot, the commitment to the request's fields ({Request}), which
    /// {InferenceRequested} emits in full. Emits {InferenceRequested}.
    function requestInference(
        bytes32 modelId,
        uint256[] calldata inputFelts,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline
    ) external payable returns (uint256 requestId) {
        return _request(modelId, inputFelts, callback, callbackGasLimit, deadline, msg.sender);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev As {requestInference}; `refundTo` (not zero: {ZkmlOracleZeroRefundAddress}) is
    /// credited the fee if the request is cancelled, and may cancel it as the requester may.
    function requestInferenceWithRefund(
        bytes32 modelId,
        uint256[] calldata inputFelts,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline,
        address refundTo
    ) external payable returns (uint256 requestId) {
        if (refundTo == address(0)) revert ZkmlOracleZeroRefundAddress();
        return _request(modelId, inputFelts, callback, callbackGasLimit, deadline, refundTo);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev As {requestInference}; `ciphertext` (the private input and its salt, encrypted to
    /// a relayer's key) is only emitted in {EncryptedInput}, never stored or read.
    function requestPrivateInference(
        bytes32 modelId,
        uint256[] calldata inputFelts,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline,
        bytes calldata ciphertext
    ) external payable returns (uint256 requestId) {
        requestId = _request(modelId, inputFelts, callback, callbackGasLimit, deadline, msg.sender);
        emit EncryptedInput(requestId, ciphertext);
    }

    function _request(
        bytes32 modelId,
        uint256[] calldata inputFelts,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline,
        address refundTo
    ) private returns (uint256 requestId) {
        // The {Config} slot read and written as one word: Solidity unpacks the struct into
        // memory, re-reads the slot and repacks every field to store the counter (~0.3 k gas
        // on every request, against its 60 k goal). Packed from the low bits:
        // maxCallbackGasLimit (32), fulfillerGracePeriod (32), maxRequestTtl (64),
        // requestCount (120), entered (8).
        uint256 config;
        assembly ("memory-safe") {
            config := sload(_config.slot)
        }
        // `notEntered`, on the slot read here anyway: no request from inside a callback.
        if (config >> 248 != 0) revert ReentrancyGuardReentrantCall();
        _checkRequestable(modelId, inputFelts);
        unchecked {
            // No underflow: the subtraction runs only once `deadline` is in the future.
            if (deadline <= block.timestamp || deadline - block.timestamp > uint64(config >> 64)) {
                revert ZkmlOracleBadDeadline(deadline);
            }
        }
        if (callbackGasLimit > uint32(config)) {
            revert ZkmlOracleCallbackGasLimitTooHigh(callbackGasLimit, uint32(config));
        }
        if (msg.value > type(uint96).max) revert ZkmlOracleFeeTooLarge(msg.value);

        requestId = uint120(config >> 128) + 1; // checked: the count never carries into `entered`
        assembly ("memory-safe") {
            sstore(_config.slot, add(config, shl(128, 1))) // requestCount + 1, the rest as read
        }
        Request memory request = Request({
            id: requestId,
            modelId: modelId,
            inputHash: _feltsHash(inputFelts),
            requester: msg.sender,
            refundTo: refundTo,
            callback: callback,
            callbackGasLimit: callbackGasLimit,
            deadline: deadline,
            openAt: uint64(block.timestamp) + uint32(config >> 32),
            fee: uint96(msg.value),
            // Unknown until the block before the request's: no one can search two field sets
            // sharing a 126-bit commitment ahead of time (docs/protocol.md).
            seed: uint64(uint256(blockhash(block.number - 1)))
        });
        _setStamp(requestId, _stamp(_builtCommitment(request), RequestStatus.Pending));
        _emitRequested(request, inputFelts);
    }

    /// @dev The model is registered and active (one slot read), and `inputFelts` are its
    /// input count of felts.
    function _checkRequestable(bytes32 modelId, uint256[] calldata inputFelts) private view {
        StoredModel storage m = _models[modelId];
        // Slot 0 of {StoredModel} read once (Solidity reads it once per field: 200 gas more
        // on every request, against its 60 k goal). Packed from the low bits: verifier
        // (160), inputCount (32), batchSize (32), index (24), active (8).
        uint256 word;
        assembly ("memory-safe") {
            word := sload(m.slot)
        }
        if (uint160(word) == 0) revert ZkmlOracleUnknownModel(modelId);
        if (uint8(word >> 248) == 0) revert ZkmlOracleModelInactive(modelId);
        uint256 expected = uint32(word >> 160);
        if (inputFelts.length != expected) revert ZkmlOracleWrongInputCount(expected, inputFelts.length);
        _checkFelts(inputFelts, 0);
    }

    /// @dev {InferenceRequested}, ABI-encoded by hand from `request` (eleven clean words, see
    /// {_builtCommitment}) and `inputFelts`: Solidity's encoder re-cleans every field and
    /// copies the array word by word (~0.5 k gas on every request, against its 60 k goal).
    /// The data: the array's offset (after the seven static words), `fee`, `deadline`,
    /// `callback`, `callbackGasLimit`, `openAt`, `refundTo`, `seed`, then the array (its
    /// length, its felts); the topics: the event's, `id`, `modelId`, `requester`.
    function _emitRequested(Request memory request, uint256[] calldata inputFelts) private {
        bytes32 topic = InferenceRequested.selector;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, 0x100)
            mstore(add(ptr, 0x20), mload(add(request, 0x120))) // fee
            mstore(add(ptr, 0x40), mload(add(request, 0xe0))) // deadline
            mstore(add(ptr, 0x60), mload(add(request, 0xa0))) // callback
            mstore(add(ptr, 0x80), mload(add(request, 0xc0))) // callbackGasLimit
            mstore(add(ptr, 0xa0), mload(add(request, 0x100))) // openAt
            mstore(add(ptr, 0xc0), mload(add(request, 0x80))) // refundTo
            mstore(add(ptr, 0xe0), mload(add(request, 0x140))) // seed
            mstore(add(ptr, 0x100), inputFelts.length)
            let size := shl(5, inputFelts.length)
            calldatacopy(add(ptr, 0x120), inputFelts.offset, size)
            log4(ptr, add(0x120, size), topic, mload(request), mload(add(request, 0x20)), mload(add(request, 0x60)))
        }
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Checks, in order: the request was issued ({ZkmlOracleUnknownRequest}), `request`
    /// holds its committed fields ({ZkmlOracleRequestMismatch}), it is pending
    /// ({ZkmlOracleRequestNotPending}: losing a race to another fulfiller shows as status
    /// Fulfilled), not past its deadline, the caller a {FULFILLER_ROLE} holder or the request's
    /// grace period over ({ZkmlOracleNotDesignatedFulfiller}), its model active, `instances`
    /// has the model's count and every instance is a felt, the input slice (slot 0's, for a
    /// batched model) equals the request's input ({ZkmlOracleInputMismatch}), the bound
    /// verifier accepts the proof ({ZkmlOracleInvalidProof}). Then records the fulfilment
    /// (the request's slot cleared; the fulfiller is in {RequestFulfilled}), credits
    /// the fee to the caller, emits {RequestFulfilled} with slot 0's outputs as signed
    /// fixed-point integers, and only then calls the consumer with exactly the requester's gas
    /// limit: its revert or gas exhaustion is recorded as {CallbackFailed} and never undoes
    /// the fulfilment. The caller must send enough gas for the callback to get its limit under
    /// EIP-150 ({ZkmlOracleInsufficientCallbackGas}).
    function fulfill(Request calldata request, bytes calldata proof, uint256[] calldata instances)
        external
        nonReentrant
    {
        uint256 requestId = request.id;
        (RequestStatus status,) = _committed(request);
        if (status != RequestStatus.Pending) revert ZkmlOracleRequestNotPending(requestId, status);
        if (block.timestamp > request.deadline) revert ZkmlOracleRequestExpired(requestId, request.deadline);
        if (_config.fulfillerGracePeriod != 0 && !hasRole(FULFILLER_ROLE, msg.sender)) {
            _checkFulfiller(requestId, request.openAt);
        }
        ActiveModel memory model = _activeModel(request.modelId);
        _checkInstances(model, instances);
        _checkInput(model, instances, 0, requestId, request.inputHash);
        if (model.requesterBound) _checkRequester(model, instances, 0, requestId, request.requester);
        _verify(model, proof, instances);

        // Effects.
        int256[] memory outputs = _outputs(model, instances, 0);
        _setStamp(requestId, 0); // fulfilled: nothing left to store (a refund with its partner)
        emit RequestFulfilled(requestId, model.id, msg.sender, outputs);
        if (request.fee != 0) _pendingWithdrawals[msg.sender] += request.fee;

        // Interaction, last.
        if (request.callback != address(0)) {
            _callConsumer(requestId, request.modelId, request.requester, request.callback, request.callbackGasLimit, outputs);
        }
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Slot i answers `requests[i]`; slots past `requests.length` are padding and are
    /// never read. Every loop runs over `requests`, whose length is bounded by the model's
    /// `batchSize` (itself at most `numInstances`, fixed at registration): there is no
    /// unbounded loop.
    ///
    /// Slot i's request is passed without its `modelId` and `inputHash` ({RequestTerms}): its
    /// commitment is recomputed with the batch's `modelId` and the hash of slot i's input
    /// instances, so a request of another model, or a slot whose input is not the request's,
    /// is a field that is not the committed one.
    ///
    /// Refuses the whole batch when: `requests` is empty or longer than `batchSize`
    /// ({ZkmlOracleBadBatchSize}); the model is unknown or inactive; `instances` has the wrong
    /// count or a non-felt; a request id was never issued ({ZkmlOracleUnknownRequest}); a
    /// request's fields, with the batch's model and its slot's input, are not its committed
    /// ones ({ZkmlOracleRequestMismatch}: another model's request, or a slot whose input
    /// differs from its request's, checked for cancelled and expired requests too); a
    /// requester-bound slot spells another requester ({ZkmlOracleRequesterMismatch}); no
    /// request is left to settle
    /// ({ZkmlOracleNothingToSettle}, checked before the proof so that a relayer that lost
    /// every race pays little); the proof is invalid ({ZkmlOracleInvalidProof}); the caller is
    /// no {FULFILLER_ROLE} holder and a pending request's grace period is not over
    /// ({ZkmlOracleNotDesignatedFulfiller}).
    ///
    /// Otherwise, in slot order: a request already fulfilled (also by an earlier slot of this
    /// batch), cancelled, or past its deadline is skipped with {RequestSkipped}; every other
    /// one is fulfilled as {fulfill} does it (its half slot cleared). The fees are credited
    /// to the caller at once, one {BatchFulfilled} names every fulfilled request with its
    /// slot's outputs (one log per batch, not one per request), and only then the consumers
    /// are called, in slot order,
    /// each as {fulfill} calls it (isolated). Before the first callback, the gas of every
    /// callback (its limit, what EIP-150 withholds, {CALLBACK_GAS_OVERHEAD}) is reserved at
    /// once ({ZkmlOracleInsufficientCallbackGas} otherwise): a callback that burns its whole
    /// limit when mined, though cheap when the caller estimated the gas, cannot make a later
    /// one fail and sink the batch.
    function fulfillBatch(
        bytes32 modelId,
        RequestTerms[] calldata requests,
        bytes calldata proof,
        uint256[] calldata instances
    ) external nonReentrant returns (uint256 settled) {
        ActiveModel memory model = _activeModel(modelId);
        if (requests.length == 0 || requests.length > model.batchSize) {
            revert ZkmlOracleBadBatchSize(requests.length, model.batchSize);
        }
        _checkInstances(model, instances);
        bytes memory plan;
        {
            bool exclusive = _config.fulfillerGracePeriod != 0 && !hasRole(FULFILLER_ROLE, msg.sender);
            plan = _planBatch(model, requests, instances, exclusive);
        }
        _verify(model, proof, instances);

        // Effects.
        Settlement memory done = _settleBatch(model, requests, instances, plan); // emits BatchFulfilled
        if (done.fees != 0) _pendingWithdrawals[msg.sender] += done.fees;
        settled = done.settled;

        // Interactions, last, with all their gas reserved up front.
        if (done.callbackGas != 0) _callConsumers(model, requests, instances, plan, done.callbackGas);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Only the requester or the request's refund address, only while pending, only once
    /// the deadline has passed or the request's model was deactivated (its requests can no
    /// longer be fulfilled: the escrow must not wait for a deadline up to
    /// {Settings-maxRequestTtl} away). `request` must hold the committed fields
    /// ({ZkmlOracleRequestMismatch}). Credits the fee to the refund address (the requester,
    /// unless the request named another). Emits {RequestCancelled}; withdraw the refund with
    /// {withdraw}.
    function cancel(Request calldata request) external notEntered {
        uint256 requestId = request.id;
        (RequestStatus status, bytes32 commitment) = _committed(request);
        if (status != RequestStatus.Pending) revert ZkmlOracleRequestNotPending(requestId, status);
        if (msg.sender != request.requester && msg.sender != request.refundTo) {
            revert ZkmlOracleNotRequester(requestId, msg.sender);
        }
        if (block.timestamp <= request.deadline && _models[request.modelId].active) {
            revert ZkmlOracleRequestNotExpired(requestId, request.deadline);
        }

        _setStamp(requestId, _stamp(commitment, RequestStatus.Cancelled));
        uint256 refund = request.fee;
        if (refund != 0) _pendingWithdrawals[request.refundTo] += refund;
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

    // --- settings (admin) ---

    /// @inheritdoc IZkmlOracle
    /// @dev Requires {DEFAULT_ADMIN_ROLE}. `maxCallbackGasLimit` at most
    /// {MAX_CALLBACK_GAS_LIMIT_CAP}; `maxRequestTtl` not zero; `fulfillerGracePeriod` below
    /// `maxRequestTtl` ({ZkmlOracleInvalidSettings}). Applies to requests made afterwards.
    /// Emits {SettingsSet}.
    function setSettings(Settings calldata settings_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setSettings(settings_);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Requires {DEFAULT_ADMIN_ROLE}; the model must be registered. Emits {FeedPublisherSet}.
    function setFeedPublisher(bytes32 modelId, address publisher, bool allowed)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _existingModel(modelId);
        _publishers[modelId][publisher] = allowed;
        emit FeedPublisherSet(modelId, publisher, allowed);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Requires {DEFAULT_ADMIN_ROLE}; the model must be registered. Emits {FeedOpenSet}.
    function setFeedOpen(bytes32 modelId, bool open) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _existingModel(modelId);
        _feedOpen[modelId] = open;
        emit FeedOpenSet(modelId, open);
    }

    // --- push feed ---

    /// @inheritdoc IZkmlOracle
    /// @dev Only the model's publishers ({setFeedPublisher}; at registration, the registrar),
    /// or anyone once the admin opened the feed ({setFeedOpen}): otherwise
    /// {ZkmlOracleNotPublisher}. A genuine proof proves what a model outputs on an input of
    /// the prover's choice, not which input the feed should answer: who moves a feed is a
    /// trust decision, and a stranger must not switch a consumer's reading by pushing (or
    /// keep an honest round out of a block by getting in first). The model must be active, and the proof pass the same checks
    /// as in {fulfill} (count, felts, verifier). Rounds are consecutive from 1 and at most one
    /// per block ({ZkmlOracleRoundTooSoon}), so `updatedAt` strictly increases. The result
    /// (slot 0's, for a batched model) is also indexed by its input hash (keccak256 of the
    /// input slice) for {resultOf}. Emits {SlotResultSubmitted} and {ResultSubmitted}.
    function submitResult(bytes32 modelId, bytes calldata proof, uint256[] calldata instances)
        external
        nonReentrant
        returns (uint80 round)
    {
        return _publish(modelId, proof, instances, 1);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev As {submitResult}, for slots 0 .. `slots`-1 of a batched proof, with one
    /// verification: `slots` must be 1 to the model's `batchSize` ({ZkmlOracleBadBatchSize});
    /// slots from `slots` on are padding and never read. The feed advances by exactly one
    /// round (still at most one per block), whose value ({latestResult}, {getResult},
    /// {ResultSubmitted}) is slot `slots`-1's result; every slot is indexed for {resultOf}
    /// with that round's number and time, and has its {SlotResultSubmitted}.
    function submitResultBatch(bytes32 modelId, bytes calldata proof, uint256[] calldata instances, uint256 slots)
        external
        nonReentrant
        returns (uint80 round)
    {
        return _publish(modelId, proof, instances, slots);
    }

    // --- views ---

    /// @inheritdoc IZkmlOracle
    /// @dev Reverts {ZkmlOracleUnknownModel} for an unregistered id.
    function getModel(bytes32 modelId) external view returns (Model memory) {
        StoredModel storage m = _existingModel(modelId);
        return Model({
            config: ModelConfig({
                verifier: m.verifier,
                artifactDigest: m.artifactDigest,
                numInstances: m.numInstances,
                inputOffset: m.inputOffset,
                inputCount: m.inputCount,
                outputOffset: m.outputOffset,
                outputCount: m.outputCount,
                outputScale: m.outputScale,
                hashedInputs: m.hashedInputs,
                devSrs: m.devSrs,
                batchSize: m.batchSize,
                paramsOffset: m.paramsOffset,
                paramsCount: m.paramsCount,
                paramsCommitment: m.paramsCommitment,
                requesterOffset: m.requesterOffset,
                requesterBound: m.requesterBound
            }),
            active: m.active,
            registeredAt: m.registeredAt
        });
    }

    /// @inheritdoc IZkmlOracle
    /// @dev The oracle stores only a commitment per request: its fields are in
    /// {InferenceRequested} (check them with {isCommitted}), its fulfiller and outputs in
    /// {RequestFulfilled}, its refund in {RequestCancelled}.
    function requestStatus(uint256 requestId) external view returns (RequestStatus) {
        uint128 stamped = _stampOf(requestId);
        if (stamped == 0) return _settledOrNone(requestId);
        return _statusOf(stamped);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev A fulfilled request's slot is cleared: only pending and cancelled requests'
    /// fields can be checked.
    function isCommitted(Request calldata request) external view returns (bool) {
        uint128 stamped = _stampOf(request.id);
        return stamped != 0 && _unstamped(stamped) == _unstamped(_stamp(_commitmentOf(request), RequestStatus.None));
    }

    /// @inheritdoc IZkmlOracle
    /// @dev The push feed's latest round. Reverts {ZkmlOracleUnknownModel} for an unregistered
    /// id and {ZkmlOracleNoResult} while the feed has no round.
    function latestResult(bytes32 modelId) external view returns (Result memory) {
        _existingModel(modelId);
        uint80 round = _feeds[modelId].latestRound;
        if (round == 0) revert ZkmlOracleNoResult(modelId);
        return _roundResult(modelId, round);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev Reverts {ZkmlOracleUnknownRound} for round 0 or a round not yet submitted. A
    /// batched round's result is its last slot's.
    function getResult(bytes32 modelId, uint80 round) external view returns (Result memory) {
        if (round == 0 || round > _feeds[modelId].latestRound) revert ZkmlOracleUnknownRound(modelId, round);
        return _roundResult(modelId, round);
    }

    /// @inheritdoc IZkmlOracle
    /// @dev The latest push-feed result whose input hash (keccak256 of the proof's input
    /// slice, as in {Request-inputHash}) is `inputHash`, any slot of a batched round
    /// included: that slot's input hash and outputs, with its round's number and time.
    /// Fulfilled requests are not indexed here: their outputs are in {RequestFulfilled}.
    /// Reverts {ZkmlOracleNoResult} if none.
    function resultOf(bytes32 modelId, bytes32 inputHash) external view returns (Result memory) {
        ResultRef memory ref = _resultOfInput[modelId][inputHash];
        if (ref.round == 0) revert ZkmlOracleNoResult(modelId);
        return _result(modelId, ref.round, ref.slot);
    }

    /// @inheritdoc IZkmlOracle
    function pendingWithdrawal(address account) external view returns (uint256) {
        return _pendingWithdrawals[account];
    }

    /// @inheritdoc IZkmlOracle
    function settings() external view returns (Settings memory) {
        Config memory config = _config;
        return Settings({
            maxCallbackGasLimit: config.maxCallbackGasLimit,
            fulfillerGracePeriod: config.fulfillerGracePeriod,
            maxRequestTtl: config.maxRequestTtl
        });
    }

    /// @inheritdoc IZkmlOracle
    function isFeedPublisher(bytes32 modelId, address account) external view returns (bool) {
        return _publishers[modelId][account];
    }

    /// @inheritdoc IZkmlOracle
    function feedOpen(bytes32 modelId) external view returns (bool) {
        return _feedOpen[modelId];
    }

    /// @inheritdoc IZkmlOracle
    function verifierCodehash(bytes32 modelId) external view returns (bytes32) {
        return _verifierCodehashes[modelId];
    }

    /// @notice The number of requests made so far (the last request id).
    function requestCount() external view returns (uint256) {
        return _config.requestCount;
    }

    /// @notice The latest push-feed round of `modelId` (0 while the feed is fresh).
    function latestRound(bytes32 modelId) external view returns (uint80) {
        return _feeds[modelId].latestRound;
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
        // No input instance: no request could be bound to its proof.
        if (config.inputCount == 0) revert ZkmlOracleInvalidConfig("inputCount is zero");
        uint256 batch = config.batchSize;
        if (batch == 0) revert ZkmlOracleInvalidConfig("batchSize is zero");
        // Whole regions: every slot's inputs, every slot's outputs (no overflow: 32-bit factors).
        uint256 inputEnd = uint256(config.inputOffset) + batch * config.inputCount;
        uint256 outputEnd = uint256(config.outputOffset) + batch * config.outputCount;
        if (inputEnd > n) revert ZkmlOracleInvalidConfig("input segment past numInstances");
        if (outputEnd > n) revert ZkmlOracleInvalidConfig("output segment past numInstances");
        if (config.inputCount != 0 && inputEnd > config.outputOffset && outputEnd > config.inputOffset) {
            revert ZkmlOracleInvalidConfig("input and output segments overlap");
        }
        if (config.outputScale > MAX_OUTPUT_SCALE) revert ZkmlOracleInvalidConfig("outputScale too large");
        // Hashed params: the commitment is what binds the weights (the verifying key does not).
        if ((config.paramsCount == 0) != (config.paramsCommitment == bytes32(0))) {
            revert ZkmlOracleInvalidConfig("paramsCount and paramsCommitment disagree");
        }
        if (uint256(config.paramsOffset) + config.paramsCount > n) {
            revert ZkmlOracleInvalidConfig("params segment past numInstances");
        }
        if (config.requesterBound && uint256(config.requesterOffset) + batch * REQUESTER_LIMBS > n) {
            revert ZkmlOracleInvalidConfig("requester segment past numInstances");
        }
    }

    function _setSettings(Settings memory settings_) private {
        if (settings_.maxCallbackGasLimit > MAX_CALLBACK_GAS_LIMIT_CAP) {
            revert ZkmlOracleInvalidSettings("maxCallbackGasLimit above the cap");
        }
        if (settings_.maxRequestTtl == 0) revert ZkmlOracleInvalidSettings("maxRequestTtl is zero");
        if (settings_.fulfillerGracePeriod >= settings_.maxRequestTtl) {
            revert ZkmlOracleInvalidSettings("fulfillerGracePeriod not below maxRequestTtl");
        }
        Config storage config = _config;
        config.maxCallbackGasLimit = settings_.maxCallbackGasLimit;
        config.fulfillerGracePeriod = settings_.fulfillerGracePeriod;
        config.maxRequestTtl = settings_.maxRequestTtl;
        emit SettingsSet(settings_);
    }

    /// @dev Until `openAt`, only a {FULFILLER_ROLE} holder may fulfil `requestId`: a copy of a
    /// relayer's pending transaction, sent with a higher tip, is refused. Only checked while
    /// {Settings-fulfillerGracePeriod} is not zero (setting it to zero opens every request at
    /// once, and spares fulfilments the reads), for callers without the role.
    function _checkFulfiller(uint256 requestId, uint64 openAt) private view {
        if (block.timestamp < openAt) {
            revert ZkmlOracleNotDesignatedFulfiller(requestId, msg.sender, openAt);
        }
    }

    function _existingModel(bytes32 modelId) private view returns (StoredModel storage model) {
        model = _models[modelId];
        if (model.registeredAt == 0) revert ZkmlOracleUnknownModel(modelId);
    }

    /// @dev An active model, from its first two slots.
    function _activeModel(bytes32 modelId) private view returns (ActiveModel memory model) {
        StoredModel storage m = _models[modelId];
        if (m.registeredAt == 0) revert ZkmlOracleUnknownModel(modelId);
        if (!m.active) revert ZkmlOracleModelInactive(modelId);
        model = ActiveModel({
            id: modelId,
            verifier: m.verifier,
            numInstances: m.numInstances,
            inputOffset: m.inputOffset,
            inputCount: m.inputCount,
            outputOffset: m.outputOffset,
            outputCount: m.outputCount,
            batchSize: m.batchSize,
            paramsOffset: 0,
            paramsCount: 0,
            paramsCommitment: bytes32(0),
            requesterOffset: 0,
            requesterBound: m.requesterBound
        });
        if (m.hashedParams) {
            model.paramsOffset = m.paramsOffset;
            model.paramsCount = m.paramsCount;
            model.paramsCommitment = m.paramsCommitment;
        }
        if (m.requesterBound) model.requesterOffset = m.requesterOffset;
    }

    /// @dev Every value must be a felt; reports the first that is not, at `base + index`.
    /// The scan (over every instance of every proof) is a branch-free assembly loop; only a
    /// refusal looks for the culprit.
    function _checkFelts(uint256[] calldata values, uint256 base) private pure {
        uint256 r = FieldEncoding.FIELD_MODULUS;
        bool allFelts = true;
        assembly ("memory-safe") {
            let end := add(values.offset, shl(5, values.length))
            for { let p := values.offset } lt(p, end) { p := add(p, 0x20) } {
                allFelts := and(allFelts, lt(calldataload(p), r))
            }
        }
        if (allFelts) return;
        for (uint256 i = 0; i < values.length; ++i) {
            if (!FieldEncoding.isFelt(values[i])) revert ZkmlOracleInstanceOutOfField(base + i, values[i]);
        }
    }

    function _checkInstances(ActiveModel memory model, uint256[] calldata instances) private pure {
        uint256 expected = model.numInstances;
        if (instances.length != expected) revert ZkmlOracleWrongInstanceCount(expected, instances.length);
        _checkFelts(instances, 0);
    }

    /// @dev Slot `slot`'s input slice must hash to the request's `inputHash`.
    function _checkInput(
        ActiveModel memory model,
        uint256[] calldata instances,
        uint256 slot,
        uint256 requestId,
        bytes32 inputHash
    ) private pure {
        if (_slotInputHash(model, instances, slot) != inputHash) revert ZkmlOracleInputMismatch(requestId);
    }

    /// @dev Slot `slot`'s requester limbs must spell the request's requester: the input
    /// commitment covers them, so a commitment copied into another account's request can
    /// never be settled with the proof made for its owner. Bounded: {REQUESTER_LIMBS} limbs.
    function _checkRequester(
        ActiveModel memory model,
        uint256[] calldata instances,
        uint256 slot,
        uint256 requestId,
        address requester
    ) private pure {
        uint256 start = model.requesterOffset + slot * REQUESTER_LIMBS;
        uint256 bound;
        bool limbsInRange = true;
        for (uint256 j = 0; j < REQUESTER_LIMBS; ++j) {
            uint256 limb = instances[start + j];
            limbsInRange = limbsInRange && limb >> REQUESTER_LIMB_BITS == 0;
            bound |= limb << (REQUESTER_LIMB_BITS * j);
        }
        if (!limbsInRange || bound != uint256(uint160(requester))) {
            revert ZkmlOracleRequesterMismatch(requestId, bound);
        }
    }

    /// @dev keccak256(abi.encodePacked(slot `slot`'s input slice)), without copying through
    /// Solidity.
    function _slotInputHash(ActiveModel memory model, uint256[] calldata instances, uint256 slot)
        private
        pure
        returns (bytes32 h)
    {
        uint256 count = model.inputCount;
        uint256 start;
        unchecked {
            start = model.inputOffset + slot * count; // 32-bit factors: no overflow
        }
        return _sliceHash(instances, start, count);
    }

    /// @dev keccak256(abi.encodePacked(felts)), without copying through Solidity.
    function _feltsHash(uint256[] calldata felts) private pure returns (bytes32) {
        return _sliceHash(felts, 0, felts.length);
    }

    /// @dev keccak256(abi.encodePacked(instances[start : start + count])), with no bounds
    /// check: every caller's slice lies within `instances` (a request's felts whole; an
    /// input or params segment of a model whose layout was checked at registration, in
    /// instances whose count was checked). Solidity's checked slice costs ~0.2 k gas, on every
    /// request and every slot of a batch.
    function _sliceHash(uint256[] calldata instances, uint256 start, uint256 count) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let len := shl(5, count)
            let ptr := mload(0x40)
            calldatacopy(ptr, add(instances.offset, shl(5, start)), len)
            h := keccak256(ptr, len)
        }
    }

    /// @dev ezkl's verifier reverts (with empty data) on an invalid proof: a revert, a false
    /// and return data shorter than a word all count as refusal. The verifier is only read
    /// (staticcall): it cannot change state or call back into anything that does.
    ///
    /// The call data is `abi.encodeCall(IZkmlVerifier.verifyProof, (proof, instances))` built
    /// by hand in scratch memory with two `calldatacopy`s: Solidity's encoder copies the
    /// instances one word at a time (about 10k gas for a batch).
    ///
    /// The verifier's code hash must still be the one recorded at registration
    /// ({ZkmlOracleVerifierChanged}); reading it warms the verifier's account, so the call
    /// after it is cheaper by as much.
    /// With hashed params, the proof's params commitments must be the registered ones first:
    /// ezkl's verifying key does not fix hashed (or private) weights, so without this check a
    /// proof from the same graph compiled with other weights would verify.
    function _verify(ActiveModel memory model, bytes calldata proof, uint256[] calldata instances) private view {
        if (model.paramsCount != 0) {
            if (_sliceHash(instances, model.paramsOffset, model.paramsCount) != model.paramsCommitment) {
                revert ZkmlOracleParamsMismatch(model.id);
            }
        }
        address verifier = model.verifier;
        bytes32 registered = _verifierCodehashes[model.id];
        if (verifier.codehash != registered) revert ZkmlOracleVerifierChanged(model.id, registered, verifier.codehash);
        bytes4 selector = IZkmlVerifier.verifyProof.selector;
        bool ok;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let proofLength := proof.length
            let paddedProof := and(add(proofLength, 0x1f), not(0x1f))
            mstore(ptr, selector)
            mstore(add(ptr, 0x04), 0x40) // head: offset of `proof`
            mstore(add(ptr, 0x24), add(0x60, paddedProof)) // head: offset of `instances`
            mstore(add(ptr, 0x44), proofLength)
            mstore(add(ptr, add(0x44, paddedProof)), 0) // the proof's last word, zero-padded
            calldatacopy(add(ptr, 0x64), proof.offset, proofLength)
            let tail := add(add(ptr, 0x64), paddedProof)
            mstore(tail, instances.length)
            let instanceBytes := shl(5, instances.length)
            calldatacopy(add(tail, 0x20), instances.offset, instanceBytes)
            let size := sub(add(add(tail, 0x20), instanceBytes), ptr)
            ok := staticcall(gas(), verifier, ptr, size, 0, 0x20)
            ok := and(ok, and(gt(returndatasize(), 0x1f), eq(mload(0), 1)))
        }
        if (!ok) revert ZkmlOracleInvalidProof(model.id);
    }

    /// @dev Slot `slot`'s outputs as signed fixed-point integers.
    function _outputs(ActiveModel memory model, uint256[] calldata instances, uint256 slot)
        private
        pure
        returns (int256[] memory outputs)
    {
        uint256 n = model.outputCount;
        uint256 start;
        unchecked {
            start = model.outputOffset + slot * n; // 32-bit factors: no overflow
        }
        return FieldEncoding.toSignedArray(instances[start:start + n]);
    }

    /// @dev The checks of {fulfillBatch} that read the requests, slot by slot (each
    /// request's half slot read once): issued, its fields with the batch's model and the
    /// slot's input the committed ones, requester bound; then whether the slot settles its
    /// request or skips it, and why. Refuses a batch with nothing to settle
    /// ({ZkmlOracleNothingToSettle}) here, before the proof is verified, and, when `exclusive`
    /// (a grace period is set and the caller is no designated fulfiller), one with a pending
    /// request still in its grace period. Returns the plan.
    function _planBatch(
        ActiveModel memory model,
        RequestTerms[] calldata requests,
        uint256[] calldata instances,
        bool exclusive
    ) private view returns (bytes memory plan) {
        plan = new bytes(requests.length);
        bool anyPending;
        for (uint256 i = 0; i < requests.length;) {
            RequestTerms calldata request = requests[i];
            RequestStatus status = _committedSlot(model, instances, i, request);
            if (status == RequestStatus.Fulfilled) {
                plan[i] = _skip(SkipReason.Fulfilled);
            } else if (status == RequestStatus.Cancelled) {
                plan[i] = _skip(SkipReason.Cancelled);
            } else if (block.timestamp > request.deadline) {
                plan[i] = _skip(SkipReason.Expired);
            } else {
                if (exclusive) _checkFulfiller(request.id, request.openAt);
                anyPending = true; // plan[i] is _SETTLE
            }
            unchecked {
                ++i;
            }
        }
        if (!anyPending) revert ZkmlOracleNothingToSettle();
    }

    /// @dev Slot `slot`'s request's status, once its terms, with the batch's model and the
    /// hash of the slot's input instances, are shown to be its committed fields
    /// ({ZkmlOracleUnknownRequest}, {ZkmlOracleRequestMismatch}) and a requester-bound slot
    /// to spell its requester. A fulfilled request's half is cleared: nothing is checked.
    function _committedSlot(
        ActiveModel memory model,
        uint256[] calldata instances,
        uint256 slot,
        RequestTerms calldata request
    ) private view returns (RequestStatus status) {
        uint256 requestId = request.id;
        uint128 stamped = _stampOf(requestId);
        if (stamped == 0) {
            status = _settledOrNone(requestId);
            if (status == RequestStatus.None) revert ZkmlOracleUnknownRequest(requestId);
            return status;
        }
        bytes32 commitment = _termsCommitment(request, model.id, _slotInputHash(model, instances, slot));
        if (_unstamped(stamped) != _unstamped(_stamp(commitment, RequestStatus.None))) {
            revert ZkmlOracleRequestMismatch(requestId);
        }
        if (model.requesterBound) _checkRequester(model, instances, slot, requestId, request.requester);
        return _statusOf(stamped);
    }

    function _skip(SkipReason reason) private pure returns (bytes1) {
        return bytes1(uint8(reason) + 1);
    }

    /// @dev The effects of {fulfillBatch}, in slot order: {RequestSkipped}, or the request
    /// settled (its half cleared). A request's slot is re-read (warm) before it is settled:
    /// when an earlier slot of the same batch settled it (a duplicate id), this slot is
    /// skipped as Fulfilled. Marks the settled slots with a callback in `plan`. Then emits
    /// {BatchFulfilled} (the settled requests' ids, and their slots' outputs as signed
    /// fixed-point integers, request j's `outputCount` outputs from j * `outputCount`).
    /// Returns how many were settled, their fees, and the gas their callbacks need
    /// ({_callbackGasNeeded} of each).
    ///
    /// {BatchFulfilled}'s data is written in place as its ABI encoding, in one buffer: three
    /// head words (the offsets of `requestIds` and `outputs`, `skipped`), `requestIds` (its
    /// length, room for every slot's id), `outputs` (its length, room for every slot's
    /// outputs). Solidity's encoder would copy both arrays once more, element by element
    /// (~0.2 k gas per slot); here only skipped slots cost a move (`outputs` shifted down
    /// over the ids they left unused).
    function _settleBatch(
        ActiveModel memory model,
        RequestTerms[] calldata requests,
        uint256[] calldata instances,
        bytes memory plan
    ) private returns (Settlement memory done) {
        uint256 n = requests.length;
        uint256 k = model.outputCount;
        uint256 buffer; // {BatchFulfilled}'s data; its word 4 + j is the j-th settled id
        {
            uint256[] memory data = new uint256[](5 + n + n * k); // 32-bit factors: no overflow
            assembly ("memory-safe") {
                buffer := add(data, 0x20)
            }
        }
        uint256 outputsAt = buffer + (5 + n) * 32; // where slot outputs go, all slots settled
        uint256 settled;
        for (uint256 i = 0; i < n;) {
            RequestTerms calldata request = requests[i];
            if (plan[i] != _SETTLE) {
                emit RequestSkipped(request.id, SkipReason(uint8(plan[i]) - 1));
            } else if (!_clearIfPending(request.id)) {
                emit RequestSkipped(request.id, SkipReason.Fulfilled);
            } else {
                uint256 id = request.id;
                _copyOutputs(model, instances, i, outputsAt + settled * k * 32);
                assembly ("memory-safe") {
                    mstore(add(buffer, shl(5, add(4, settled))), id)
                }
                unchecked {
                    ++settled; // <= n
                    done.fees += request.fee; // fees are < 2**96 each
                }
                if (request.callback != address(0)) {
                    plan[i] = _CALL_BACK;
                    done.callbackGas += _callbackGasNeeded(request.callbackGasLimit);
                }
            }
            unchecked {
                ++i;
            }
        }
        done.settled = settled;
        bytes32 topic = BatchFulfilled.selector;
        bytes32 modelId = model.id;
        assembly ("memory-safe") {
            let outputCount := mul(settled, k)
            let outputs := add(buffer, shl(5, add(4, settled))) // right after the settled ids
            mstore(buffer, 0x60) // `requestIds` from word 3
            mstore(add(buffer, 0x20), shl(5, add(4, settled))) // `outputs` after them
            mstore(add(buffer, 0x40), sub(n, settled)) // `skipped`
            mstore(add(buffer, 0x60), settled)
            mstore(outputs, outputCount)
            // Only with skipped slots: `outputs` moves down over the unused ids' room.
            if lt(settled, n) {
                for { let j := 0 } lt(j, outputCount) { j := add(j, 1) } {
                    mstore(add(outputs, shl(5, add(j, 1))), mload(add(outputsAt, shl(5, j))))
                }
            }
            log3(buffer, shl(5, add(5, add(settled, outputCount))), topic, modelId, caller())
        }
    }

    /// @dev Slot `slot`'s outputs, as signed fixed-point integers (as {FieldEncoding-toSigned}
    /// decodes them), into memory from `to`: a loop in assembly, run for every output of
    /// every slot of a batch (Solidity's checked indexing and the library call cost ~0.1 k
    /// gas per output). Every instance was checked to be a felt ({_checkInstances}), and the
    /// slot's outputs lie within `instances` (its count and the layout were checked).
    function _copyOutputs(ActiveModel memory model, uint256[] calldata instances, uint256 slot, uint256 to)
        private
        pure
    {
        uint256 n = model.outputCount;
        uint256 start;
        unchecked {
            start = model.outputOffset + slot * n; // 32-bit factors: no overflow
        }
        uint256 r = FieldEncoding.FIELD_MODULUS;
        uint256 maxSigned = FieldEncoding.MAX_SIGNED;
        assembly ("memory-safe") {
            let from := add(instances.offset, shl(5, start))
            for { let j := 0 } lt(j, n) { j := add(j, 1) } {
                let felt := calldataload(add(from, shl(5, j)))
                // felt - r, as two's complement, is the negative value above (r - 1) / 2.
                if gt(felt, maxSigned) { felt := sub(felt, r) }
                mstore(add(to, shl(5, j)), felt)
            }
        }
    }

    /// @dev The interactions of {fulfillBatch}, once the gas of every callback is there
    /// (`callbackGas`, reserved at once): each settled slot's consumer, in slot order, as
    /// {fulfill} calls it (its outputs decoded again from calldata: cheaper than keeping
    /// them for every slot).
    function _callConsumers(
        ActiveModel memory model,
        RequestTerms[] calldata requests,
        uint256[] calldata instances,
        bytes memory plan,
        uint256 callbackGas
    ) private {
        uint256 available = gasleft();
        if (available < callbackGas) revert ZkmlOracleInsufficientCallbackGas(requests[0].id, callbackGas, available);
        uint256 n = requests.length;
        for (uint256 i = 0; i < n;) {
            if (plan[i] == _CALL_BACK) {
                RequestTerms calldata request = requests[i];
                int256[] memory outputs = _outputs(model, instances, i);
                _callConsumer(request.id, model.id, request.requester, request.callback, request.callbackGasLimit, outputs);
            }
            unchecked {
                ++i;
            }
        }
    }

    /// @dev The push feed, shared by {submitResult} (one slot) and {submitResultBatch}: one
    /// verification, one new round whose value is slot `slots`-1's, every slot indexed.
    /// The loop is bounded by the model's `batchSize`.
    function _publish(bytes32 modelId, bytes calldata proof, uint256[] calldata instances, uint256 slots)
        private
        returns (uint80 round)
    {
        ActiveModel memory model = _activeModel(modelId);
        if (!_publishers[modelId][msg.sender] && !_feedOpen[modelId]) revert ZkmlOracleNotPublisher(modelId, msg.sender);
        if (slots == 0 || slots > model.batchSize) revert ZkmlOracleBadBatchSize(slots, model.batchSize);
        Feed memory feed = _feeds[modelId];
        if (feed.latestRound != 0 && block.timestamp <= feed.updatedAt) {
            revert ZkmlOracleRoundTooSoon(modelId, feed.updatedAt);
        }
        _checkInstances(model, instances);
        _verify(model, proof, instances);

        round = feed.latestRound + 1;
        uint64 updatedAt = uint64(block.timestamp);
        _feeds[modelId] = Feed({latestRound: round, updatedAt: updatedAt});
        _rounds[modelId][round] = Round({updatedAt: updatedAt, lastSlot: uint32(slots - 1)});
        (bytes32 inputHash, int256[] memory outputs) = _storeSlots(model, instances, slots, round);
        emit ResultSubmitted(modelId, round, inputHash, outputs, msg.sender);
    }

    /// @dev Stores and indexes slots 0 .. `slots`-1 of a new round, each with its
    /// {SlotResultSubmitted}; returns the last slot's input hash and outputs (the round's
    /// value). Bounded by the model's `batchSize`.
    function _storeSlots(ActiveModel memory model, uint256[] calldata instances, uint256 slots, uint80 round)
        private
        returns (bytes32 inputHash, int256[] memory outputs)
    {
        for (uint256 slot = 0; slot < slots; ++slot) {
            inputHash = _slotInputHash(model, instances, slot);
            outputs = _outputs(model, instances, slot);
            SlotResult storage result = _slotResults[model.id][round][slot];
            result.inputHash = inputHash;
            result.outputs = outputs;
            _resultOfInput[model.id][inputHash] = ResultRef({round: round, slot: uint32(slot)});
            emit SlotResultSubmitted(model.id, round, slot, inputHash, outputs);
        }
    }

    /// @dev A round's result: its last slot's.
    function _roundResult(bytes32 modelId, uint80 round) private view returns (Result memory) {
        return _result(modelId, round, _rounds[modelId][round].lastSlot);
    }

    function _result(bytes32 modelId, uint80 round, uint256 slot) private view returns (Result memory) {
        SlotResult storage result = _slotResults[modelId][round][slot];
        return Result({
            round: round,
            updatedAt: _rounds[modelId][round].updatedAt,
            inputHash: result.inputHash,
            outputs: result.outputs
        });
    }

    /// @dev A cleared slot: Fulfilled if `requestId` was issued, None otherwise.
    function _settledOrNone(uint256 requestId) private view returns (RequestStatus) {
        return requestId != 0 && requestId <= _config.requestCount ? RequestStatus.Fulfilled : RequestStatus.None;
    }

    /// @dev A request's half slot: its commitment's low 128 bits with the low two replaced by
    /// `status` (Pending 1, Fulfilled 2, Cancelled 3; the 126 bits left bind every field, the
    /// seed making a collision useless: docs/protocol.md).
    function _stamp(bytes32 commitment, RequestStatus status) private pure returns (uint128) {
        return (uint128(uint256(commitment)) & ~uint128(3)) | uint128(uint8(status));
    }

    function _unstamped(uint128 stamped) private pure returns (uint128) {
        return stamped & ~uint128(3);
    }

    function _statusOf(uint128 stamped) private pure returns (RequestStatus) {
        return RequestStatus(stamped & 3);
    }

    /// @dev Request `requestId`'s slot and the bit its half starts at: ids 2k-1 (low half)
    /// and 2k (high half) share slot k, so consecutive requests, and the batches that settle
    /// them, pair up.
    function _pairOf(uint256 requestId) private pure returns (uint256 pair, uint256 shift) {
        unchecked {
            pair = (requestId >> 1) + (requestId & 1); // no overflow: at most 2**255
        }
        shift = (~requestId & 1) << 7;
    }

    /// @dev The storage slot of `_requests[pair]` of request `requestId`, and the bit its half
    /// starts at: the mapping's slot hashed once for a read and a write (Solidity hashes it
    /// for each), on every request and every settled slot.
    function _stampSlot(uint256 requestId) private pure returns (uint256 slot, uint256 shift) {
        uint256 pair;
        (pair, shift) = _pairOf(requestId);
        assembly ("memory-safe") {
            mstore(0, pair)
            mstore(0x20, _requests.slot)
            slot := keccak256(0, 0x40)
        }
    }

    function _stampOf(uint256 requestId) private view returns (uint128 stamped) {
        (uint256 slot, uint256 shift) = _stampSlot(requestId);
        assembly ("memory-safe") {
            stamped := and(shr(shift, sload(slot)), 0xffffffffffffffffffffffffffffffff)
        }
    }

    /// @dev Writes request `requestId`'s half, leaving its partner's as it is.
    function _setStamp(uint256 requestId, uint128 stamped) private {
        (uint256 slot, uint256 shift) = _stampSlot(requestId);
        assembly ("memory-safe") {
            let kept := and(sload(slot), not(shl(shift, 0xffffffffffffffffffffffffffffffff)))
            // (`stamped` masked: a uint128 may carry dirty high bits on the stack)
            sstore(slot, or(kept, shl(shift, and(stamped, 0xffffffffffffffffffffffffffffffff))))
        }
    }

    /// @dev Clears request `requestId`'s half if it is still pending (its slot read and
    /// written once); false, leaving it as it is, if it is not (an earlier slot of the same
    /// batch settled it).
    function _clearIfPending(uint256 requestId) private returns (bool cleared) {
        (uint256 slot, uint256 shift) = _stampSlot(requestId);
        uint256 stamps;
        assembly ("memory-safe") {
            stamps := sload(slot)
        }
        if (_statusOf(uint128(stamps >> shift)) != RequestStatus.Pending) return false;
        assembly ("memory-safe") {
            sstore(slot, and(stamps, not(shl(shift, 0xffffffffffffffffffffffffffffffff))))
        }
        return true;
    }

    /// @dev keccak256(abi.encode(request)), hashed straight from calldata: {Request} is eleven
    /// static words. Dirty bits in a field change the hash, so they are refused as a mismatch.
    function _commitmentOf(Request calldata request) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, request, 0x160)
            h := keccak256(ptr, 0x160)
        }
    }

    /// @dev keccak256(abi.encode(request)) of the {Request} that `terms` stand for in a batch
    /// of `modelId`, in a slot whose input instances hash to `inputHash`: its eleven words
    /// assembled in free memory (`id`, the two given, then the eight words from `requester`
    /// on, copied at once from calldata; {RequestTerms} is nine static words).
    function _termsCommitment(RequestTerms calldata terms, bytes32 modelId, bytes32 inputHash)
        private
        pure
        returns (bytes32 h)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, calldataload(terms))
            mstore(add(ptr, 0x20), modelId)
            mstore(add(ptr, 0x40), inputHash)
            calldatacopy(add(ptr, 0x60), add(terms, 0x20), 0x100)
            h := keccak256(ptr, 0x160)
        }
    }

    /// @dev keccak256(abi.encode(request)) of a request built in memory: a struct of eleven
    /// static fields is laid out as eleven clean words, the very bytes abi.encode would copy.
    function _builtCommitment(Request memory request) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            h := keccak256(request, 0x160)
        }
    }

    /// @dev Request `request.id`'s status and commitment, once `request` is shown to hold its
    /// committed fields ({ZkmlOracleUnknownRequest}, {ZkmlOracleRequestMismatch}). A fulfilled
    /// request's slot is cleared: it reads as Fulfilled (commitment 0) and its fields can no
    /// longer be checked, which no caller needs (a fulfilled request is only ever skipped or
    /// refused).
    function _committed(Request calldata request) private view returns (RequestStatus status, bytes32 commitment) {
        uint128 stamped = _stampOf(request.id);
        if (stamped == 0) {
            status = _settledOrNone(request.id);
            if (status == RequestStatus.None) revert ZkmlOracleUnknownRequest(request.id);
            return (status, 0);
        }
        commitment = _commitmentOf(request);
        if (_unstamped(stamped) != _unstamped(_stamp(commitment, RequestStatus.None))) {
            revert ZkmlOracleRequestMismatch(request.id);
        }
        status = _statusOf(stamped);
    }

    /// @dev Calls the consumer with exactly the request's `callbackGasLimit`: EIP-150 forwards at most 63/64 of
    /// what is left, so refuse unless that is at least `gasLimit` (the call would otherwise
    /// run with less than the requester asked for, and a griefing fulfiller could make it
    /// fail on purpose). A consumer without code gets no call and a {CallbackFailed}. The
    /// consumer is told who made the request: anyone may name any consumer as a callback.
    function _callConsumer(
        uint256 requestId,
        bytes32 modelId,
        address requester,
        address callback,
        uint256 gasLimit,
        int256[] memory outputs
    ) private {
        _call(requestId, callback, gasLimit, abi.encodeCall(IZkmlConsumer.onInferenceResult, (requestId, modelId, requester, outputs)));
    }

    /// @dev {_callConsumer}'s call, with its calldata built (apart: fewer stack slots).
    function _call(uint256 requestId, address callback, uint256 gasLimit, bytes memory data) private {
        if (callback.code.length == 0) {
            emit CallbackFailed(requestId, "");
            return;
        }
        uint256 available = gasleft();
        uint256 needed = _callbackGasNeeded(gasLimit);
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

    /// @dev The gas left that a callback of `gasLimit` needs: its limit, what EIP-150 keeps
    /// back (1/64 of what is left), and {CALLBACK_GAS_OVERHEAD}.
    function _callbackGasNeeded(uint256 gasLimit) private pure returns (uint256) {
        return gasLimit + gasLimit / 63 + CALLBACK_GAS_OVERHEAD;
    }
}
