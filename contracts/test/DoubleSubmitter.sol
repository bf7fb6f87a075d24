// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {IZkmlOracle} from "../interfaces/IZkmlOracle.sol";

/// @title DoubleSubmitter
/// @notice Test-only: two push-feed submissions in one transaction (hence one block).
contract DoubleSubmitter {
    /// @notice Submits the same proof twice; the second must revert `ZkmlOracleRoundTooSoon`.
    function submitTwice(IZkmlOracle oracle, bytes32 modelId, bytes calldata proof, uint256[] calldata instances)
        external
    {
        oracle.submitResult(modelId, proof, instances);
        oracle.submitResult(modelId, proof, instances);
    }
}
