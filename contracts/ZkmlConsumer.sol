// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {IZkmlConsumer} from "./interfaces/IZkmlConsumer.sol";
import {IZkmlOracle} from "./interfaces/IZkmlOracle.sol";

/// @title ZkmlConsumer
/// @notice Base for contracts that receive verified inferences from a {ZkmlOracle}: only the
/// oracle may deliver a result, and only for a request this contract made itself (anyone may
/// name any contract as a request's callback, with any input: a stranger's request is
/// refused with {ZkmlConsumerForeignRequest} before it reaches the consumer's logic, and the
/// oracle records that as `CallbackFailed`), unless {_acceptsRequester} is overridden for a
/// requester-bound model. Implement {_onInferenceResult}; keep it within
/// the gas limit
/// you pass to `requestInference` (a revert or out-of-gas there is recorded by the oracle as
/// `CallbackFailed` and the result is not delivered again).
abstract contract ZkmlConsumer is IZkmlConsumer {
    IZkmlOracle private immutable _oracle;

    /// @notice `caller` is not the oracle this consumer trusts.
    error ZkmlConsumerNotOracle(address caller);
    /// @notice Request `requestId` was made by `requester`, not by this consumer.
    error ZkmlConsumerForeignRequest(uint256 requestId, address requester);

    /// @param oracle_ The oracle whose callbacks this consumer accepts.
    constructor(IZkmlOracle oracle_) {
        _oracle = oracle_;
    }

    /// @notice The oracle whose callbacks this consumer accepts.
    function oracle() public view returns (IZkmlOracle) {
        return _oracle;
    }

    /// @inheritdoc IZkmlConsumer
    /// @dev Reverts {ZkmlConsumerNotOracle} unless called by {oracle}, and
    /// {ZkmlConsumerForeignRequest} unless {_acceptsRequester} accepts the request's requester.
    function onInferenceResult(uint256 requestId, bytes32 modelId, address requester, int256[] calldata outputs)
        external
    {
        if (msg.sender != address(_oracle)) revert ZkmlConsumerNotOracle(msg.sender);
        if (!_acceptsRequester(requester, modelId)) revert ZkmlConsumerForeignRequest(requestId, requester);
        _onInferenceResult(requestId, modelId, outputs);
    }

    /// @notice Whether this consumer acts on a request of model `modelId` made by `requester`:
    /// by default only on its own (anyone may name any contract as a callback, with any
    /// input). Override only for a model whose input the oracle binds to its requester (a
    /// requester-bound private input, `ZkmlOracleRequesterMismatch`), where the logic acts on
    /// that requester itself, and only for that model.
    function _acceptsRequester(address requester, bytes32 /* modelId */ ) internal view virtual returns (bool) {
        return requester == address(this);
    }

    /// @notice Cancels `request` at the oracle if it is still pending there (its deadline
    /// passed or its model was deactivated; the oracle's refusal is passed on otherwise) and
    /// brings its fee back into this contract: the contract must accept Ether from the
    /// oracle. Returns the refund (0 if the request was already answered or cancelled), for
    /// the caller to return to whoever paid it.
    /// @dev `request` holds the fields of the oracle's `InferenceRequested` (the oracle
    /// stores only their commitment and refuses other fields); the caller checks that
    /// `request.id` is the request it means. This contract must be the request's requester
    /// and its refund address (what `requestInference` makes it). Withdraws everything the
    /// oracle credits this contract: a consumer that makes requests and never fulfils any is
    /// only ever credited refunds, each withdrawn at once.
    function _cancelRequest(IZkmlOracle.Request calldata request) internal returns (uint256 refund) {
        IZkmlOracle oracle_ = _oracle;
        if (oracle_.requestStatus(request.id) != IZkmlOracle.RequestStatus.Pending) return 0;
        oracle_.cancel(request);
        refund = request.fee;
        if (refund != 0) oracle_.withdraw();
    }

    /// @notice The requester of the request whose result {_onInferenceResult} is handling
    /// (read from the oracle's call: only meaningful inside {_onInferenceResult}).
    function _callbackRequester() internal pure returns (address requester) {
        // onInferenceResult(uint256 requestId, bytes32 modelId, address requester, ...):
        // the requester is the third head word, after the selector.
        requester = abi.decode(msg.data[68:100], (address));
    }

    /// @notice Handles a verified result: `outputs` are signed fixed-point integers at the
    /// model's output scale (value = output / 2**outputScale), in the circuit's output order.
    function _onInferenceResult(uint256 requestId, bytes32 modelId, int256[] calldata outputs) internal virtual;
}
