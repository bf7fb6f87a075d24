// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {AggregatorV3Interface} from "../interfaces/AggregatorV2V3Interface.sol";

/// @title FraudGuard
/// @notice Example (fraud detection): a circuit breaker that a token or treasury calls before
/// moving funds. It reads a fraud model's verified score from a push feed through a
/// `ZkmlFeedAdapter` (Chainlink's `AggregatorV3Interface`), exactly as an audited Chainlink
/// price consumer reads a price, and blocks transfers while the score is above a threshold.
///
/// Reading the feed ({fraudScore}), every check of a careful Chainlink consumer:
/// - `latestRoundData()` only (never the deprecated V2 `latestAnswer`); a feed that has no
///   round yet reverts there, and the guard lets that revert through (fail closed);
/// - `updatedAt == 0` or in the future: incomplete round ({FraudGuardIncompleteRound});
/// - `answeredInRound < roundId`: stale round ({FraudGuardIncompleteRound});
/// - `block.timestamp - updatedAt > maxAge`: stale answer ({FraudGuardStaleAnswer});
/// - an answer outside `[minAnswer, maxAnswer]` is treated as broken
///   ({FraudGuardAnswerOutOfBounds}). Chainlink's docs treat `answer <= 0` as broken for
///   prices; a model score is a signed real (`ZkmlFeedAdapter`: answer = output * 10**decimals
///   / 2**scale), so the guard takes the sane range as a documented, immutable mapping:
///   `minAnswer = 1` gives Chainlink's rule, a negative `minAnswer` accepts signed scores.
///
/// The score is the model output the adapter reports, at the adapter's decimals (for the
/// bundled example model: output 0, "fraud logit"). A transfer is blocked when
/// `score > maxScore`.
contract FraudGuard is Ownable {
    // --- immutables ---

    AggregatorV3Interface private immutable _feed;
    int256 private immutable _minAnswer;
    int256 private immutable _maxAnswer;

    // --- state ---

    int256 private _maxScore;
    uint256 private _maxAge;

    // --- events ---

    /// @notice The score above which transfers are blocked changed.
    event MaxScoreSet(int256 previous, int256 current);
    /// @notice The oldest answer (in seconds) the guard accepts changed.
    event MaxAgeSet(uint256 previous, uint256 current);

    // --- errors ---

    /// @notice The feed's latest verified fraud score is above the threshold.
    error FraudGuardTransferBlocked(address from, address to, uint256 amount, int256 score, int256 maxScore);
    /// @notice The latest answer is older than {maxAge}.
    error FraudGuardStaleAnswer(uint256 updatedAt, uint256 maxAge);
    /// @notice The latest round is incomplete (`updatedAt` zero or in the future) or was
    /// answered in an earlier round.
    error FraudGuardIncompleteRound(uint80 roundId, uint80 answeredInRound, uint256 updatedAt);
    /// @notice The answer is outside the sane range: the feed is treated as broken.
    error FraudGuardAnswerOutOfBounds(int256 answer, int256 minAnswer, int256 maxAnswer);
    /// @notice A constructor or setter argument is unusable.
    error FraudGuardInvalidConfig(string reason);

    // --- constructor ---

    /// @param feed_ The fraud score feed (a `ZkmlFeedAdapter`, or any Chainlink V3 feed).
    /// @param maxScore_ Transfers are blocked while the score is above this (feed decimals).
    /// @param maxAge_ The oldest answer accepted, in seconds (the feed's heartbeat, plus margin).
    /// @param minAnswer_ The smallest sane answer (1 = Chainlink's "answer <= 0 is broken").
    /// @param maxAnswer_ The largest sane answer.
    /// @param owner_ May change {maxScore} and {maxAge}.
    constructor(
        AggregatorV3Interface feed_,
        int256 maxScore_,
        uint256 maxAge_,
        int256 minAnswer_,
        int256 maxAnswer_,
        address owner_
    ) Ownable(owner_) {
        if (address(feed_) == address(0)) revert FraudGuardInvalidConfig("feed is zero");
        if (minAnswer_ > maxAnswer_) revert FraudGuardInvalidConfig("minAnswer > maxAnswer");
        if (maxAge_ == 0) revert FraudGuardInvalidConfig("maxAge is zero");
        _feed = feed_;
        _minAnswer = minAnswer_;
        _maxAnswer = maxAnswer_;
        _maxScore = maxScore_;
        _maxAge = maxAge_;
        emit MaxScoreSet(0, maxScore_);
        emit MaxAgeSet(0, maxAge_);
    }

    // --- the guard ---

    /// @notice Reverts {FraudGuardTransferBlocked} if the latest verified fraud score is above
    /// {maxScore}, and with the feed's error if the score cannot be trusted (see {fraudScore}).
    /// Call it before moving funds; the arguments only label the refusal.
    /// @param from Who the funds leave.
    /// @param to Who would receive them.
    /// @param amount How much would move.
    /// @return score The verified score the decision was taken on (feed decimals).
    function checkTransfer(address from, address to, uint256 amount) external view returns (int256 score) {
        (score,) = fraudScore();
        int256 maxScore_ = _maxScore;
        if (score > maxScore_) revert FraudGuardTransferBlocked(from, to, amount, score, maxScore_);
    }

    /// @notice The latest verified fraud score, after every check of a careful Chainlink
    /// consumer (see the contract's documentation); reverts rather than return a score it
    /// cannot trust.
    /// @return score The answer, at the feed's decimals.
    /// @return updatedAt When the verified result was stored.
    function fraudScore() public view returns (int256 score, uint256 updatedAt) {
        (uint80 roundId, int256 answer,, uint256 updated, uint80 answeredInRound) = _feed.latestRoundData();
        if (updated == 0 || updated > block.timestamp || answeredInRound < roundId) {
            revert FraudGuardIncompleteRound(roundId, answeredInRound, updated);
        }
        uint256 maxAge_ = _maxAge;
        if (block.timestamp - updated > maxAge_) revert FraudGuardStaleAnswer(updated, maxAge_);
        if (answer < _minAnswer || answer > _maxAnswer) {
            revert FraudGuardAnswerOutOfBounds(answer, _minAnswer, _maxAnswer);
        }
        return (answer, updated);
    }

    // --- configuration (owner) ---

    /// @notice Sets the score above which transfers are blocked. Emits {MaxScoreSet}.
    /// @param maxScore_ The new threshold, at the feed's decimals.
    function setMaxScore(int256 maxScore_) external onlyOwner {
        emit MaxScoreSet(_maxScore, maxScore_);
        _maxScore = maxScore_;
    }

    /// @notice Sets the oldest answer accepted, in seconds. Emits {MaxAgeSet}.
    /// @param maxAge_ The new maximum age; not zero.
    function setMaxAge(uint256 maxAge_) external onlyOwner {
        if (maxAge_ == 0) revert FraudGuardInvalidConfig("maxAge is zero");
        emit MaxAgeSet(_maxAge, maxAge_);
        _maxAge = maxAge_;
    }

    // --- views ---

    /// @notice The fraud score feed.
    function feed() external view returns (AggregatorV3Interface) {
        return _feed;
    }

    /// @notice Transfers are blocked while the score is above this (feed decimals).
    function maxScore() external view returns (int256) {
        return _maxScore;
    }

    /// @notice The oldest answer accepted, in seconds.
    function maxAge() external view returns (uint256) {
        return _maxAge;
    }

    /// @notice The sane answer range; answers outside it are treated as a broken feed.
    function answerBounds() external view returns (int256 minAnswer, int256 maxAnswer) {
        return (_minAnswer, _maxAnswer);
    }
}

/// @title GuardedTreasury
/// @notice Example: an Ether treasury whose every payment is screened by a {FraudGuard}
/// first. While the guard refuses (score too high, stale or broken feed) no payment leaves.
contract GuardedTreasury is Ownable, ReentrancyGuard {
    FraudGuard private immutable _guard;

    /// @notice Ether arrived.
    event Deposited(address indexed from, uint256 amount);
    /// @notice A payment passed the guard and was sent.
    event Paid(address indexed to, uint256 amount, int256 score);

    /// @notice Sending Ether to `to` failed.
    error GuardedTreasuryTransferFailed(address to, uint256 amount);

    /// @param guard_ The fraud guard consulted before every payment.
    /// @param owner_ May make payments.
    constructor(FraudGuard guard_, address owner_) Ownable(owner_) {
        _guard = guard_;
    }

    /// @notice Accepts Ether. Emits {Deposited}.
    receive() external payable {
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Pays `amount` wei to `to` if the guard lets it through (its refusal is passed
    /// on unchanged). Emits {Paid}.
    /// @param to The recipient.
    /// @param amount How much to send, in wei.
    function pay(address payable to, uint256 amount) external onlyOwner nonReentrant {
        int256 score = _guard.checkTransfer(address(this), to, amount);
        emit Paid(to, amount, score);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert GuardedTreasuryTransferFailed(to, amount);
    }

    /// @notice The fraud guard consulted before every payment.
    function guard() external view returns (FraudGuard) {
        return _guard;
    }
}
