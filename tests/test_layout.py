"""How the package is arranged: one exception module, and the proving side free of the chain
stack (a prover worker must not pay for, or depend on, web3 and Ape)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import zkml_oracle
from zkml_oracle import exceptions

PACKAGE = Path(zkml_oracle.__file__).parent


def test_every_exception_is_a_zkml_oracle_error_defined_in_one_module() -> None:
    # Read as source, so no module (and no chain stack) is imported to check it.
    defined_elsewhere = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "exceptions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(base).endswith(("Error", "Exception", "Warning")) for base in node.bases
            ):
                defined_elsewhere.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert defined_elsewhere == []
    for name, cls in inspect.getmembers(exceptions, inspect.isclass):
        if cls.__module__ == exceptions.__name__:
            assert issubclass(cls, exceptions.ZkmlOracleError), name
