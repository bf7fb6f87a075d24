// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

import {IZkmlJudge} from "../interfaces/IZkmlJudge.sol";

/// @title ZkmlJudgedTimelock
/// @notice OpenZeppelin's {TimelockController} that schedules and executes an operation only
/// when a {IZkmlJudge} has a final Favourable ruling on exactly its actions: the case's
/// subject is keccak256(abi.encode(targets, values, payloads)), so a ruling on other actions
/// (another proposal, or the same one described otherwise) cannot be used. Put it behind a
/// Governor with `GovernorTimelockControl`: `queue` then needs the ruling, and so does
/// `execute`. Every operation is guarded, the timelock's own settings included (a DAO
/// replaces its judge by a proposal the judge rules on).
contract ZkmlJudgedTimelock is TimelockController {
    /// @notice The judge whose rulings gate every operation.
    IZkmlJudge public immutable judge;

    /// @notice The judge has no final Favourable ruling on the actions hashing to `subject`.
    error ZkmlJudgedTimelockNoFavourableRuling(bytes32 subject);

    /// @param judge_ The judge (its policy is fixed: a new policy is a new judge).
    /// @param minDelay, proposers, executors, admin As {TimelockController}.
    constructor(IZkmlJudge judge_, uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {
        judge = judge_;
    }

    /// @inheritdoc TimelockController
    /// @dev Reverts {ZkmlJudgedTimelockNoFavourableRuling} without the judge's ruling.
    function schedule(address target, uint256 value, bytes calldata data, bytes32 predecessor, bytes32 salt, uint256 delay)
        public
        virtual
        override
    {
        _requireRuling(_single(target, value, data));
        super.schedule(target, value, data, predecessor, salt, delay);
    }

    /// @inheritdoc TimelockController
    /// @dev Reverts {ZkmlJudgedTimelockNoFavourableRuling} without the judge's ruling.
    function scheduleBatch(
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata payloads,
        bytes32 predecessor,
        bytes32 salt,
        uint256 delay
    ) public virtual override {
        _requireRuling(keccak256(abi.encode(targets, values, payloads)));
        super.scheduleBatch(targets, values, payloads, predecessor, salt, delay);
    }

    /// @inheritdoc TimelockController
    /// @dev Reverts {ZkmlJudgedTimelockNoFavourableRuling} without the judge's ruling.
    function execute(address target, uint256 value, bytes calldata payload, bytes32 predecessor, bytes32 salt)
        public
        payable
        virtual
        override
    {
        _requireRuling(_single(target, value, payload));
        super.execute(target, value, payload, predecessor, salt);
    }

    /// @inheritdoc TimelockController
    /// @dev Reverts {ZkmlJudgedTimelockNoFavourableRuling} without the judge's ruling.
    function executeBatch(
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata payloads,
        bytes32 predecessor,
        bytes32 salt
    ) public payable virtual override {
        _requireRuling(keccak256(abi.encode(targets, values, payloads)));
        super.executeBatch(targets, values, payloads, predecessor, salt);
    }

    function _requireRuling(bytes32 subject) private view {
        if (!judge.isFavourable(subject)) revert ZkmlJudgedTimelockNoFavourableRuling(subject);
    }

    /// @dev A single operation's subject: the same encoding as a batch of one.
    function _single(address target, uint256 value, bytes calldata data) private pure returns (bytes32) {
        address[] memory targets = new address[](1);
        uint256[] memory values = new uint256[](1);
        bytes[] memory payloads = new bytes[](1);
        targets[0] = target;
        values[0] = value;
        payloads[0] = data;
        return keccak256(abi.encode(targets, values, payloads));
    }
}
