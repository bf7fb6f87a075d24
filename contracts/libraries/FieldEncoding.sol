// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title FieldEncoding
/// @notice Signed fixed-point integers <-> BN254 scalar-field elements (protocol v1, "Field
/// encoding"). A real value v at scale s is q = round(v * 2**s); its felt is q mod r. A felt
/// above (r - 1) / 2 stands for the negative q = felt - r. The Python twin is
/// `zkml_oracle.field` (`int_to_felt`, `felt_to_int`); both are tested against each other.
library FieldEncoding {
    /// @notice r, the order of BN254's scalar field.
    uint256 internal constant FIELD_MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice (r - 1) / 2: the largest magnitude a signed integer may have in a felt.
    uint256 internal constant MAX_SIGNED = (FIELD_MODULUS - 1) / 2;

    /// @notice `felt` is not a field element (it is >= r).
    error FieldEncodingNotAFelt(uint256 felt);
    /// @notice `value` is outside the signed range of the field (|value| > (r - 1) / 2).
    error FieldEncodingOutOfRange(int256 value);

    /// @notice Whether `value` is a field element (value < r).
    function isFelt(uint256 value) internal pure returns (bool) {
        return value < FIELD_MODULUS;
    }

    /// @notice The signed integer a felt stands for: felt if felt <= (r-1)/2, else felt - r.
    /// @dev Reverts with {FieldEncodingNotAFelt} when `felt` >= r.
    function toSigned(uint256 felt) internal pure returns (int256) {
        if (felt >= FIELD_MODULUS) revert FieldEncodingNotAFelt(felt);
        // Both branches fit: felt <= MAX_SIGNED < 2**255, and felt - r lies in [-(r-1)/2, -1].
        unchecked {
            return felt > MAX_SIGNED ? int256(felt) - int256(FIELD_MODULUS) : int256(felt);
        }
    }

    /// @notice {toSigned} of every felt of `felts`, in order.
    /// @dev Reverts with {FieldEncodingNotAFelt} at the first value >= r. The loop is in
    /// assembly: the oracle decodes every output of every proof with it.
    function toSignedArray(uint256[] calldata felts) internal pure returns (int256[] memory values) {
        uint256 r = FIELD_MODULUS;
        uint256 n = felts.length;
        uint256 bad = n; // the index of the first non-felt; n: none
        assembly ("memory-safe") {
            let half := shr(1, sub(r, 1)) // MAX_SIGNED
            values := mload(0x40)
            mstore(values, n)
            let dst := add(values, 0x20)
            mstore(0x40, add(dst, shl(5, n)))
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                let felt := calldataload(add(felts.offset, shl(5, i)))
                if iszero(lt(felt, r)) {
                    bad := i
                    break
                }
                // Above (r - 1) / 2: felt - r, which wraps to the negative int256.
                mstore(add(dst, shl(5, i)), sub(felt, mul(gt(felt, half), r)))
            }
        }
        if (bad != n) revert FieldEncodingNotAFelt(felts[bad]);
    }

    /// @notice The felt of a signed integer with |value| <= (r - 1) / 2 (value mod r).
    /// @dev Reverts with {FieldEncodingOutOfRange} outside that range.
    function fromSigned(int256 value) internal pure returns (uint256) {
        if (value >= 0) {
            if (uint256(value) > MAX_SIGNED) revert FieldEncodingOutOfRange(value);
            return uint256(value);
        }
        // -value cannot overflow here once type(int256).min is excluded by the range check.
        if (value < -int256(MAX_SIGNED)) revert FieldEncodingOutOfRange(value);
        unchecked {
            return FIELD_MODULUS - uint256(-value);
        }
    }
}
