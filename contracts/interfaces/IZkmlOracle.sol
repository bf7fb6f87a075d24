// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title IZkmlOracle
/// @notice Verified model inference on-chain (protocol v1, shared/specs/oracle-protocol.md):
/// a registry of models bound to verifiers, a request/fulfil flow with fee escrow, and a push
/// feed of verified results. Only results whose proof the bound verifier accepted are stored
/// or passed on.
interface IZkmlOracle {
    /// @notice How a model's proof instances are laid out, and what binds it.
    /// @dev Instances are [inputs | params | outputs] in ezkl's order. `inputCount` felts are
    /// public inputs or Poseidon commitments of private ones (`hashedInputs`, one per input
    /// tensor). A batched circuit proves `batchSize` inferences at once and lays its instances
    /// out as [in_0 .. in_{N-1} | params | out_0 .. out_{N-1}]: slot i's inputs are
    /// `instances[inputOffset + i * inputCount :][: inputCount]`, its outputs
    /// `instances[outputOffset + i * outputCount :][: outputCount]`; `inputCount` and
    /// `outputCount` are per slot. `batchSize` is 1 for an unbatched circuit. The segments'
    /// order is ezkl's, read by the toolkit off a real proof (with hashed params, ezkl puts
    /// their commitment first).
    ///
    /// Private weights: a model built with hashed params exposes `paramsCount` Poseidon
    /// commitments of its weights at `paramsOffset`; `paramsCommitment` is
    /// keccak256(abi.encodePacked(those felts)), checked on every verification, so a proof made
    /// with other weights under the same keys is refused ({ZkmlOracleParamsMismatch}). Both are
    /// zero for fixed params (baked into the verifying key).
    ///
    /// Requester-bound inputs: with `requesterBound`, slot i's 7 instances from
    /// `requesterOffset + 7 * i` are the requester's address in 24-bit limbs (least
    /// significant first), which the input commitment covers and the circuit copies out;
    /// fulfilling requires them to spell the request's requester
    /// ({ZkmlOracleRequesterMismatch}), so a copied commitment settles nothing.
    struct ModelConfig {
        address verifier;
        bytes32 artifactDigest; // sha256 binding the model, settings and verifying key
        uint32 numInstances;
        uint32 inputOffset;
        uint32 inputCount;
        uint32 outputOffset;
        uint32 outputCount;
        uint8 outputScale; // output value = int / 2**outputScale
        bool hashedInputs;
        bool devSrs; // built with a test-only SRS (protocol guarantee 7)
        uint32 batchSize; // inferences per proof (>= 1)
        uint32 paramsOffset;
        uint32 paramsCount; // 0: fixed params
        bytes32 paramsCommitment; // keccak256 of the params commitments; 0: fixed params
        uint32 requesterOffset;
        bool requesterBound;
    }

    struct Model {
        ModelConfig config;
        bool active;
        uint64 registeredAt;
    }

    enum RequestStatus {
        None,
        Pending,
        Fulfilled,
        Cancelled
    }

    /// @notice Why {IZkmlOracle-fulfillBatch} left a slot's request alone ({RequestSkipped}).
    enum SkipReason {
        Fulfilled, // already fulfilled, earlier or by another slot of the same batch
        Cancelled,
        Expired // pending, but past its deadline
    }

    /// @notice A request's fields, as {InferenceRequested} emits them. The oracle stores only a
    /// commitment to them (half a slot per request: the low 128 bits of
    /// keccak256(abi.encode(request)), its low two bits replaced by the request's status,
    /// cleared once it is fulfilled); {fulfill},
    /// {fulfillBatch} and {cancel} take
    /// them back as calldata and refuse any field that is not the committed one
    /// ({ZkmlOracleRequestMismatch}), as Chainlink's VRF coordinator v2.5 does.
    struct Request {
        uint256 id;
        bytes32 modelId;
        bytes32 inputHash; // keccak256(abi.encodePacked(inputFelts))
        address requester;
        address refundTo; // credited the fee on cancellation (default: the requester)
        address callback; // zero: no callback
        uint32 callbackGasLimit;
        uint64 deadline;
        uint64 openAt; // until then only a FULFILLER_ROLE holder may fulfil it
        uint96 fee; // escrowed until fulfilment or cancellation
        uint64 seed; // low 64 bits of the hash of the block before the request's
    }

    /// @notice A {Request} as {IZkmlOracle-fulfillBatch} takes it: without `modelId` (the
    /// batch's) and `inputHash` (the hash of its slot's input instances), which the oracle
    /// puts back to recompute the commitment; every other field as committed.
    struct RequestTerms {
        uint256 id;
        address requester;
        address refundTo;
        address callback;
        uint32 callbackGasLimit;
        uint64 deadline;
        uint64 openAt;
        uint96 fee;
        uint64 seed;
    }

    /// @notice The oracle's admin settings ({IZkmlOracle-setSettings}).
    /// @dev `maxCallbackGasLimit` caps a request's `callbackGasLimit`, so that a batch holding
    /// any request still fits a block; `fulfillerGracePeriod` is how long (seconds) after a
    /// request only a `FULFILLER_ROLE` holder may fulfil it (0: open at once), so that a
    /// fulfilment copied from the mempool does not earn the fee; `maxRequestTtl` caps
    /// `deadline - block.timestamp` at request time, so that no escrow waits unboundedly.
    struct Settings {
        uint32 maxCallbackGasLimit;
        uint32 fulfillerGracePeriod;
        uint64 maxRequestTtl;
    }

    struct Result {
        uint80 round;
        uint64 updatedAt;
        bytes32 inputHash;
        int256[] outputs;
    }

    // --- events ---
    event ModelRegistered(bytes32 indexed modelId, address indexed verifier, bytes32 artifactDigest, ModelConfig config);
    event ModelActiveSet(bytes32 indexed modelId, bool active);
    event InferenceRequested(
        uint256 indexed requestId,
        bytes32 indexed modelId,
        address indexed requester,
        uint256[] inputFelts,
        uint256 fee,
        uint64 deadline,
        address callback,
        uint32 callbackGasLimit,
        uint64 openAt,
        address refundTo,
        uint64 seed
    );
    event RequestFulfilled(uint256 indexed requestId, bytes32 indexed modelId, address indexed fulfiller, int256[] outputs);
    /// @notice A slot of a batch answered a request that was no longer pending (or had
    /// expired): the request was left as it was, the rest of the batch settled.
    event RequestSkipped(uint256 indexed requestId, SkipReason reason);
    /// @notice One proof of `modelId` fulfilled the requests `requestIds` (in slot order) and
    /// skipped `skipped` (after their {RequestSkipped}, before any callback): the one log of
    /// a batch's fulfilments. Request `requestIds[j]`'s outputs are
    /// `outputs[j * k : (j + 1) * k]`, k = outputs.length / requestIds.length (the model's
    /// output count), as signed fixed-point integers ({fulfill} emits {RequestFulfilled}).
    event BatchFulfilled(
        bytes32 indexed modelId, address indexed fulfiller, uint256[] requestIds, int256[] outputs, uint256 skipped
    );
    event CallbackSucceeded(uint256 indexed requestId);
    event CallbackFailed(uint256 indexed requestId, bytes reason);
    event RequestCancelled(uint256 indexed requestId, uint256 refund);
    /// @notice Round `round` of `modelId`'s push feed; its value is its last slot's result.
    event ResultSubmitted(bytes32 indexed modelId, uint80 indexed round, bytes32 inputHash, int256[] outputs, address submitter);
    /// @notice Slot `slot` of round `round` (every slot of a round, before its
    /// {ResultSubmitted}): the result {IZkmlOracle-resultOf} returns for `inputHash`.
    event SlotResultSubmitted(bytes32 indexed modelId, uint80 indexed round, uint256 slot, bytes32 inputHash, int256[] outputs);
    event Withdrawn(address indexed account, uint256 amount);
    event SettingsSet(Settings settings);
    /// @notice `publisher` may (or may no longer) move `modelId`'s push feed.
    event FeedPublisherSet(bytes32 indexed modelId, address indexed publisher, bool allowed);
    /// @notice `modelId`'s push feed is open to anyone (or back to its publishers only).
    event FeedOpenSet(bytes32 indexed modelId, bool open);
    /// @notice Request `requestId`'s private input, encrypted to a relayer's key (event data
    /// only: the oracle never stores or reads it).
    event EncryptedInput(uint256 indexed requestId, bytes ciphertext);

    // --- errors ---
    /// @notice A consumer's callback (or any call made while the oracle is calling out) tried
    /// to enter the oracle again (protocol guarantee 5; OpenZeppelin's name for it).
    error ReentrancyGuardReentrantCall();
    error ZkmlOracleUnknownModel(bytes32 modelId);
    error ZkmlOracleModelExists(bytes32 modelId);
    error ZkmlOracleModelInactive(bytes32 modelId);
    error ZkmlOracleInvalidConfig(string reason);
    error ZkmlOracleDevSrsModel(bytes32 modelId);
    error ZkmlOracleUnknownRequest(uint256 requestId);
    error ZkmlOracleRequestNotPending(uint256 requestId, RequestStatus status);
    error ZkmlOracleRequestExpired(uint256 requestId, uint64 deadline);
    error ZkmlOracleRequestNotExpired(uint256 requestId, uint64 deadline);
    error ZkmlOracleNotRequester(uint256 requestId, address caller);
    error ZkmlOracleBadDeadline(uint64 deadline);
    error ZkmlOracleWrongInputCount(uint256 expected, uint256 actual);
    error ZkmlOracleWrongInstanceCount(uint256 expected, uint256 actual);
    error ZkmlOracleInstanceOutOfField(uint256 index, uint256 value);
    error ZkmlOracleInputMismatch(uint256 requestId);
    error ZkmlOracleInvalidProof(bytes32 modelId);
    error ZkmlOracleInsufficientCallbackGas(uint256 requestId, uint256 needed, uint256 available);
    error ZkmlOracleRoundTooSoon(bytes32 modelId, uint64 lastUpdatedAt);
    error ZkmlOracleNoResult(bytes32 modelId);
    error ZkmlOracleUnknownRound(bytes32 modelId, uint80 round);
    error ZkmlOracleNothingToWithdraw(address account);
    error ZkmlOracleTransferFailed(address account, uint256 amount);
    /// @notice The registry holds `max` models, the most it can index.
    error ZkmlOracleTooManyModels(uint256 max);
    /// @notice A fee above type(uint96).max wei (escrows are stored as uint96).
    error ZkmlOracleFeeTooLarge(uint256 fee);
    /// @notice A batch of `size` slots, for a model proving 1 to `max` per proof.
    error ZkmlOracleBadBatchSize(uint256 size, uint256 max);
    /// @notice Every request of the batch was already fulfilled, cancelled or expired.
    error ZkmlOracleNothingToSettle();
    /// @notice A `callbackGasLimit` above the oracle's {Settings-maxCallbackGasLimit}.
    error ZkmlOracleCallbackGasLimitTooHigh(uint256 callbackGasLimit, uint256 max);
    /// @notice Until `openAt`, only a `FULFILLER_ROLE` holder may fulfil `requestId`.
    error ZkmlOracleNotDesignatedFulfiller(uint256 requestId, address caller, uint64 openAt);
    /// @notice `caller` may not move `modelId`'s push feed (not a publisher, feed not open).
    error ZkmlOracleNotPublisher(bytes32 modelId, address caller);
    /// @notice The code at `modelId`'s verifier is no longer the code registered.
    error ZkmlOracleVerifierChanged(bytes32 modelId, bytes32 registered, bytes32 current);
    /// @notice `verifier` has no code, or code without solc's metadata trailer: the oracle
    /// cannot tell whether it could change (see `VerifierCodeScan`).
    error ZkmlOracleUnrecognisedVerifier(address verifier);
    /// @notice `verifier`'s code could change what it answers: `opcode` at byte `offset`
    /// reads or writes state, calls out (not a precompile) or jumps into data (see
    /// `VerifierCodeScan`); an upgradeable proxy is refused so.
    error ZkmlOracleMutableVerifier(address verifier, uint256 offset, uint8 opcode);
    /// @notice Settings the oracle refuses (see {Settings}).
    error ZkmlOracleInvalidSettings(string reason);
    /// @notice The proof's params commitments are not the model's: other weights.
    error ZkmlOracleParamsMismatch(bytes32 modelId);
    /// @notice The proof's requester limbs spell `bound`, not request `requestId`'s requester.
    error ZkmlOracleRequesterMismatch(uint256 requestId, uint256 bound);
    /// @notice The fields passed for request `requestId` are not the ones it committed to
    /// (they are in its {InferenceRequested}).
    error ZkmlOracleRequestMismatch(uint256 requestId);
    /// @notice A request may not name the zero address as its refund address.
    error ZkmlOracleZeroRefundAddress();

    // --- registry (admin) ---
    /// @notice Registers a model; its id is keccak256(abi.encode(config)) and never changes meaning.
    function registerModel(ModelConfig calldata config) external returns (bytes32 modelId);

    /// @notice Activates or deactivates a model; a model is never mutated otherwise.
    function setModelActive(bytes32 modelId, bool active) external;

    // --- request / fulfil ---
    /// @notice Asks for the model's output on `inputFelts`, escrowing `msg.value` as the fee.
    function requestInference(
        bytes32 modelId,
        uint256[] calldata inputFelts,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline
    ) external payable returns (uint256 requestId);

    /// @notice {requestInference}, with the fee refunded to `refundTo` (instead of the
    /// requester) if the request is cancelled.
    function requestInferenceWithRefund(
        bytes32 modelId,
        uint256[] calldata inputFelts,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline,
        address refundTo
    ) external payable returns (uint256 requestId);

    /// @notice {requestInference}, with the private input sealed to a relayer's key
    /// ({EncryptedInput}): the relayer decrypts it, checks it against `inputFelts` and proves.
    function requestPrivateInference(
        bytes32 modelId,
        uint256[] calldata inputFelts,
        address callback,
        uint32 callbackGasLimit,
        uint64 deadline,
        bytes calldata ciphertext
    ) external payable returns (uint256 requestId);

    /// @notice Answers `request` (its fields as committed) with a proof whose input instances
    /// equal the request's (slot 0's, for a batched model).
    function fulfill(Request calldata request, bytes calldata proof, uint256[] calldata instances) external;

    /// @notice Answers up to `batchSize` requests of `modelId` with one proof: slot i answers
    /// `requests[i]` (its {RequestTerms}); requests no longer pending are skipped, the others
    /// fulfilled ({BatchFulfilled}).
    function fulfillBatch(
        bytes32 modelId,
        RequestTerms[] calldata requests,
        bytes calldata proof,
        uint256[] calldata instances
    ) external returns (uint256 settled);

    /// @notice Cancels an unfulfilled request that expired, or whose model was deactivated;
    /// its fee is credited to its refund address.
    function cancel(Request calldata request) external;

    /// @notice Pays out everything credited to the caller (fees earned, refunds).
    function withdraw() external;

    // --- settings (admin) ---
    /// @notice Replaces the oracle's {Settings}.
    function setSettings(Settings calldata settings_) external;

    /// @notice Allows or disallows `publisher` to move `modelId`'s push feed.
    function setFeedPublisher(bytes32 modelId, address publisher, bool allowed) external;

    /// @notice Opens `modelId`'s push feed to anyone, or restricts it to its publishers.
    function setFeedOpen(bytes32 modelId, bool open) external;

    // --- push feed ---
    /// @notice Publishes a verified result for `modelId` as its next round.
    function submitResult(bytes32 modelId, bytes calldata proof, uint256[] calldata instances)
        external
        returns (uint80 round);

    /// @notice Publishes slots 0 .. `slots`-1 of one verified batched proof as ONE next round
    /// of `modelId`, whose value is the last slot's; every slot is indexed for {resultOf}.
    function submitResultBatch(bytes32 modelId, bytes calldata proof, uint256[] calldata instances, uint256 slots)
        external
        returns (uint80 round);

    // --- views ---
    function getModel(bytes32 modelId) external view returns (Model memory);
    /// @notice Request `requestId`'s status (None: never issued).
    function requestStatus(uint256 requestId) external view returns (RequestStatus);
    /// @notice Whether `request` holds the fields request `request.id` committed to (pending
    /// or not): what a consumer checks before trusting fields read from an event.
    function isCommitted(Request calldata request) external view returns (bool);
    function latestResult(bytes32 modelId) external view returns (Result memory);
    function getResult(bytes32 modelId, uint80 round) external view returns (Result memory);
    function resultOf(bytes32 modelId, bytes32 inputHash) external view returns (Result memory);
    function pendingWithdrawal(address account) external view returns (uint256);
    function settings() external view returns (Settings memory);
    function isFeedPublisher(bytes32 modelId, address account) external view returns (bool);
    function feedOpen(bytes32 modelId) external view returns (bool);
    /// @notice The verifier's code hash recorded at registration (every verification checks it).
    function verifierCodehash(bytes32 modelId) external view returns (bytes32);
}
