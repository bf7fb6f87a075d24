// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title RepointableVerifier
/// @notice Test-only: the smallest upgradeable proxy (its implementation in storage, every
/// call delegated to it), as an attacker would register it as a model's verifier and later
/// re-point it to a verifier that accepts anything.
contract RepointableVerifier {
    address public implementation;

    constructor(address implementation_) {
        implementation = implementation_;
    }

    function upgradeTo(address implementation_) external {
        implementation = implementation_;
    }

    fallback() external {
        address impl = implementation;
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), impl, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }
}
