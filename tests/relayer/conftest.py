"""The relayer's fixtures: a fresh Anvil per test with the oracle and the example model
(``env``; the batched model: ``benv``), and the genuine answers to check fulfilments against.
Within this folder ``env`` is that relayer environment, not the root conftest's oracle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BATCH, calibration_rows, prove_rows
from tests.relayer.helpers import Env, Rows, start_env
from zkml_oracle import field
from zkml_oracle.chain import LocalNode, free_port
from zkml_oracle.types import BuildResult, ProofResult


def _fresh_chain(built: BuildResult, work: Path) -> Iterator[Env]:
    port = free_port()
    env = start_env(LocalNode.start(port=port), port, built, work)
    yield env
    env.stop()


@pytest.fixture
def env(built: BuildResult, tmp_path: Path) -> Iterator[Env]:
    """A fresh Anvil with the oracle and the example model."""
    yield from _fresh_chain(built, tmp_path)


@pytest.fixture(scope="module")
def good(
    built: BuildResult, proof: ProofResult, example: dict[str, Path]
) -> tuple[list[int], list[int]]:
    """The example input's felts and the signed outputs its genuine proof carries."""
    m = built.manifest
    values = json.loads(example["input"].read_text())["input_data"][0]
    felts = [field.encode(v, m.inputs[0].scale) for v in values]
    lay = m.layout
    outputs = [field.felt_to_int(f) for f in proof.instances[lay.outputs.offset : lay.outputs.end]]
    return felts, outputs


@pytest.fixture(scope="module")
def rows(
    batch_built: BuildResult, example: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Rows:
    from zkml_oracle.chain.oracle import proof_calldata

    m = batch_built.manifest
    values = calibration_rows(example)[:BATCH]
    ref = prove_rows(batch_built, values, tmp_path_factory.mktemp("batch-ref") / "ref.json")
    felts = [[field.encode(v, m.inputs[0].scale) for v in row] for row in values]
    outputs = []
    for i in range(BATCH):
        seg = m.layout.output_slot(i)
        outputs.append([field.felt_to_int(f) for f in ref.instances[seg.offset : seg.end]])
    assert len({tuple(o) for o in outputs}) == BATCH  # four different answers
    proof, instances = proof_calldata(ref.proof_path)
    return Rows(felts, outputs, proof, instances)


@pytest.fixture
def benv(batch_built: BuildResult, tmp_path: Path) -> Iterator[Env]:
    """A fresh Anvil with the oracle and the batched (BATCH slots) model."""
    yield from _fresh_chain(batch_built, tmp_path)
