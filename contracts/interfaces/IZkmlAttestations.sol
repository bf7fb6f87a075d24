// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title IZkmlAttestations
/// @notice Verified evaluations of the oracle's models on committed, private test sets
/// (docs/evaluation.md): how many of a test set's `samples` a model gets right, proven by a
/// zk-SNARK whose only public data are the test set's chunk commitments and the counts.
///
/// - A test set is published by its owner as the Poseidon hashes of its salted chunks; its id
///   is keccak256(abi.encodePacked(chunkHashes)). Publication is timestamped, so a reader can
///   tell a test set fixed before the model existed from one picked afterwards.
/// - An evaluator (the evaluation circuit's verifier) is registered for one oracle model id,
///   checked against the model's artifact digest on the oracle.
/// - Each chunk's proof is verified once ({submitChunk}); when every chunk of a test set is in,
///   the attestation (model, test set, metric, samples, correct, block) is recorded for good.
interface IZkmlAttestations {
    /// @notice How a sample counts as correct; the evaluation circuit bakes it in.
    enum Metric {
        Argmax, // index of the largest output == label
        Threshold, // (output > parameter) == (label > 0.5)
        WithinError // |output - label| <= parameter
    }

    /// @notice An evaluation circuit for one oracle model.
    /// @dev `modelSha256`, `settingsSha256` and `vkSha256` are the model's *inference* build
    /// digests (its manifest): sha256 of the JSON {"model","settings","vk"} of them must equal
    /// the oracle's `artifactDigest` for the model id, so the evaluator evaluates that model file.
    struct EvaluatorConfig {
        address verifier; // verifyProof(proof, [chunkHash, correct, samples])
        bytes32 evaluatorDigest; // the evaluation build's artifact digest
        bytes32 modelSha256;
        bytes32 settingsSha256;
        bytes32 vkSha256;
        uint32 chunkSize;
        Metric metric;
        int64 parameter; // threshold or tolerance, in millionths; 0 for Argmax
        bool devSrs;
    }

    struct Evaluator {
        bytes32 modelId;
        EvaluatorConfig config;
        uint64 registeredAt;
    }

    struct TestSet {
        address owner;
        uint32 samples;
        uint32 chunkCount;
        uint64 publishedAt; // timestamp
        uint64 publishedBlock;
    }

    /// @notice One recorded evaluation. `committedInAdvance`: the test set was published
    /// before the model was registered on the oracle (so it was not chosen knowing the model).
    struct Attestation {
        bytes32 modelId;
        bytes32 testSetId;
        bytes32 evaluatorId;
        Metric metric;
        int64 parameter;
        uint32 samples;
        uint32 correct;
        uint64 attestedAt;
        uint64 attestedBlock;
        address testSetOwner;
        uint64 testSetPublishedAt;
        bool committedInAdvance;
    }

    /// @notice Chunks of one (evaluator, test set) verified so far (until the attestation is
    /// recorded: the last chunk's proof records it instead).
    struct Progress {
        uint64 verifiedChunks; // bit i: chunk i
        uint32 samples;
        uint32 correct;
    }

    // --- events ---

    event EvaluatorRegistered(bytes32 indexed evaluatorId, bytes32 indexed modelId, address verifier, EvaluatorConfig config);
    event TestSetPublished(bytes32 indexed testSetId, address indexed owner, uint32 samples, bytes32[] chunkHashes);
    event ChunkVerified(bytes32 indexed evaluatorId, bytes32 indexed testSetId, uint256 chunk, uint256 correct, uint256 samples, address submitter);
    event AttestationRecorded(bytes32 indexed modelId, bytes32 indexed testSetId, uint256 index, uint32 correct, uint32 samples, bool committedInAdvance);

    // --- errors ---

    error ZkmlAttestationsUnknownModel(bytes32 modelId);
    error ZkmlAttestationsDigestMismatch(bytes32 modelId, bytes32 expected, bytes32 actual);
    error ZkmlAttestationsDevSrs(bytes32 modelId);
    error ZkmlAttestationsInvalidConfig(string reason);
    error ZkmlAttestationsEvaluatorExists(bytes32 evaluatorId);
    error ZkmlAttestationsUnknownEvaluator(bytes32 evaluatorId);
    error ZkmlAttestationsBadTestSet(string reason);
    error ZkmlAttestationsTestSetExists(bytes32 testSetId);
    error ZkmlAttestationsUnknownTestSet(bytes32 testSetId);
    error ZkmlAttestationsUnknownChunk(bytes32 testSetId, uint256 chunk);
    error ZkmlAttestationsChunkMismatch(bytes32 testSetId, uint256 chunk, uint256 expected, uint256 actual);
    error ZkmlAttestationsChunkAlreadyVerified(bytes32 testSetId, uint256 chunk);
    error ZkmlAttestationsBadCounts(uint256 correct, uint256 samples);
    error ZkmlAttestationsSampleCountMismatch(bytes32 testSetId, uint256 published, uint256 proven);
    error ZkmlAttestationsInvalidProof(bytes32 evaluatorId);
    error ZkmlAttestationsAlreadyAttested(bytes32 modelId, bytes32 testSetId);
    error ZkmlAttestationsNoAttestation(bytes32 modelId, bytes32 testSetId);
    error ZkmlAttestationsBadBps(uint256 bps);

    // --- functions ---

    /// @notice Register the evaluation circuit `config` for the oracle model `modelId`.
    function registerEvaluator(bytes32 modelId, EvaluatorConfig calldata config) external returns (bytes32 evaluatorId);

    /// @notice Publish a test set's commitment (by its owner, the caller).
    function publishTestSet(bytes32[] calldata chunkHashes, uint32 samples) external returns (bytes32 testSetId);

    /// @notice Verify chunk `chunk` of test set `testSetId` under evaluator `evaluatorId`;
    /// `instances` are [chunkHash, correct, samples]. The last missing chunk records the
    /// attestation. Anyone may submit: a valid proof is true whoever sends it.
    function submitChunk(
        bytes32 evaluatorId,
        bytes32 testSetId,
        uint256 chunk,
        bytes calldata proof,
        uint256[] calldata instances
    ) external returns (bool complete);

    function getEvaluator(bytes32 evaluatorId) external view returns (Evaluator memory);
    function getTestSet(bytes32 testSetId) external view returns (TestSet memory);
    function chunkHashes(bytes32 testSetId) external view returns (bytes32[] memory);
    function progress(bytes32 evaluatorId, bytes32 testSetId) external view returns (Progress memory);
    function attestationCount(bytes32 modelId) external view returns (uint256);
    function getAttestation(bytes32 modelId, uint256 index) external view returns (Attestation memory);
    function attestationOf(bytes32 modelId, bytes32 testSetId) external view returns (Attestation memory);

    /// @notice Accuracy of `modelId` on `testSetId` in basis points (correct * 10000 / samples,
    /// rounded down); reverts {ZkmlAttestationsNoAttestation} when there is none.
    function accuracyBps(bytes32 modelId, bytes32 testSetId) external view returns (uint256);

    /// @notice Whether `modelId` has an attestation on `testSetId` of at least `minBps`
    /// (false, not a revert, when it has none).
    function meetsAccuracy(bytes32 modelId, bytes32 testSetId, uint256 minBps) external view returns (bool);
}
