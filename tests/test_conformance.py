"""The conformance runner (zkml_oracle.conformance) on a small, fast part of the onnx suite.

The whole suite is benchmarks/conformance.py; here a few cases pin each verdict path: proven
accurately, refused by the preflight, refused by ezkl itself, refused by the fidelity check,
and killed past the time limit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zkml_oracle import conformance, support
from zkml_oracle.conformance import Case, CaseResult

# Small circuits (logrows 15) that build, prove and verify in 5-10 s each on 2 cores.
ACCURATE = ("test_Conv1d", "test_Conv2d_depthwise", "test_LeakyReLU")


def case(name: str) -> Case:
    [found] = [c for c in conformance.discover() if c.name == name]
    return found


def test_discovers_the_82_pytorch_converted_cases() -> None:
    cases = conformance.discover()
    assert len(cases) == 82
    assert all(c.model.is_file() and c.inputs() and c.outputs() for c in cases[:3])
    names = [c.name for c in conformance.discover(only=["conv1d_PAD", "test_relu"])]
    assert names == [
        "test_Conv1d_pad1",
        "test_Conv1d_pad1size1",
        "test_Conv1d_pad2",
        "test_Conv1d_pad2size1",
        "test_ReLU",
    ]


def test_summary_counts_every_verdict() -> None:
    results = [
        CaseResult("a", 15, 2.0, 0.001, "accurate"),
        CaseResult("b", None, 4.0, None, "refused", "unsupported: x"),
        CaseResult("c", None, 9.0, None, "timeout", "unsupported: y"),
    ]
    s = conformance.summarize(results)
    assert s.counts == {"accurate": 1, "inaccurate": 0, "refused": 1, "timeout": 1, "error": 0}
    assert (s.total, s.median_seconds, s.median_seconds_accurate) == (3, 4.0, 2.0)
    assert json.loads(json.dumps(s.to_dict()))["counts"]["refused"] == 1


def test_preflight_refuses_per_channel_prelu_at_once(tmp_path: Path) -> None:
    result = conformance.run_case(case("test_PReLU_2d_multiparam"), tmp_path, timeout=60)
    assert result.verdict == "refused", result
    assert (
        result.reason == "unsupported: PRelu node '2': 3 slopes, one per channel (only one shared)"
    )
    assert result.seconds < 30


def test_ezkl_own_refusal_is_a_clean_unsupported_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the preflight, ezkl refuses the same model at settings generation."""
    monkeypatch.setattr(support, "check", lambda model: None)
    result = conformance.evaluate(case("test_PReLU_2d_multiparam"), tmp_path)
    assert result.verdict == "refused", result
    assert result.reason is not None
    assert result.reason.startswith("unsupported: ezkl cannot generate settings for this model:")
    assert "\n" not in result.reason


@pytest.mark.slow
@pytest.mark.parametrize("name", ACCURATE)
def test_proves_accurately(name: str, tmp_path: Path) -> None:
    result = conformance.run_case(case(name), tmp_path, timeout=120)
    assert result.verdict == "accurate", result
    assert result.reason is None
    assert result.logrows is not None and result.logrows <= 20
    assert result.max_abs_error is not None and result.max_abs_error <= 0.05
    assert not (tmp_path / name / "build").exists(), "keys are removed unless kept"


@pytest.mark.slow
def test_fidelity_check_refuses_what_ezkl_would_prove_wrong(tmp_path: Path) -> None:
    """Raw ezkl proves this padded MaxPool off by ~2.0; the build must refuse it instead."""
    result = conformance.run_case(case("test_MaxPool3d_stride_padding"), tmp_path, timeout=120)
    assert result.verdict == "refused", result
    assert result.reason is not None
    assert result.reason.startswith("unsupported: the circuit's outputs differ from onnxruntime")


@pytest.mark.slow
def test_a_case_past_its_time_limit_is_killed_and_reported(tmp_path: Path) -> None:
    result = conformance.run_case(case("test_Conv1d"), tmp_path, timeout=1.5)
    assert result.verdict == "timeout", result
    assert result.reason == "unsupported: building and proving this model ran past 1.5 s (killed)"
    assert result.seconds < 30
    assert not list((tmp_path / "test_Conv1d").glob(".build.*")), "staging is cleaned up"
