// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title IZkmlConsumer
/// @notice Implemented by contracts that request inferences and receive verified results.
interface IZkmlConsumer {
    /// @notice Called by the oracle once, after the proof of `requestId` was verified and all
    /// oracle state was written. Runs with the gas limit the requester chose; a revert here
    /// never undoes the fulfilment.
    /// @param requestId The request being answered.
    /// @param modelId The model that produced `outputs`.
    /// @param requester Who made the request (anyone may name any consumer as callback: a
    /// consumer acts only on requests it made, or that it trusts the requester of).
    /// @param outputs The proven outputs as signed fixed-point integers at the model's
    /// output scale (value = output / 2**scale), in the circuit's output order.
    function onInferenceResult(uint256 requestId, bytes32 modelId, address requester, int256[] calldata outputs)
        external;
}
