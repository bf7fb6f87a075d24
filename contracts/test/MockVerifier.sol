// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title MockVerifier
/// @notice Test-only stand-in for a verifier that answers in the ways a real one might not:
/// true, false, a revert with data, or return data shorter than a word.
contract MockVerifier {
    enum Answer {
        True,
        False,
        RevertWithData,
        Short
    }

    Answer private _answer;

    function setAnswer(Answer answer) external {
        _answer = answer;
    }

    function verifyProof(bytes calldata, uint256[] calldata) external view returns (bool) {
        Answer answer = _answer;
        if (answer == Answer.False) return false;
        if (answer == Answer.RevertWithData) revert("no");
        if (answer == Answer.Short) {
            assembly {
                mstore(0, 1)
                return(31, 1)
            }
        }
        return true;
    }
}
