// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {VerifierCodeScan} from "../libraries/VerifierCodeScan.sol";

/// @title VerifierScanHarness
/// @notice Test-only: `VerifierCodeScan.scan` as an external view (benchmarks/verifier_scan.py
/// runs it over genuine ezkl verifiers and measures its gas).
contract VerifierScanHarness {
    function scan(address target) external view returns (bool solcLayout, uint256 offset, uint8 opcode) {
        return VerifierCodeScan.scan(target);
    }
}
