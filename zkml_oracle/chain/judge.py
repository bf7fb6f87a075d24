"""Reading a :sol:`ZkmlJudge` case (``contracts/ZkmlJudge.sol``, docs/judge.md): its state,
each panel's seats, requests and verified outputs, and its ruling.

The contract keeps no outputs (its callback only counts seats): they are read from its
``PanelAnswered`` events. ``zkml-oracle case`` is a thin door over :func:`read_case`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..exceptions import InputError

STATES = ("none", "deliberating", "ruled", "appealed", "final", "void")
RULINGS = ("none", "favourable", "unfavourable")
DIRECTIONS = ("at_least", "at_most")
PANELS = ("first", "appeal")


@dataclass(frozen=True)
class PanelRequest:
    """One oracle request of a panel; ``outputs`` (at the model's scale) once answered."""

    request_id: int
    model_id: str
    status: str  # pending | answered | abstained
    outputs: list[int] | None
    values: list[float] | None  # outputs / 2**outputScale


@dataclass(frozen=True)
class Seat:
    """A seat: output ``output_index`` of ``model_id`` against ``threshold``, and its vote."""

    model_id: str
    output_index: int
    direction: str  # at_least | at_most (the threshold itself is favourable)
    threshold: int
    vote: str  # for | against | abstained | pending


@dataclass(frozen=True)
class Panel:
    name: str  # first | appeal
    quorum: int
    on_disagreement: str
    fee_per_request: int
    seats: list[Seat]
    requests: list[PanelRequest]


@dataclass(frozen=True)
class CaseView:
    judge: str
    case_id: int
    state: str
    ruling: str  # the current ruling (final only when state is "final")
    first_ruling: str
    subject: str  # keccak256(abi.encode(targets, values, calldatas))
    input_hash: str
    input: list[int]
    opened_at: int
    ruled_at: int | None
    appeal_closes_at: int | None  # while the first ruling may be appealed
    opener: str
    appellant: str | None
    panels: list[Panel]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [f"case {self.case_id} on judge {self.judge}: {self.state}, ruling {self.ruling}"]
        for panel in self.panels:
            votes = [s.vote for s in panel.seats]
            lines.append(
                f"  {panel.name} panel (quorum {panel.quorum} of {len(votes)}): " + ", ".join(votes)
            )
            for r in panel.requests:
                shown = ", ".join(f"{v:g}" for v in r.values) if r.values else r.status
                lines.append(f"    request {r.request_id} ({r.model_id[:10]}…): {shown}")
        if self.appeal_closes_at is not None:
            lines.append(f"  appeal window open until {self.appeal_closes_at} (chain time)")
        return "\n".join(lines)


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _vote(
    direction: int, threshold: int, outputs: list[int] | None, index: int, status: str
) -> str:
    if outputs is None:
        return "abstained" if status == "abstained" else "pending"
    value = outputs[index]
    ok = value >= threshold if direction == 0 else value <= threshold
    return "for" if ok else "against"


def read_case(web3: Any, judge_address: str, case_id: int) -> CaseView:
    """The case ``case_id`` of the judge at ``judge_address``, as the chain has it now."""
    from web3.exceptions import ContractLogicError

    from .contracts import contract

    if not web3.is_address(judge_address):
        raise InputError(f"{judge_address!r} is not an address: pass the judge's 0x… address")
    address = web3.to_checksum_address(judge_address)
    if not web3.eth.get_code(address):
        raise InputError(f"no contract at {address}: pass the ZkmlJudge's address")
    judge = web3.eth.contract(address=address, abi=contract("ZkmlJudge").abi)
    try:
        raw = judge.functions.getCase(case_id).call()
    except ContractLogicError:
        raise InputError(f"no case {case_id} on the judge at {address}: check the id") from None
    subject, input_hash, panel_index, ruling, first, opened, ruled_at = raw[:7]
    opener, appellant = raw[10], raw[11]
    state = int(judge.functions.caseState(case_id).call())
    oracle = web3.eth.contract(
        address=judge.functions.oracle().call(),
        abi=contract("ZkmlOracle").abi,
        decode_tuples=True,  # structs by their ABI field names
    )
    answers = {
        int(log["args"]["requestId"]): list(log["args"]["outputs"])
        for log in judge.events.PanelAnswered().get_logs(
            from_block=0, argument_filters={"caseId": case_id}
        )
    }
    scales: dict[bytes, int] = {}
    panels = []
    for index in range(panel_index + 1):
        cfg = judge.functions.panel(index).call()
        requests, by_model = [], {}
        for request_id, model, resolved, answered in judge.functions.getRequests(
            case_id, index
        ).call():
            if model not in scales:
                scales[model] = int(oracle.functions.getModel(model).call().config.outputScale)
            status = "answered" if answered else "abstained" if resolved else "pending"
            outputs = answers.get(int(request_id))
            values = None if outputs is None else [o / 2 ** scales[model] for o in outputs]
            request = PanelRequest(int(request_id), _hex(model), status, outputs, values)
            requests.append(request)
            by_model[model] = request
        seats = []
        for model, output_index, direction, threshold in cfg[0]:
            r = by_model.get(model)
            vote = _vote(
                direction, threshold, r.outputs if r else None, output_index, r.status if r else ""
            )
            seats.append(Seat(_hex(model), output_index, DIRECTIONS[direction], threshold, vote))
        panels.append(Panel(PANELS[index], cfg[1], RULINGS[cfg[2]], cfg[3], seats, requests))
    window = int(judge.functions.policy().call()[1])
    return CaseView(
        judge=address,
        case_id=case_id,
        state=STATES[state],
        ruling=RULINGS[ruling],
        first_ruling=RULINGS[first],
        subject=_hex(subject),
        input_hash=_hex(input_hash),
        input=list(judge.functions.inputOf(case_id).call()),
        opened_at=int(opened),
        ruled_at=int(ruled_at) or None,
        appeal_closes_at=int(ruled_at) + window if STATES[state] == "ruled" else None,
        opener=opener,
        appellant=None if int(appellant, 16) == 0 else appellant,
        panels=panels,
    )
