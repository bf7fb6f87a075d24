// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title VerifierCodeScan
/// @notice Whether a verifier's code can only ever compute a function of its calldata: no
/// storage, no calls out but to precompiles, no environment, no self-destruct. A contract
/// that passes cannot be re-pointed (an upgradeable proxy needs SLOAD and DELEGATECALL), and
/// the oracle pins its code hash, so its answers never change.
///
/// The scan understands solc's layout of runtime code:
///   [code] [0xfe, then data: constants the code CODECOPYs] [CBOR metadata] [its length: 2 bytes]
/// It walks the code from byte 0 instruction by instruction (PUSH immediates skipped, as the
/// EVM's own JUMPDEST analysis does) up to the first INVALID (0xfe), solc's data marker, and
/// refuses:
/// - any opcode outside an allow-list of pure ones: arithmetic, stack, memory, calldata, own
///   code, return data, jumps, GAS, RETURN/REVERT/STOP (so SLOAD, SSTORE, TLOAD, TSTORE, CALL,
///   CALLCODE, DELEGATECALL, CREATE, CREATE2, SELFDESTRUCT, LOGs, BALANCE, EXTCODE*, the block
///   and transaction environment, and any opcode a later fork defines);
/// - a STATICCALL not written `PUSH1 p, GAS, STATICCALL` with p a precompile (0x01-0x11):
///   ezkl's verifiers call only ecAdd, ecMul, ecPairing and modexp, exactly so;
/// - a jump whose target is pushed right before it (`PUSHn t, JUMP(I)`) into the data.
/// The data and the metadata are not scanned: solc's data is the verifying key's constants
/// (random-looking bytes; scanning them refused about half of ezkl's verifiers). A contract
/// without solc's trailer (a CBOR map whose length is in the last two bytes), or whose code
/// does not end with solc's 0xfe before it (execution would fall through into unscanned
/// bytes), is refused.
///
/// Residual risk: hand-written bytecode can place code after a 0xfe and reach it with a jump
/// whose target it computes (solc's own code uses computed jumps to return from internal
/// functions, so they cannot be refused). Such code is no proxy a compiler emits; the check
/// that closes it is off-chain: the registered code hash equals solc's output for ezkl's
/// verifier of the build (`zkml-oracle check-verifier`, docs/protocol.md).
library VerifierCodeScan {
    /// @dev Bit i set: opcode i may appear in a verifier's code. 0x00-0x0b, 0x10-0x1e, 0x20,
    /// 0x34-0x39, 0x3d, 0x3e, 0x50-0x53, 0x56-0x5b, 0x5e-0x9f, 0xf3, 0xfa (checked below),
    /// 0xfd, 0xfe (the data marker).
    uint256 private constant _ALLOWED = 0x640800000000000000000000ffffffffffffffffcfcf000063f000017fff0fff;

    /// @dev Bit i set: opcode i needs a closer look (refused, 0xfe, STATICCALL, JUMP, JUMPI).
    uint256 private constant _SPECIAL = 0xdff7ffffffffffffffffffff000000000000000030f0ffff9c0ffffe8000f000;

    /// @dev The highest precompile a STATICCALL may target (0x11: Prague's BLS12-381 ones).
    uint256 private constant _MAX_PRECOMPILE = 0x11;

    /// @notice Scans `target`'s code (see the library's documentation).
    /// @return solcLayout False when `target` has no code, no solc metadata trailer, or no 0xfe
    /// ending its code.
    /// @return offset Where the first refused instruction is (0 when none or no layout).
    /// @return opcode The refused opcode; 0: nothing refused (STOP is never refused).
    function scan(address target) internal view returns (bool solcLayout, uint256 offset, uint8 opcode) {
        bytes memory code = target.code;
        uint256 size = code.length;
        if (size < 2) return (false, 0, 0);
        // Inline assembly: a byte loop over up to 24 KB of code, run at every registration;
        // in Solidity it cost about twice the gas (bounds checks, byte extraction).
        assembly ("memory-safe") {
            let base := add(code, 0x20)
            let metadata := shr(240, mload(add(base, sub(size, 2))))
            let end := 0 // where the metadata starts
            if iszero(gt(add(metadata, 2), size)) {
                end := sub(sub(size, 2), metadata)
                // A CBOR map (major type 5): solc's {"ipfs": ..., "solc": ...}.
                solcLayout := eq(shr(5, byte(0, mload(add(base, end)))), 5)
            }
            if solcLayout {
                let dataStart := end // where solc's 0xfe ending the code is, once found
                let maxTarget := 0 // the highest `PUSHn t, JUMP(I)` target, and where
                let maxTargetAt := 0
                let prev1 := not(0) // where the previous instruction starts
                let prev2 := not(0) // and the one before it
                for { let i := 0 } lt(i, end) {} {
                    let op := byte(0, mload(add(base, i)))
                    if and(shr(op, _SPECIAL), 1) {
                        if eq(op, 0xfe) {
                            dataStart := i
                            break
                        }
                        let ok := 0
                        switch op
                        case 0xfa {
                            // PUSH1 p (2 bytes), GAS, STATICCALL, with p a precompile.
                            if and(gt(i, 2), and(eq(prev1, sub(i, 1)), eq(prev2, sub(i, 3)))) {
                                let p := byte(0, mload(add(base, sub(i, 2))))
                                ok := and(
                                    and(eq(byte(0, mload(add(base, prev1))), 0x5a), eq(byte(0, mload(add(base, prev2))), 0x60)),
                                    and(gt(p, 0), iszero(gt(p, _MAX_PRECOMPILE)))
                                )
                            }
                        }
                        case 0x56 { ok := 1 }
                        case 0x57 { ok := 1 }
                        if iszero(ok) {
                            offset := i
                            opcode := op
                            break
                        }
                        // A JUMP or JUMPI right after a PUSHn: its target must not be data.
                        if lt(prev1, i) {
                            let pushed := byte(0, mload(add(base, prev1)))
                            if lt(sub(pushed, 0x60), 0x20) {
                                let t := shr(sub(256, shl(3, sub(pushed, 0x5f))), mload(add(base, add(prev1, 1))))
                                if gt(t, maxTarget) {
                                    maxTarget := t
                                    maxTargetAt := i
                                }
                            }
                        }
                    }
                    prev2 := prev1
                    prev1 := i
                    // Next instruction: PUSH1-PUSH32 (0x60-0x7f) carry 1-32 immediate bytes.
                    i := add(add(i, 1), mul(lt(sub(op, 0x60), 0x20), sub(op, 0x5f)))
                }
                // No 0xfe ending the code: execution could fall through into unscanned bytes.
                let marker := and(lt(dataStart, end), eq(byte(0, mload(add(base, dataStart))), 0xfe))
                if iszero(or(marker, opcode)) { solcLayout := 0 }
                if and(iszero(opcode), iszero(lt(maxTarget, dataStart))) {
                    offset := maxTargetAt
                    opcode := byte(0, mload(add(base, maxTargetAt)))
                }
            }
        }
    }
}
