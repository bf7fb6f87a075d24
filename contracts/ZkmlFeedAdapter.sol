// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {AggregatorV2V3Interface, AggregatorInterface, AggregatorV3Interface} from
    "./interfaces/AggregatorV2V3Interface.sol";
import {IZkmlOracle} from "./interfaces/IZkmlOracle.sol";

/// @title ZkmlFeedAdapter
/// @notice One output of one model's push feed on a {ZkmlOracle}, behind Chainlink's
/// `AggregatorV2V3Interface`, so contracts written for Chainlink price feeds read verified
/// model outputs unchanged.
///
/// How an output becomes an answer: the oracle stores output `outputIndex` of each round as
/// the signed fixed-point integer `q` at the model's output scale `s` (the real value is
/// `q / 2**s`, protocol v1 "Field encoding"). The answer is that value with `decimals`
/// decimal places: `answer = q * 10**decimals / 2**s`, rounded toward zero (exact when
/// `2**s` divides `q * 10**decimals`). Example: s = 13, decimals = 8, q = 4096 (0.5) gives
/// 50_000_000.
///
/// Rounds: `roundId` is the oracle's round (consecutive from 1), `answeredInRound == roundId`,
/// `startedAt == updatedAt` (the block time the verified result was stored; strictly
/// increasing). V3 getters revert for a round that does not exist: in particular a fresh
/// feed (no round yet) makes {latestRoundData} revert with the oracle's
/// `ZkmlOracleNoResult(modelId)`, and {getRoundData} of an unknown round with
/// `ZkmlOracleUnknownRound(modelId, roundId)`. V2 getters follow Chainlink's V2 behaviour:
/// they return 0 where there is no data.
contract ZkmlFeedAdapter is AggregatorV2V3Interface {
    // --- constants ---

    /// @notice The version of this adapter's answer semantics.
    uint256 public constant VERSION = 1;
    /// @notice The most decimals an answer may have (10**76 is the largest power of ten in a word).
    uint8 public constant MAX_DECIMALS = 76;

    // --- immutables ---

    IZkmlOracle private immutable _oracle;
    bytes32 private immutable _modelId;
    uint256 private immutable _outputIndex;
    uint8 private immutable _decimals;
    uint8 private immutable _outputScale;

    // --- state ---

    string private _description;

    // --- errors ---

    /// @notice `outputIndex` is not below the model's `outputCount`.
    error ZkmlFeedAdapterOutputOutOfRange(uint256 outputIndex, uint256 outputCount);
    /// @notice `decimals` is above {MAX_DECIMALS}.
    error ZkmlFeedAdapterInvalidDecimals(uint8 decimals);

    // --- constructor ---

    /// @param oracle_ The oracle holding the push feed.
    /// @param modelId_ The model (must be registered: its output scale is read once, models
    /// never change).
    /// @param outputIndex_ Which of the model's outputs this feed reports (0-based).
    /// @param decimals_ Decimal places of the answers.
    /// @param description_ What the feed reports, e.g. "credit score / 1".
    constructor(
        IZkmlOracle oracle_,
        bytes32 modelId_,
        uint256 outputIndex_,
        uint8 decimals_,
        string memory description_
    ) {
        IZkmlOracle.ModelConfig memory config = oracle_.getModel(modelId_).config;
        if (outputIndex_ >= config.outputCount) {
            revert ZkmlFeedAdapterOutputOutOfRange(outputIndex_, config.outputCount);
        }
        if (decimals_ > MAX_DECIMALS) revert ZkmlFeedAdapterInvalidDecimals(decimals_);
        _oracle = oracle_;
        _modelId = modelId_;
        _outputIndex = outputIndex_;
        _decimals = decimals_;
        _outputScale = config.outputScale;
        _description = description_;
    }

    // --- V3 ---

    /// @inheritdoc AggregatorV3Interface
    function decimals() external view returns (uint8) {
        return _decimals;
    }

    /// @inheritdoc AggregatorV3Interface
    function description() external view returns (string memory) {
        return _description;
    }

    /// @inheritdoc AggregatorV3Interface
    function version() external pure returns (uint256) {
        return VERSION;
    }

    /// @inheritdoc AggregatorV3Interface
    /// @dev Reverts `ZkmlOracleUnknownRound(modelId, roundId)` for a round that does not exist.
    function getRoundData(uint80 _roundId)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return _roundData(_oracle.getResult(_modelId, _roundId));
    }

    /// @inheritdoc AggregatorV3Interface
    /// @dev Reverts `ZkmlOracleNoResult(modelId)` while the feed has no round.
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return _roundData(_oracle.latestResult(_modelId));
    }

    // --- V2 ---

    /// @inheritdoc AggregatorInterface
    /// @dev 0 while the feed has no round.
    function latestAnswer() external view returns (int256) {
        (bool found, IZkmlOracle.Result memory result) = _latest();
        return found ? toAnswer(result.outputs[_outputIndex]) : int256(0);
    }

    /// @inheritdoc AggregatorInterface
    /// @dev 0 while the feed has no round.
    function latestTimestamp() external view returns (uint256) {
        (, IZkmlOracle.Result memory result) = _latest();
        return result.updatedAt;
    }

    /// @inheritdoc AggregatorInterface
    /// @dev 0 while the feed has no round.
    function latestRound() external view returns (uint256) {
        (, IZkmlOracle.Result memory result) = _latest();
        return result.round;
    }

    /// @inheritdoc AggregatorInterface
    /// @dev 0 for a round that does not exist.
    function getAnswer(uint256 roundId) external view returns (int256) {
        if (!_exists(roundId)) return 0;
        return toAnswer(_oracle.getResult(_modelId, uint80(roundId)).outputs[_outputIndex]);
    }

    /// @inheritdoc AggregatorInterface
    /// @dev 0 for a round that does not exist.
    function getTimestamp(uint256 roundId) external view returns (uint256) {
        if (!_exists(roundId)) return 0;
        return _oracle.getResult(_modelId, uint80(roundId)).updatedAt;
    }

    // --- this feed ---

    /// @notice The oracle holding the push feed.
    function oracle() external view returns (IZkmlOracle) {
        return _oracle;
    }

    /// @notice The model whose output this feed reports.
    function modelId() external view returns (bytes32) {
        return _modelId;
    }

    /// @notice Which of the model's outputs this feed reports (0-based).
    function outputIndex() external view returns (uint256) {
        return _outputIndex;
    }

    /// @notice The model's output scale: a raw output `q` stands for `q / 2**outputScale`.
    function outputScale() external view returns (uint8) {
        return _outputScale;
    }

    /// @notice A raw model output (fixed point at {outputScale}) as an answer with
    /// {decimals} decimal places, rounded toward zero.
    /// @dev Reverts (SafeCast) only if the answer does not fit an int256.
    function toAnswer(int256 output) public view returns (int256) {
        uint256 magnitude = output < 0 ? uint256(-output) : uint256(output);
        uint256 scaled = Math.mulDiv(magnitude, 10 ** uint256(_decimals), uint256(1) << _outputScale);
        int256 answer = SafeCast.toInt256(scaled);
        return output < 0 ? -answer : answer;
    }

    // --- internal ---

    function _roundData(IZkmlOracle.Result memory result)
        private
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        roundId = result.round;
        answer = toAnswer(result.outputs[_outputIndex]);
        startedAt = result.updatedAt;
        updatedAt = result.updatedAt;
        answeredInRound = result.round;
    }

    /// @dev The latest round, or (false, zeroes) while the feed is fresh; any other revert of
    /// the oracle is passed on.
    function _latest() private view returns (bool found, IZkmlOracle.Result memory result) {
        try _oracle.latestResult(_modelId) returns (IZkmlOracle.Result memory latest) {
            return (true, latest);
        } catch (bytes memory reason) {
            if (reason.length < 4 || bytes4(reason) != IZkmlOracle.ZkmlOracleNoResult.selector) {
                assembly ("memory-safe") {
                    revert(add(reason, 0x20), mload(reason))
                }
            }
        }
    }

    function _exists(uint256 roundId) private view returns (bool) {
        if (roundId == 0 || roundId > type(uint80).max) return false;
        (, IZkmlOracle.Result memory result) = _latest();
        return roundId <= result.round;
    }
}
