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
/// 50_000_000. An output whose answer would not fit an int256 saturates to
/// `type(int256).max` (or `-type(int256).max`): a valid but huge output never makes a view
/// revert, for this round or for ever; consumers bound the answers they accept
/// (`FraudGuard`'s `[minAnswer, maxAnswer]`) and so treat a saturated one as a broken feed.
///
/// A feed answers one question when bound to an input (`inputHash_` not zero: keccak256 of
/// the input felts, as `IZkmlOracle.resultOf` takes it): its latest round is the latest
/// round that answered that input, and any other round is unknown to it (V3 getters revert
/// `ZkmlFeedAdapterRoundNotForInput`, V2 ones return 0). Unbound, it reports the model's
/// latest round whatever its input.
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

    bytes32 private immutable _inputHash;
    /// @dev The largest output magnitude whose answer fits an int256 (saturation above it).
    uint256 private immutable _maxMagnitude;

    // --- state ---

    string private _description;

    // --- errors ---

    /// @notice `outputIndex` is not below the model's `outputCount`.
    error ZkmlFeedAdapterOutputOutOfRange(uint256 outputIndex, uint256 outputCount);
    /// @notice `decimals` is above {MAX_DECIMALS}.
    error ZkmlFeedAdapterInvalidDecimals(uint8 decimals);
    /// @notice Round `roundId` does not answer this bound feed's input.
    error ZkmlFeedAdapterRoundNotForInput(uint80 roundId, bytes32 inputHash);

    // --- constructor ---

    /// @param oracle_ The oracle holding the push feed.
    /// @param modelId_ The model (must be registered: its output scale is read once, models
    /// never change).
    /// @param outputIndex_ Which of the model's outputs this feed reports (0-based).
    /// @param decimals_ Decimal places of the answers.
    /// @param description_ What the feed reports, e.g. "credit score / 1".
    /// @param inputHash_ The input this feed answers (zero: the model's latest round, any input).
    constructor(
        IZkmlOracle oracle_,
        bytes32 modelId_,
        uint256 outputIndex_,
        uint8 decimals_,
        string memory description_,
        bytes32 inputHash_
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
        _inputHash = inputHash_;
        // |answer| = m * 10**d / 2**s <= int256.max iff m <= int256.max * 2**s / 10**d; when
        // 2**s >= 10**d every output (< 2**254) fits, and the bound below cannot overflow.
        uint256 unit = uint256(1) << config.outputScale;
        uint256 ten = 10 ** uint256(decimals_);
        _maxMagnitude = unit >= ten ? type(uint256).max : Math.mulDiv(uint256(type(int256).max), unit, ten);
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
    /// @dev Reverts `ZkmlOracleUnknownRound(modelId, roundId)` for a round that does not exist,
    /// and, bound to an input, {ZkmlFeedAdapterRoundNotForInput} for a round that is not that
    /// input's latest.
    function getRoundData(uint80 _roundId)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        if (_inputHash == bytes32(0)) return _roundData(_oracle.getResult(_modelId, _roundId));
        IZkmlOracle.Result memory result = _oracle.resultOf(_modelId, _inputHash);
        if (result.round != _roundId) revert ZkmlFeedAdapterRoundNotForInput(_roundId, _inputHash);
        return _roundData(result);
    }

    /// @inheritdoc AggregatorV3Interface
    /// @dev Reverts `ZkmlOracleNoResult(modelId)` while the feed (or, bound, its input) has no round.
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return _roundData(_latestResult());
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
        (bool found, IZkmlOracle.Result memory result) = _round(roundId);
        return found ? toAnswer(result.outputs[_outputIndex]) : int256(0);
    }

    /// @inheritdoc AggregatorInterface
    /// @dev 0 for a round that does not exist.
    function getTimestamp(uint256 roundId) external view returns (uint256) {
        (, IZkmlOracle.Result memory result) = _round(roundId);
        return result.updatedAt;
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

    /// @notice The input this feed answers (zero: unbound, the model's latest round).
    function inputHash() external view returns (bytes32) {
        return _inputHash;
    }

    /// @notice The model's output scale: a raw output `q` stands for `q / 2**outputScale`.
    function outputScale() external view returns (uint8) {
        return _outputScale;
    }

    /// @notice A raw model output (fixed point at {outputScale}) as an answer with
    /// {decimals} decimal places, rounded toward zero; saturated to +-`type(int256).max`
    /// when it does not fit an int256. Never reverts.
    function toAnswer(int256 output) public view returns (int256) {
        uint256 magnitude = output < 0 ? uint256(-(output + 1)) + 1 : uint256(output);
        int256 answer = magnitude > _maxMagnitude
            ? type(int256).max
            : SafeCast.toInt256(Math.mulDiv(magnitude, 10 ** uint256(_decimals), uint256(1) << _outputScale));
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

    /// @dev The latest round, of the model or (bound) of the input.
    function _latestResult() private view returns (IZkmlOracle.Result memory) {
        return _inputHash == bytes32(0) ? _oracle.latestResult(_modelId) : _oracle.resultOf(_modelId, _inputHash);
    }

    /// @dev The latest round, or (false, zeroes) while the feed is fresh; any other revert of
    /// the oracle is passed on.
    function _latest() private view returns (bool found, IZkmlOracle.Result memory result) {
        if (_inputHash == bytes32(0)) {
            try _oracle.latestResult(_modelId) returns (IZkmlOracle.Result memory latest) {
                return (true, latest);
            } catch (bytes memory reason) {
                _passOnUnlessNoResult(reason);
            }
        } else {
            try _oracle.resultOf(_modelId, _inputHash) returns (IZkmlOracle.Result memory latest) {
                return (true, latest);
            } catch (bytes memory reason) {
                _passOnUnlessNoResult(reason);
            }
        }
    }

    function _passOnUnlessNoResult(bytes memory reason) private pure {
        if (reason.length < 4 || bytes4(reason) != IZkmlOracle.ZkmlOracleNoResult.selector) {
            assembly ("memory-safe") {
                revert(add(reason, 0x20), mload(reason))
            }
        }
    }

    /// @dev Round `roundId` as V2 getters see it: (false, zeroes) when it does not exist or,
    /// bound, does not answer the input.
    function _round(uint256 roundId) private view returns (bool found, IZkmlOracle.Result memory result) {
        if (roundId == 0 || roundId > type(uint80).max) return (false, result);
        (bool any, IZkmlOracle.Result memory latest) = _latest();
        if (!any || roundId > latest.round) return (false, result);
        if (_inputHash != bytes32(0)) return roundId == latest.round ? (true, latest) : (false, result);
        return (true, _oracle.getResult(_modelId, uint80(roundId)));
    }
}
