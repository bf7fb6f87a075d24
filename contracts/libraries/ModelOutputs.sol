// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title ModelOutputs
/// @notice Readings of a model's verified outputs (signed fixed-point integers, as the oracle
/// passes them to consumers) shared by the example consumers.
library ModelOutputs {
    /// @notice The index of the largest output, ties to the lower index (a classifier's class).
    /// @dev Bounded by the model's output count, which registration caps.
    function argmax(int256[] calldata outputs) internal pure returns (uint256 best) {
        uint256 n = outputs.length;
        for (uint256 i = 1; i < n; ++i) {
            if (outputs[i] > outputs[best]) best = i;
        }
    }
}
