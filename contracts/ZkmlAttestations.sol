// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

import {IZkmlAttestations} from "./interfaces/IZkmlAttestations.sol";
import {IZkmlOracle} from "./interfaces/IZkmlOracle.sol";
import {IZkmlVerifier} from "./interfaces/IZkmlVerifier.sol";

/// @title ZkmlAttestations
/// @notice The registry of verified evaluations of the oracle's models (docs/evaluation.md).
///
/// What a recorded attestation means: the evaluator registered for `modelId` (a circuit
/// running that model file on a chunk of samples and counting the right answers) produced
/// valid proofs that, over the chunks whose Poseidon commitments the test set's owner
/// published, `correct` of `samples` samples are right under `metric`. Who the owner is and
/// when they published (before or after the model was registered) is recorded with it.
///
/// Trust: an evaluator's verifier is vouched for by {REGISTRAR_ROLE}, as the oracle's
/// registrar vouches for a model's verifier; anyone can rebuild the evaluator from the model
/// file (whose digest the contract checks against the oracle) and compare verifying keys.
contract ZkmlAttestations is IZkmlAttestations, AccessControl {
    /// @notice The role allowed to register evaluators.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice Most chunks a test set may have (one bit each in {Progress-verifiedChunks}).
    uint256 public constant MAX_CHUNKS = 64;
    /// @notice Instances of an evaluation proof: chunk hash, correct, samples.
    uint256 public constant NUM_INSTANCES = 3;
    /// @dev BN254's scalar field: every instance (and chunk hash) is below it.
    uint256 private constant _FIELD_MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @dev An attestation as stored, in three slots: the rest of {Attestation} is read from
    /// its evaluator and test set (recording costs gas, reading is free).
    struct StoredAttestation {
        bytes32 testSetId;
        bytes32 evaluatorId;
        uint32 samples;
        uint32 correct;
        uint64 attestedAt;
        uint64 attestedBlock;
        bool committedInAdvance;
    }

    IZkmlOracle public immutable oracle;
    bool private immutable _allowDevSrs;

    mapping(bytes32 evaluatorId => Evaluator) private _evaluators;
    mapping(bytes32 testSetId => TestSet) private _testSets;
    mapping(bytes32 testSetId => bytes32[]) private _chunkHashes;
    mapping(bytes32 evaluatorId => mapping(bytes32 testSetId => Progress)) private _progress;
    mapping(bytes32 modelId => StoredAttestation[]) private _attestations;
    mapping(bytes32 modelId => mapping(bytes32 testSetId => uint256 indexPlusOne)) private _attestationIndex;

    /// @param oracle_ The oracle whose model registry evaluators are checked against.
    /// @param admin Gets {DEFAULT_ADMIN_ROLE} and {REGISTRAR_ROLE}.
    /// @param allowDevSrs_ Accept evaluators built with a test-only SRS on any chain (local dev
    /// chains, ids 31337 and 1337, always accept them).
    constructor(IZkmlOracle oracle_, address admin, bool allowDevSrs_) {
        oracle = oracle_;
        _allowDevSrs = allowDevSrs_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
    }

    // --- registration ---

    /// @inheritdoc IZkmlAttestations
    /// @dev Requires {REGISTRAR_ROLE}. The evaluator id is keccak256(abi.encode(modelId,
    /// config)). Refuses a model unknown to the oracle, inference-build digests that do not
    /// hash to the model's artifact digest, a dev-SRS evaluator where dev SRSs are not allowed,
    /// and a config without a verifier or chunk size.
    function registerEvaluator(bytes32 modelId, EvaluatorConfig calldata config)
        external
        onlyRole(REGISTRAR_ROLE)
        returns (bytes32 evaluatorId)
    {
        if (config.verifier.code.length == 0) revert ZkmlAttestationsInvalidConfig("verifier has no code");
        if (config.chunkSize == 0) revert ZkmlAttestationsInvalidConfig("chunk size is 0");
        if (config.metric == Metric.Argmax && config.parameter != 0) {
            revert ZkmlAttestationsInvalidConfig("argmax takes no parameter");
        }
        bytes32 expected = _modelDigest(modelId);
        bytes32 actual = artifactDigest(config.modelSha256, config.settingsSha256, config.vkSha256);
        if (actual != expected) revert ZkmlAttestationsDigestMismatch(modelId, expected, actual);
        if (config.devSrs && !devSrsAllowed()) revert ZkmlAttestationsDevSrs(modelId);
        evaluatorId = keccak256(abi.encode(modelId, config));
        if (_evaluators[evaluatorId].registeredAt != 0) revert ZkmlAttestationsEvaluatorExists(evaluatorId);
        _evaluators[evaluatorId] = Evaluator({modelId: modelId, config: config, registeredAt: uint64(block.timestamp)});
        emit EvaluatorRegistered(evaluatorId, modelId, config.verifier, config);
    }

    /// @inheritdoc IZkmlAttestations
    /// @dev Refuses no chunks, more than {MAX_CHUNKS}, a hash that is not a field element, a
    /// sample count that does not fit the chunks, and an id already published.
    function publishTestSet(bytes32[] calldata hashes, uint32 samples) external returns (bytes32 testSetId) {
        uint256 n = hashes.length;
        if (n == 0 || n > MAX_CHUNKS) revert ZkmlAttestationsBadTestSet("1 to 64 chunks");
        if (samples < n) revert ZkmlAttestationsBadTestSet("fewer samples than chunks");
        for (uint256 i = 0; i < n; ++i) {
            if (uint256(hashes[i]) >= _FIELD_MODULUS) revert ZkmlAttestationsBadTestSet("hash is not a felt");
        }
        testSetId = keccak256(abi.encodePacked(hashes));
        if (_testSets[testSetId].publishedAt != 0) revert ZkmlAttestationsTestSetExists(testSetId);
        _testSets[testSetId] = TestSet({
            owner: msg.sender,
            samples: samples,
            chunkCount: uint32(n),
            publishedAt: uint64(block.timestamp),
            publishedBlock: uint64(block.number)
        });
        _chunkHashes[testSetId] = hashes;
        emit TestSetPublished(testSetId, msg.sender, samples, hashes);
    }

    // --- attesting ---

    /// @inheritdoc IZkmlAttestations
    /// @dev Checks, then verifies, then writes: the chunk must exist and be unverified, its
    /// hash must be instance 0, the counts must be consistent, and the evaluator's verifier
    /// must accept the proof. The last chunk checks the proven sample total against the
    /// published one and records the {Attestation}.
    function submitChunk(
        bytes32 evaluatorId,
        bytes32 testSetId,
        uint256 chunk,
        bytes calldata proof,
        uint256[] calldata instances
    ) external returns (bool complete) {
        Evaluator storage ev = _evaluators[evaluatorId];
        if (ev.registeredAt == 0) revert ZkmlAttestationsUnknownEvaluator(evaluatorId);
        uint256 chunkCount = _testSets[testSetId].chunkCount;
        if (chunkCount == 0) revert ZkmlAttestationsUnknownTestSet(testSetId);
        if (chunk >= chunkCount) revert ZkmlAttestationsUnknownChunk(testSetId, chunk);
        if (_attestationIndex[ev.modelId][testSetId] != 0) {
            revert ZkmlAttestationsAlreadyAttested(ev.modelId, testSetId);
        }
        Progress memory p = _progress[evaluatorId][testSetId];
        if (p.verifiedChunks & (uint64(1) << chunk) != 0) {
            revert ZkmlAttestationsChunkAlreadyVerified(testSetId, chunk);
        }
        if (instances.length != NUM_INSTANCES) revert ZkmlAttestationsInvalidProof(evaluatorId);
        if (instances[0] != uint256(_chunkHashes[testSetId][chunk])) {
            revert ZkmlAttestationsChunkMismatch(testSetId, chunk, uint256(_chunkHashes[testSetId][chunk]), instances[0]);
        }
        if (instances[1] > instances[2] || instances[2] == 0 || instances[2] > ev.config.chunkSize) {
            revert ZkmlAttestationsBadCounts(instances[1], instances[2]);
        }
        if (!_verify(ev.config.verifier, proof, instances)) revert ZkmlAttestationsInvalidProof(evaluatorId);

        p.verifiedChunks |= uint64(1) << chunk;
        p.samples += uint32(instances[2]);
        p.correct += uint32(instances[1]);
        emit ChunkVerified(evaluatorId, testSetId, chunk, instances[1], instances[2], msg.sender);

        complete = uint256(p.verifiedChunks) == (uint256(1) << chunkCount) - 1;
        // The last chunk records the attestation instead of the progress (which then stays
        // as it was: the attestation is what later submissions are refused by).
        if (complete) _record(evaluatorId, testSetId, p);
        else _progress[evaluatorId][testSetId] = p;
    }

    function _record(bytes32 evaluatorId, bytes32 testSetId, Progress memory p) private {
        TestSet storage ts = _testSets[testSetId];
        if (p.samples != ts.samples) revert ZkmlAttestationsSampleCountMismatch(testSetId, ts.samples, p.samples);
        bytes32 modelId = _evaluators[evaluatorId].modelId;
        bool inAdvance = ts.publishedAt < oracle.getModel(modelId).registeredAt;
        StoredAttestation[] storage list = _attestations[modelId];
        list.push(
            StoredAttestation({
                testSetId: testSetId,
                evaluatorId: evaluatorId,
                samples: p.samples,
                correct: p.correct,
                attestedAt: uint64(block.timestamp),
                attestedBlock: uint64(block.number),
                committedInAdvance: inAdvance
            })
        );
        _attestationIndex[modelId][testSetId] = list.length;
        emit AttestationRecorded(modelId, testSetId, list.length - 1, p.correct, p.samples, inAdvance);
    }

    function _expand(bytes32 modelId, StoredAttestation storage s) private view returns (Attestation memory a) {
        EvaluatorConfig storage config = _evaluators[s.evaluatorId].config;
        TestSet storage ts = _testSets[s.testSetId];
        a.modelId = modelId;
        a.testSetId = s.testSetId;
        a.evaluatorId = s.evaluatorId;
        a.metric = config.metric;
        a.parameter = config.parameter;
        a.samples = s.samples;
        a.correct = s.correct;
        a.attestedAt = s.attestedAt;
        a.attestedBlock = s.attestedBlock;
        a.testSetOwner = ts.owner;
        a.testSetPublishedAt = ts.publishedAt;
        a.committedInAdvance = s.committedInAdvance;
    }

    /// @dev A reverting verifier, or one returning anything but true, rejects the proof.
    function _verify(address verifier, bytes calldata proof, uint256[] calldata instances) private returns (bool) {
        try IZkmlVerifier(verifier).verifyProof(proof, instances) returns (bool ok) {
            return ok;
        } catch {
            return false;
        }
    }

    // --- views ---

    /// @notice Whether dev-SRS evaluators are accepted here.
    function devSrsAllowed() public view returns (bool) {
        return _allowDevSrs || block.chainid == 31337 || block.chainid == 1337;
    }

    /// @notice The oracle's artifact digest of a build: sha256 of the JSON
    /// `{"model": "<hex>", "settings": "<hex>", "vk": "<hex>"}` of its three sha256 digests
    /// (zkml_oracle.types.Manifest.artifact_digest).
    function artifactDigest(bytes32 model, bytes32 settings, bytes32 vk) public pure returns (bytes32) {
        return sha256(
            abi.encodePacked(
                '{"model": "', _hex(model), '", "settings": "', _hex(settings), '", "vk": "', _hex(vk), '"}'
            )
        );
    }

    /// @inheritdoc IZkmlAttestations
    function getEvaluator(bytes32 evaluatorId) external view returns (Evaluator memory ev) {
        ev = _evaluators[evaluatorId];
        if (ev.registeredAt == 0) revert ZkmlAttestationsUnknownEvaluator(evaluatorId);
    }

    /// @inheritdoc IZkmlAttestations
    function getTestSet(bytes32 testSetId) external view returns (TestSet memory ts) {
        ts = _testSets[testSetId];
        if (ts.publishedAt == 0) revert ZkmlAttestationsUnknownTestSet(testSetId);
    }

    /// @inheritdoc IZkmlAttestations
    function chunkHashes(bytes32 testSetId) external view returns (bytes32[] memory) {
        return _chunkHashes[testSetId];
    }

    /// @inheritdoc IZkmlAttestations
    function progress(bytes32 evaluatorId, bytes32 testSetId) external view returns (Progress memory) {
        return _progress[evaluatorId][testSetId];
    }

    /// @inheritdoc IZkmlAttestations
    function attestationCount(bytes32 modelId) external view returns (uint256) {
        return _attestations[modelId].length;
    }

    /// @inheritdoc IZkmlAttestations
    function getAttestation(bytes32 modelId, uint256 index) external view returns (Attestation memory) {
        return _expand(modelId, _attestations[modelId][index]);
    }

    /// @inheritdoc IZkmlAttestations
    function attestationOf(bytes32 modelId, bytes32 testSetId) public view returns (Attestation memory) {
        uint256 i = _attestationIndex[modelId][testSetId];
        if (i == 0) revert ZkmlAttestationsNoAttestation(modelId, testSetId);
        return _expand(modelId, _attestations[modelId][i - 1]);
    }

    /// @inheritdoc IZkmlAttestations
    function accuracyBps(bytes32 modelId, bytes32 testSetId) public view returns (uint256) {
        Attestation memory a = attestationOf(modelId, testSetId);
        return uint256(a.correct) * 10_000 / a.samples;
    }

    /// @inheritdoc IZkmlAttestations
    function meetsAccuracy(bytes32 modelId, bytes32 testSetId, uint256 minBps) external view returns (bool) {
        if (minBps > 10_000) revert ZkmlAttestationsBadBps(minBps);
        if (_attestationIndex[modelId][testSetId] == 0) return false;
        return accuracyBps(modelId, testSetId) >= minBps;
    }

    // --- internals ---

    function _modelDigest(bytes32 modelId) private view returns (bytes32) {
        try oracle.getModel(modelId) returns (IZkmlOracle.Model memory m) {
            if (m.registeredAt == 0) revert ZkmlAttestationsUnknownModel(modelId);
            return m.config.artifactDigest;
        } catch {
            revert ZkmlAttestationsUnknownModel(modelId);
        }
    }

    /// @dev Lower-case hex of 32 bytes, no prefix (64 characters); registration only.
    function _hex(bytes32 value) private pure returns (bytes memory out) {
        bytes16 digits = "0123456789abcdef";
        out = new bytes(64);
        for (uint256 i = 0; i < 32; ++i) {
            out[2 * i] = digits[uint8(value[i]) >> 4];
            out[2 * i + 1] = digits[uint8(value[i]) & 0x0f];
        }
    }
}
