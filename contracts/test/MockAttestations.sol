// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title MockAttestations
/// @notice Test-only stand-in for {ZkmlAttestations}' `meetsAccuracy`: accuracies are set by
/// hand (the real contract records them from evaluation proofs).
contract MockAttestations {
    mapping(bytes32 modelId => mapping(bytes32 testSetId => uint256)) private _bps;

    function setAccuracy(bytes32 modelId, bytes32 testSetId, uint256 bps) external {
        _bps[modelId][testSetId] = bps;
    }

    function meetsAccuracy(bytes32 modelId, bytes32 testSetId, uint256 minBps) external view returns (bool) {
        uint256 bps = _bps[modelId][testSetId];
        return bps != 0 && bps >= minBps;
    }
}
