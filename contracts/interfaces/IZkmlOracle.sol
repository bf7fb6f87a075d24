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
    /// public inputs or Poseidon commitments of private ones (`hashedInputs`).
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

    struct Request {
        bytes32 modelId;
        address requester;
        address callback;
        uint32 callbackGasLimit;
        uint64 deadline;
        RequestStatus status;
        uint256 fee;
        bytes32 inputHash; // keccak256(abi.encodePacked(inputFelts))
        address fulfiller;
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
        uint32 callbackGasLimit
    );
    event RequestFulfilled(uint256 indexed requestId, bytes32 indexed modelId, address indexed fulfiller, int256[] outputs);
    event CallbackSucceeded(uint256 indexed requestId);
    event CallbackFailed(uint256 indexed requestId, bytes reason);
    event RequestCancelled(uint256 indexed requestId, uint256 refund);
    event ResultSubmitted(bytes32 indexed modelId, uint80 indexed round, bytes32 inputHash, int256[] outputs, address submitter);
    event Withdrawn(address indexed account, uint256 amount);

    // --- errors ---
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

    /// @notice Answers a request with a proof whose input instances equal the request's.
    function fulfill(uint256 requestId, bytes calldata proof, uint256[] calldata instances) external;

    /// @notice Cancels an expired, unfulfilled request; its fee is credited back to the requester.
    function cancel(uint256 requestId) external;

    /// @notice Pays out everything credited to the caller (fees earned, refunds).
    function withdraw() external;

    // --- push feed ---
    /// @notice Publishes a verified result for `modelId` as its next round.
    function submitResult(bytes32 modelId, bytes calldata proof, uint256[] calldata instances)
        external
        returns (uint80 round);

    // --- views ---
    function getModel(bytes32 modelId) external view returns (Model memory);
    function getRequest(uint256 requestId) external view returns (Request memory);
    function latestResult(bytes32 modelId) external view returns (Result memory);
    function getResult(bytes32 modelId, uint80 round) external view returns (Result memory);
    function resultOf(bytes32 modelId, bytes32 inputHash) external view returns (Result memory);
    function pendingWithdrawal(address account) external view returns (uint256);
}
