// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {IZkmlOracle} from "../interfaces/IZkmlOracle.sol";
import {ZkmlConsumer} from "../ZkmlConsumer.sol";

/// @title TestConsumer
/// @notice Test-only consumer: records what it receives, or misbehaves on purpose (reverts,
/// burns all its gas, re-enters the oracle's `fulfill`, `requestInference` or `cancel`).
contract TestConsumer is ZkmlConsumer {
    enum Mode {
        Record,
        Revert,
        RevertLong,
        BurnGas,
        Reenter,
        ReenterRequest,
        ReenterCancel
    }

    /// @notice What {Mode-Revert} reverts with.
    error TestConsumerRefused(uint256 requestId, int256 firstOutput);

    Mode private _mode;
    uint256 private _calls;
    uint256 private _lastRequestId;
    bytes32 private _lastModelId;
    int256[] private _lastOutputs;

    constructor(IZkmlOracle oracle_) ZkmlConsumer(oracle_) {}

    /// @notice Chooses how the next callbacks behave.
    function setMode(Mode mode) external {
        _mode = mode;
    }

    /// @notice Asks the oracle for an inference with this contract as the callback.
    function request(bytes32 modelId, uint256[] calldata inputFelts, uint32 gasLimit, uint64 deadline)
        external
        payable
        returns (uint256)
    {
        return oracle().requestInference{value: msg.value}(modelId, inputFelts, address(this), gasLimit, deadline);
    }

    /// @notice (calls, last request id, last model id, last outputs)
    function last() external view returns (uint256, uint256, bytes32, int256[] memory) {
        return (_calls, _lastRequestId, _lastModelId, _lastOutputs);
    }

    function _onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata outputs) internal override {
        Mode mode = _mode;
        if (mode == Mode.Revert) revert TestConsumerRefused(requestId, outputs[0]);
        if (mode == Mode.RevertLong) revert(string(new bytes(1000)));
        if (mode == Mode.BurnGas) {
            uint256 i;
            while (true) {
                _lastRequestId = ++i;
            }
        }
        if (mode == Mode.Reenter) {
            // Bubbles the oracle's refusal up: the oracle records it as CallbackFailed.
            IZkmlOracle.Request memory request;
            request.id = requestId;
            oracle().fulfill(request, "", new uint256[](0));
        }
        if (mode == Mode.ReenterRequest) {
            // No input: only the reentrancy check, made first, refuses this as re-entry.
            oracle().requestInference(modelId, new uint256[](0), address(0), 0, uint64(block.timestamp + 1));
        }
        if (mode == Mode.ReenterCancel) {
            IZkmlOracle.Request memory request;
            request.id = requestId;
            oracle().cancel(request);
        }
        _calls += 1;
        _lastRequestId = requestId;
        _lastModelId = modelId;
        _lastOutputs = outputs;
    }
}
