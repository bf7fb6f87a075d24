"""`make artifacts`: compile contracts/ and write the artifacts the package ships.

zkml_oracle/artifacts/ then holds one JSON file per contract (ABI, bytecode, solc version and
settings, the digest of the sources) and sources.json; tests/test_artifacts.py checks that they
match contracts/. Same sources, same files: run it after any change to a contract.
"""

from __future__ import annotations

import sys

from zkml_oracle.chain.contracts import ARTIFACTS, write_artifacts
from zkml_oracle.exceptions import ZkmlOracleError


def main() -> int:
    try:
        written = write_artifacts()
    except ZkmlOracleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(written)} files in {ARTIFACTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
