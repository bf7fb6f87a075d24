"""The relayer's queue, simulated: arrivals, batching, max wait, provers → latency.

A discrete-event simulation of the relayer's dispatch rule (``relayer/phases/prove.py``): requests
arrive as a Poisson process; whenever a prover is free, the oldest waiting requests of the
model start one proof once ``batch`` of them wait or the oldest has waited ``max_wait``
seconds (at most ``batch`` per proof); a proof takes the measured proving time; a request is
settled ``overhead`` seconds after its proof ends (journal, sign, send, mine, see it mined).

It first **reproduces** the figures measured by ``benchmarks/relayer.py`` (same arrival
pattern, same parameters; see ``benchmarks/README.md``), printing simulated against measured
and their ratio (each layout's 20-queued run calibrates the proving time inside a busy
queue; the others are checks), and only then **predicts** larger loads: the
latency and the provers needed for a request rate, batched and not. Usage:

    .venv/bin/python benchmarks/queue_sim.py [--json] [--seed 8]
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
import sys
from dataclasses import asdict, dataclass

#: Measured on this machine (benchmarks/README.md, `relayer.py`, `batch_prove.py`): the credit
#: MLP at the toolkit's default circuit layout (logrows 11 one, 13 a batch of 8, 15 of 32).
PROVE_SINGLE = 0.79  # s, one request per proof (bare `prove`, median)
PROVE_BATCH8 = 0.80  # s, a full batch of 8 (bare, median of the batched runs' goals)
PROVE_BATCH32 = 3.11  # s, 32 per proof (batch_prove.py)
OVERHEAD = 0.10  # s, request mined → fulfilment mined, beyond the proof (0.89 - 0.79)
#: The same with ezkl's layout (logrows 15), kept to check the simulation against both.
EZKL_LAYOUT_SINGLE, EZKL_LAYOUT_OVERHEAD = 2.44, 0.41


@dataclass(frozen=True)
class Scenario:
    rate: float  # requests per second (Poisson), or 0 with `queued`
    batch: int
    max_wait: float
    provers: int
    prove: float  # seconds per proof
    requests: int = 400
    queued: int = 0  # requests all waiting at t=0 (a throughput run)
    overhead: float = OVERHEAD


@dataclass(frozen=True)
class Result:
    median: float
    p90: float
    max: float
    makespan: float  # first arrival → last settled
    per_minute: float  # requests settled per minute over the makespan
    proofs: int


def simulate(s: Scenario, seed: int = 8) -> Result:
    rng = random.Random(seed)
    arrivals: list[float] = []
    t = 0.0
    for _ in range(s.queued or s.requests):
        arrivals.append(t)
        if not s.queued:
            t += rng.expovariate(s.rate)
    free = [0.0] * s.provers  # when each prover is next free
    heapq.heapify(free)
    done: list[float] = []
    proofs = 0
    i = 0
    n = len(arrivals)
    while i < n:
        start = heapq.heappop(free)
        # The loop looks each poll: the job starts when a prover is free and the oldest
        # waiting request is due (a full batch waiting, or max_wait since it was seen).
        oldest = max(start, arrivals[i])
        full_at = arrivals[i + s.batch - 1] if i + s.batch - 1 < n else math.inf
        begin = max(oldest, min(full_at, arrivals[i] + s.max_wait))
        take = 0
        while i + take < n and take < s.batch and arrivals[i + take] <= begin:
            take += 1
        end = begin + s.prove
        proofs += 1
        for k in range(i, i + take):
            done.append(end + s.overhead - arrivals[k])
        i += take
        heapq.heappush(free, end)
    ordered = sorted(done)
    span = max(a + d for a, d in zip(arrivals, done, strict=True)) - arrivals[0]
    return Result(
        median=statistics.median(ordered),
        p90=ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)],
        max=ordered[-1],
        makespan=span,
        per_minute=60 * len(ordered) / span,
        proofs=proofs,
    )


#: What benchmarks/relayer.py measured (benchmarks/README.md), with the scenario behind it:
#: at the default layout, then with ezkl's (the proving times are each run's bare ones).
MEASURED: list[tuple[str, Scenario, str, float]] = [
    ("one at a time, 1 prover", Scenario(0.02, 1, 0.0, 1, PROVE_SINGLE, 50), "median", 0.89),
    (
        "20 queued, 1 prover (s) [calibration]",
        Scenario(0, 1, 0.0, 1, 0.78, queued=20, overhead=0.5),
        "makespan",
        16.1,
    ),
    ("batch 8, W=0, ~6 s apart", Scenario(1 / 6, 8, 0.0, 1, 0.836, 24), "median", 0.99),
    ("batch 8, W=5, ~6 s apart", Scenario(1 / 6, 8, 5.0, 1, 0.782, 24), "median", 5.46),
    ("batch 8, W=0, ~1 s apart", Scenario(1.0, 8, 0.0, 1, 0.764, 24), "median", 1.33),
    ("batch 8, W=5, ~1 s apart", Scenario(1.0, 8, 5.0, 1, 0.817, 24), "median", 4.75),
    (
        "ezkl's layout: one at a time",
        Scenario(0.02, 1, 0.0, 1, EZKL_LAYOUT_SINGLE, 50, overhead=EZKL_LAYOUT_OVERHEAD),
        "median",
        2.85,
    ),
    (
        "ezkl's layout: 20 queued (s)",
        Scenario(0, 1, 0.0, 1, 2.63, queued=20, overhead=0.5),
        "makespan",
        53.1,
    ),
    *(
        (
            f"ezkl's layout: batch 8, W={w:.0f}, ~{1 / rate:.0f} s apart",
            Scenario(rate, 8, w, 1, prove, 24, overhead=EZKL_LAYOUT_OVERHEAD),
            "median",
            measured,
        )
        for rate, w, prove, measured in (
            (1 / 6, 0.0, 2.62, 3.24),
            (1 / 6, 5.0, 2.58, 7.30),
            (1.0, 0.0, 2.44, 4.54),
            (1.0, 5.0, 2.50, 6.43),
        )
    ),
]


def provers_needed(rate: float, batch: int, prove: float, utilisation: float = 0.7) -> int:
    """Provers (nodes: ezkl uses a node's cores for one proof) to keep each below
    ``utilisation`` at ``rate`` requests/s with full batches."""
    return max(1, math.ceil(rate * prove / batch / utilisation))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()

    checks = []
    for name, scenario, field, measured in MEASURED:
        # The measured runs are short: average the simulation over seeds, as a re-run would.
        sims = [getattr(simulate(scenario, args.seed + k), field) for k in range(40)]
        sim = statistics.median(sims)
        checks.append(
            {"run": name, "measured": measured, "simulated": sim, "ratio": sim / measured}
        )

    predictions = []
    for per_minute in (30, 120, 600, 2400):
        rate = per_minute / 60
        for batch, prove in ((1, PROVE_SINGLE), (8, PROVE_BATCH8), (32, PROVE_BATCH32)):
            provers = provers_needed(rate, batch, prove)
            wait = 0.0 if batch == 1 else 2.0
            r = simulate(Scenario(rate, batch, wait, provers, prove, 2000), args.seed)
            predictions.append(
                {
                    "requests_per_minute": per_minute,
                    "batch": batch,
                    "max_wait": wait,
                    "provers": provers,
                    **asdict(r),
                }
            )
    if args.json:
        print(json.dumps({"checks": checks, "predictions": predictions}, indent=2))
        return 0
    print("reproduction of measured figures (benchmarks/relayer.py):")
    print(f"  {'run':42} {'measured':>9} {'simulated':>10} {'ratio':>6}")
    for c in checks:
        print(f"  {c['run']:42} {c['measured']:9.2f} {c['simulated']:10.2f} {c['ratio']:6.2f}")
    print("predictions (provers for <= 70% utilisation; latency request → fulfilment):")
    print(f"  {'req/min':>7} {'batch':>5} {'W':>3} {'provers':>7} {'median':>7} {'p90':>6}")
    for p in predictions:
        print(
            f"  {p['requests_per_minute']:7d} {p['batch']:5d} {p['max_wait']:3.0f} "
            f"{p['provers']:7d} {p['median']:6.2f}s {p['p90']:5.2f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
