// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {IZkmlJudgeInput} from "../interfaces/IZkmlJudge.sol";
import {FieldEncoding} from "../libraries/FieldEncoding.sol";

/// @title TreasuryProposalInput
/// @notice Example (the smart judge, examples/smart_judge): the judge model's four features
/// (examples/smart_judge/model.py), derived from a proposal's actions instead of described by
/// its proposer:
/// 0. share of the treasury: the Ether the actions send over `treasury`'s balance, as
///    4 * share - 1 (1 % -> -0.96, a quarter -> 0, a half or more -> the cap);
/// 1-3. the recipient's reputation, account age and audit score, standardised, from profiles
///    the owner (the DAO's timelock: a judged proposal itself) records; over several actions,
///    the worst recipient's; an unknown recipient scores the floor on each.
/// Every feature is clamped to [-2, 2] (the model's training range) and encoded at the
/// model's input scale, rounded as the toolkit rounds. Only Ether values are measured: a DAO
/// whose proposals move tokens decodes their transfers here too.
contract TreasuryProposalInput is IZkmlJudgeInput, Ownable {
    /// @notice A recipient's standardised features, in millionths.
    struct Profile {
        int32 reputation;
        int32 age;
        int32 audit;
        bool known;
    }

    /// @notice The most actions a proposal may have here (bounds {inputOf}'s loop).
    uint256 public constant MAX_ACTIONS = 16;
    int256 private constant ONE = 1e6;
    int256 private constant LIMIT = 2e6;

    /// @notice Whose balance the share is taken of (the timelock that executes).
    address public immutable treasury;
    /// @notice The judge model's input scale (felt = round(value * 2**inputScale)).
    uint8 public immutable inputScale;

    mapping(address target => Profile) private _profiles;

    event ProfileSet(address indexed target, int32 reputation, int32 age, int32 audit);

    error TreasuryProposalInputTooManyActions(uint256 count, uint256 max);

    constructor(address treasury_, uint8 inputScale_, address owner_) Ownable(owner_) {
        treasury = treasury_;
        inputScale = inputScale_;
    }

    /// @notice Records `target`'s features (millionths). Owner only. Emits {ProfileSet}.
    function setProfile(address target, int32 reputation, int32 age, int32 audit) external onlyOwner {
        _profiles[target] = Profile(reputation, age, audit, true);
        emit ProfileSet(target, reputation, age, audit);
    }

    /// @notice `target`'s recorded features.
    function profileOf(address target) external view returns (Profile memory) {
        return _profiles[target];
    }

    /// @inheritdoc IZkmlJudgeInput
    function inputOf(address[] calldata targets, uint256[] calldata values, bytes[] calldata)
        external
        view
        returns (uint256[] memory felts)
    {
        uint256 n = targets.length;
        if (n > MAX_ACTIONS) revert TreasuryProposalInputTooManyActions(n, MAX_ACTIONS);
        uint256 total;
        int256[3] memory worst = [LIMIT, LIMIT, LIMIT];
        for (uint256 i = 0; i < n; ++i) {
            total += values[i];
            Profile memory p = _profiles[targets[i]];
            if (!p.known) p = Profile(int32(-LIMIT), int32(-LIMIT), int32(-LIMIT), false);
            if (p.reputation < worst[0]) worst[0] = p.reputation;
            if (p.age < worst[1]) worst[1] = p.age;
            if (p.audit < worst[2]) worst[2] = p.audit;
        }
        uint256 balance = treasury.balance;
        // A share above 3/4 (or of an empty treasury) is at the cap whatever its exact value.
        int256 share = balance == 0 || total >= balance ? ONE : int256(total * uint256(ONE) / balance);
        felts = new uint256[](4);
        felts[0] = _felt(4 * share - ONE);
        for (uint256 j = 0; j < 3; ++j) {
            felts[j + 1] = _felt(worst[j]);
        }
    }

    /// @dev A millionths value, clamped to [-2, 2], as a felt at the input scale, rounded
    /// half away from zero as the toolkit quantizes (zkml_oracle.field.quantize).
    function _felt(int256 millionths) private view returns (uint256) {
        if (millionths > LIMIT) millionths = LIMIT;
        if (millionths < -LIMIT) millionths = -LIMIT;
        int256 twice = 2 * millionths * int256(1 << inputScale);
        int256 rounded = (twice + (twice < 0 ? -ONE : ONE)) / (2 * ONE);
        return FieldEncoding.fromSigned(rounded);
    }
}
