// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title IZkmlVerifier
/// @notice The surface of ezkl's standalone Halo2 verifier, as the oracle calls it.
/// @dev ezkl's verifier reverts (with empty data) on an invalid proof rather than returning
/// false; callers must treat a revert, a false, and malformed return data alike.
interface IZkmlVerifier {
    /// @notice Checks `proof` against the public `instances`.
    /// @return True when the proof is valid (invalid proofs usually revert instead).
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external returns (bool);
}
