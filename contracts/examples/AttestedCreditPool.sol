// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {IZkmlAttestations} from "../interfaces/IZkmlAttestations.sol";
import {IZkmlOracle} from "../interfaces/IZkmlOracle.sol";

/// @title AttestedCreditPool
/// @notice Example (evaluation-gated credit): a lender acts on a verified credit score only
/// when the model that produced it has a verified accuracy of at least `minAccuracyBps` on
/// the lender's own test set, published by the lender before the evaluation
/// (docs/evaluation.md).
///
/// The lender publishes its test set's commitment on the attestation registry, then deploys
/// this pool naming it: the constructor refuses a test set the lender did not publish. A
/// borrower's score is any verified result the oracle holds for their input
/// ({IZkmlOracle-resultOf}); {decide} refuses it when the model has no such attestation, so a
/// new or retrained model (a new model id) is refused until it is evaluated again.
contract AttestedCreditPool is Ownable {
    IZkmlOracle public immutable oracle;
    IZkmlAttestations public immutable attestations;
    /// @notice The lender's test set (its id on the registry).
    bytes32 public immutable testSetId;
    /// @notice The least accuracy, in basis points, a model needs on the lender's test set.
    uint256 public immutable minAccuracyBps;
    /// @notice Which model output is the score, and the score above which credit is granted
    /// (raw fixed point at the model's output scale).
    uint256 public immutable scoreIndex;
    int256 public immutable scoreThreshold;

    /// @notice Credit decided for `inputHash` with a score from `modelId`.
    event CreditDecided(bytes32 indexed modelId, bytes32 indexed inputHash, int256 score, bool approved, uint256 accuracyBps);

    /// @notice The test set was not published by the lender.
    error AttestedCreditPoolNotLendersTestSet(bytes32 testSetId, address owner);
    /// @notice The model has no attestation of at least `minAccuracyBps` on the lender's test set.
    error AttestedCreditPoolModelNotAttested(bytes32 modelId, uint256 minAccuracyBps);
    /// @notice The model's result has no output `scoreIndex`.
    error AttestedCreditPoolNoScore(bytes32 modelId, uint256 scoreIndex);

    constructor(
        IZkmlOracle oracle_,
        IZkmlAttestations attestations_,
        bytes32 testSetId_,
        uint256 minAccuracyBps_,
        uint256 scoreIndex_,
        int256 scoreThreshold_
    ) Ownable(msg.sender) {
        address owner_ = attestations_.getTestSet(testSetId_).owner;
        if (owner_ != msg.sender) revert AttestedCreditPoolNotLendersTestSet(testSetId_, owner_);
        oracle = oracle_;
        attestations = attestations_;
        testSetId = testSetId_;
        minAccuracyBps = minAccuracyBps_;
        scoreIndex = scoreIndex_;
        scoreThreshold = scoreThreshold_;
    }

    /// @notice Decide on the verified score the oracle holds for `inputHash` from `modelId`.
    /// Reverts {AttestedCreditPoolModelNotAttested} for a model without a sufficient
    /// attestation on the lender's test set. Emits {CreditDecided}.
    function decide(bytes32 modelId, bytes32 inputHash) external returns (bool approved) {
        if (!attestations.meetsAccuracy(modelId, testSetId, minAccuracyBps)) {
            revert AttestedCreditPoolModelNotAttested(modelId, minAccuracyBps);
        }
        int256[] memory outputs = oracle.resultOf(modelId, inputHash).outputs;
        if (scoreIndex >= outputs.length) revert AttestedCreditPoolNoScore(modelId, scoreIndex);
        int256 score = outputs[scoreIndex];
        approved = score > scoreThreshold;
        emit CreditDecided(modelId, inputHash, score, approved, attestations.accuracyBps(modelId, testSetId));
    }
}
