// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Chainlink's aggregator interfaces, with Chainlink's exact signatures
// (smartcontractkit/chainlink, contracts/src/v0.8/shared/interfaces/), declared here so the
// project needs no Chainlink package.

/// @title AggregatorInterface
/// @notice Chainlink's V2 aggregator surface.
interface AggregatorInterface {
    function latestAnswer() external view returns (int256);

    function latestTimestamp() external view returns (uint256);

    function latestRound() external view returns (uint256);

    function getAnswer(uint256 roundId) external view returns (int256);

    function getTimestamp(uint256 roundId) external view returns (uint256);

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);
}

/// @title AggregatorV3Interface
/// @notice Chainlink's V3 aggregator surface.
interface AggregatorV3Interface {
    function decimals() external view returns (uint8);

    function description() external view returns (string memory);

    function version() external view returns (uint256);

    function getRoundData(uint80 _roundId)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

/// @title AggregatorV2V3Interface
/// @notice Both of Chainlink's aggregator surfaces, as its proxies expose them.
interface AggregatorV2V3Interface is AggregatorInterface, AggregatorV3Interface {}
