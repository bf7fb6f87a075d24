// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title MockVerifier
/// @notice Test-only stand-in for a verifier that answers in the ways a real one might not.
/// Stateless, as the oracle requires of a verifier: a one-byte proof picks the answer (1:
/// false, 2: a revert with data, 3: return data shorter than a word); any other proof is
/// accepted.
contract MockVerifier {
    function verifyProof(bytes calldata proof, uint256[] calldata) external pure returns (bool) {
        uint8 answer = proof.length == 1 ? uint8(proof[0]) : 0;
        if (answer == 1) return false;
        if (answer == 2) revert("no");
        if (answer == 3) {
            assembly {
                mstore(0, 1)
                return(31, 1)
            }
        }
        return true;
    }
}
