// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {IZkmlConsumer} from "./interfaces/IZkmlConsumer.sol";
import {IZkmlOracle} from "./interfaces/IZkmlOracle.sol";

/// @title ZkmlConsumer
/// @notice Base for contracts that receive verified inferences from a {ZkmlOracle}: only the
/// oracle may deliver a result. Implement {_onInferenceResult}; keep it within the gas limit
/// you pass to `requestInference` (a revert or out-of-gas there is recorded by the oracle as
/// `CallbackFailed` and the result is not delivered again).
abstract contract ZkmlConsumer is IZkmlConsumer {
    IZkmlOracle private immutable _oracle;

    /// @notice `caller` is not the oracle this consumer trusts.
    error ZkmlConsumerNotOracle(address caller);

    /// @param oracle_ The oracle whose callbacks this consumer accepts.
    constructor(IZkmlOracle oracle_) {
        _oracle = oracle_;
    }

    /// @notice The oracle whose callbacks this consumer accepts.
    function oracle() public view returns (IZkmlOracle) {
        return _oracle;
    }

    /// @inheritdoc IZkmlConsumer
    /// @dev Reverts {ZkmlConsumerNotOracle} unless called by {oracle}.
    function onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata outputs) external {
        if (msg.sender != address(_oracle)) revert ZkmlConsumerNotOracle(msg.sender);
        _onInferenceResult(requestId, modelId, outputs);
    }

    /// @notice Handles a verified result: `outputs` are signed fixed-point integers at the
    /// model's output scale (value = output / 2**outputScale), in the circuit's output order.
    function _onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata outputs) internal virtual;
}
