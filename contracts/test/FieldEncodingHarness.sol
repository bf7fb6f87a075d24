// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {FieldEncoding} from "../libraries/FieldEncoding.sol";

/// @title FieldEncodingHarness
/// @notice Test-only: exposes {FieldEncoding} so the Python side can check it on a chain.
contract FieldEncodingHarness {
    /// @notice r, as the library sees it.
    function fieldModulus() external pure returns (uint256) {
        return FieldEncoding.FIELD_MODULUS;
    }

    /// @notice {FieldEncoding-isFelt}.
    function isFelt(uint256 value) external pure returns (bool) {
        return FieldEncoding.isFelt(value);
    }

    /// @notice {FieldEncoding-toSigned}.
    function toSigned(uint256 felt) external pure returns (int256) {
        return FieldEncoding.toSigned(felt);
    }

    /// @notice {FieldEncoding-toSignedArray}.
    function toSignedArray(uint256[] calldata felts) external pure returns (int256[] memory) {
        return FieldEncoding.toSignedArray(felts);
    }

    /// @notice {FieldEncoding-fromSigned}.
    function fromSigned(int256 value) external pure returns (uint256) {
        return FieldEncoding.fromSigned(value);
    }
}
