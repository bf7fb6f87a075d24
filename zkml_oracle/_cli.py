"""The ``zkml-oracle`` command line: a thin layer over the Python API.

Every command prints one-line errors (``error: ...``) and exits non-zero; with ``--json`` the
result (or ``{"error": ...}``) is one JSON document on stdout and progress goes to stderr as
JSON events.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .exceptions import InputError, ZkmlOracleError

if TYPE_CHECKING:  # the CLI imports heavy modules only in the command that needs them
    from .types import InputVisibility, OutputVisibility, ParamVisibility

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
)


def chain_options(fn: F) -> F:
    """--network / --rpc-url / --account / --chain-id / --deployments, shared by chain commands."""
    options = [
        click.option(
            "--network",
            help="An Ape network choice, e.g. ethereum:sepolia:node  "
            "[env: ZKML_NETWORK; default: the local Anvil]",
        ),
        click.option(
            "--rpc-url",
            help="Any JSON-RPC endpoint, e.g. https://rpc.example/KEY.  [env: ZKML_RPC_URL]",
        ),
        click.option(
            "--account",
            help="Ape account alias that signs (APE_ACCOUNTS_<alias>_PASSPHRASE unlocks it "
            "without a prompt)  [env: ZKML_ACCOUNT; default on a local dev chain: Anvil's "
            "first dev account]",
        ),
        click.option(
            "--chain-id",
            "expect_chain_id",
            type=int,
            help="Refuse any other chain.  [env: ZKML_CHAIN_ID]",
        ),
        click.option(
            "--deployments",
            type=click.Path(path_type=Path),
            default=None,
            help="Deployment records folder  [env: ZKML_DEPLOYMENTS; default: ./deployments]",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _chain_setup(kw: dict[str, Any]) -> tuple[Any, Any]:
    """ChainOptions and DeploymentStore from the shared chain options."""
    from .chain.deployments import DeploymentStore
    from .chain.node import ChainOptions
    from .settings import settings

    env = settings()  # ZKML_RPC_URL, ZKML_NETWORK...: a flag wins over the environment
    flagged = kw["network"] or kw["rpc_url"]  # where to connect: both from flags or from env
    options = ChainOptions(
        network=kw["network"] if flagged else env.network,
        rpc_url=kw["rpc_url"] if flagged else env.rpc_url,
        account=kw["account"] or env.account,
        expect_chain_id=kw["expect_chain_id"]
        if kw["expect_chain_id"] is not None
        else env.chain_id,
    )
    return options, DeploymentStore(kw["deployments"])


def _emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    if as_json:
        click.echo(json.dumps(payload, indent=2), file=sys.__stdout__)
    else:
        click.echo(text)


def _reporter(as_json: bool) -> Callable[[str], None] | None:
    """Progress of long steps on stderr, terminal or not (JSON events with --json)."""
    from ._progress import progress_reporter

    return progress_reporter(json_events=as_json)


def handle_errors(fn: F) -> F:
    """Turn our exceptions into one line on stderr (and a JSON error) and their exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            # With --json, stdout carries one document: libraries that print (Ape's logger)
            # are sent to stderr, and _emit writes to the real stdout.
            with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
                return fn(*args, **kwargs)
        except ZkmlOracleError as e:
            if as_json:
                click.echo(
                    json.dumps({"error": str(e), "kind": e.__class__.__name__}), file=sys.__stdout__
                )
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zkml-oracle")
def cli() -> None:
    """Prove that an ONNX model produced an output, and verify it off-chain or on-chain."""


@cli.command()
@json_option
@handle_errors
def doctor(as_json: bool) -> None:
    """Report each tool zkml-oracle needs: version, where it was found, what needs it, the fix.

    Only build needs node and solc: an installed wheel deploys, requests, fulfils and relays
    with the contracts compiled into the package."""
    from .toolchain import doctor as run

    tools = run()
    rows = [
        {
            "name": t.name,
            "ok": t.ok,
            "version": t.version,
            "path": str(t.path) if t.path else None,
            "source": t.source,
            "fix": t.fix,
            "needed_for": t.needed_for,
        }
        for t in tools
    ]
    lines = []
    for r in rows:
        mark = "ok " if r["ok"] else "MISSING"
        where = f"{r['path']} ({r['source']})" if r["path"] else r["source"]
        lines.append(f"{mark:8}{r['name']:9} {r['version'] or '-':12} {where}")
        if r["fix"]:
            lines.append(f"{'':8}needed for {r['needed_for']}; fix: {r['fix']}")
    _emit(as_json, {"ok": all(t.ok for t in tools), "tools": rows}, "\n".join(lines))
    if not all(t.ok for t in tools):
        sys.exit(1)


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--calibration",
    "-c",
    type=click.Path(path_type=Path),
    required=True,
    help="ezkl data file with one or more samples back to back.",
)
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), required=True, help="Build directory."
)
@click.option(
    "--input-visibility",
    type=click.Choice(["public", "hashed", "private"]),
    default="public",
    show_default=True,
    help="hashed: only a Poseidon commitment of the input is public.",
)
@click.option(
    "--param-visibility",
    type=click.Choice(["fixed", "hashed", "private"]),
    default="fixed",
    show_default=True,
)
@click.option(
    "--output-visibility",
    type=click.Choice(["public", "hashed"]),
    default="public",
    show_default=True,
)
@click.option(
    "--srs",
    "srs_file",
    type=click.Path(path_type=Path),
    help="A KZG SRS file (e.g. from a ceremony) with k >= the circuit's logrows.",
)
@click.option(
    "--dev-srs", is_flag=True, help="Generate (once, cached) a test-only SRS on this machine."
)
@click.option(
    "--tolerance",
    type=float,
    default=None,
    help="Max |circuit - onnxruntime| on calibration data "
    "[default: max(0.01, 2% of the largest output)]",
)
@click.option(
    "--target",
    "calibration_target",
    type=click.Choice(["resources", "accuracy"]),
    default="resources",
    show_default=True,
    help="ezkl calibration target.",
)
@click.option("--max-logrows", type=int, default=None, help="Refuse circuits larger than 2^N rows.")
@click.option(
    "--lookup-margin",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Widen the calibrated lookup range by this factor, so inputs somewhat beyond the "
    "calibration data can still be proven (a larger circuit).",
)
@click.option(
    "--force", is_flag=True, help="Replace an existing build directory (only on success)."
)
@click.option(
    "--reusable",
    is_flag=True,
    help="Target ezkl's reusable verifier (shared contract + per-model key artifact) "
    "instead of a standalone verifier.",
)
@click.option(
    "--batch",
    type=int,
    default=1,
    show_default=True,
    help="Inferences per proof: the circuit proves N samples at once (N slots, each with its "
    "own inputs, commitment and outputs); one proof then settles up to N requests.",
)
@click.option(
    "--freivalds/--no-freivalds",
    default=None,
    help="ezkl's Freivalds matmul check [default: off: it pushes batched and recurrent "
    "verifiers past EIP-170 and costs ~326k gas more per verification]",
)
@click.option(
    "--bind-requester",
    is_flag=True,
    help="With --input-visibility hashed: each input commitment also covers a random salt and "
    "the requester's address, which the proof exposes and the oracle checks (a copied "
    "commitment settles nothing; guesses of the input do not hash to it).",
)
@click.option(
    "--columns",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Advice columns per region (ezkl's num_inner_cols): each is a commitment the verifier "
    "checks, so fewer columns make a cheaper verification and a longer circuit.",
)
@json_option
@handle_errors
def build(
    model: Path,
    calibration: Path,
    out: Path,
    input_visibility: InputVisibility,
    param_visibility: ParamVisibility,
    output_visibility: OutputVisibility,
    srs_file: Path | None,
    dev_srs: bool,
    tolerance: float | None,
    calibration_target: str,
    max_logrows: int | None,
    lookup_margin: int,
    force: bool,
    reusable: bool,
    batch: int,
    freivalds: bool | None,
    bind_requester: bool,
    columns: int,
    as_json: bool,
) -> None:
    """Turn MODEL (ONNX) into a circuit, keys, a Solidity verifier and a manifest in --out."""
    from .circuit.builder import BuildOptions
    from .circuit.builder import build as run
    from .types import Visibility

    options = BuildOptions(
        visibility=Visibility(input_visibility, param_visibility, output_visibility),
        srs_file=srs_file,
        dev_srs=dev_srs,
        tolerance=tolerance,
        calibration_target=calibration_target,
        max_logrows=max_logrows,
        lookup_safety_margin=lookup_margin,
        force=force,
        reusable=reusable,
        batch=batch,
        freivalds=freivalds,
        bind_requester=bind_requester,
        columns=columns,
    )
    result = run(model, calibration, out, options, progress=_reporter(as_json))
    m = result.manifest
    payload: dict[str, Any] = {
        "build_dir": str(result.build_dir),
        "manifest": m.model_dump(mode="json"),
        "timings": result.timings,
    }
    lines = [
        f"built     {result.build_dir}",
        f"circuit   logrows {m.logrows}; instances {m.layout.total} (inputs "
        f"{m.layout.inputs.count}, params {m.layout.params.count}, "
        f"outputs {m.layout.outputs.count}{' per slot' if m.batch > 1 else ''})",
        f"fidelity  max |circuit - onnxruntime| {m.fidelity.max_abs_error:.4g} "
        f"<= {m.fidelity.tolerance:.4g} on {m.fidelity.samples} samples",
    ]
    if m.verifier:
        v = m.verifier
        lines.append(
            f"verifier  {v.kind} {v.contract_name}: runtime {v.runtime_size:,} bytes, creation "
            f"{v.creation_size:,} bytes (EIP-170 limit 24,576), solc {v.solc_version}"
        )
    if m.batch > 1:
        freivalds_on = bool(freivalds)
        lines.append(
            f"batch     {m.batch} slots per proof (slot i: inputs at {m.layout.inputs.offset} + "
            f"i*{m.layout.inputs.count}, outputs at {m.layout.outputs.offset} + "
            f"i*{m.layout.outputs.count}); ezkl's Freivalds check "
            + ("ON (--freivalds)" if freivalds_on else "off (pass --freivalds to turn it on)")
        )
        payload["freivalds"] = freivalds_on
    lines.extend(f"rewrite   {r}" for r in m.rewrites)
    warnings = [*m.warnings, *([m.verifier.size_warning()] if m.verifier else [])]
    payload["warnings"] = [w for w in warnings if w]
    lines.extend(f"WARNING   {w}" for w in payload["warnings"])
    if m.dev_srs:
        lines.append("srs       dev (generated here): test-only, never for a public chain")
    _emit(as_json, payload, "\n".join(lines))


@cli.command()
@click.argument("build_dir", type=click.Path(path_type=Path))
@click.argument("input_file", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=Path("proof.json"),
    show_default=True,
    help="Where to write the proof.",
)
@json_option
@handle_errors
def prove(build_dir: Path, input_file: Path, out: Path, as_json: bool) -> None:
    """Prove the model's output on INPUT_FILE (ezkl data format: one sample, or 1..N back to
    back for a circuit built with --batch N; unused slots are padded)."""
    from . import _ezkl

    _ezkl.start_ahead()  # the prover's child starts while the prover's modules load
    from ._progress import announce
    from .field import felt_to_hex
    from .prover import prove as run

    with announce(_reporter(as_json), "proving"):
        result = run(build_dir, input_file, out)
    payload = {
        "outputs": result.outputs,
        "samples": result.samples,
        "instances": [felt_to_hex(i) for i in result.instances],
        "proof": str(result.proof_path),
        "timings": result.timings,
    }
    shown = result.outputs if len(result.samples) == 1 else result.samples
    _emit(as_json, payload, f"proof written to {result.proof_path}; outputs {shown}")


@cli.command()
@click.argument("build_dir", type=click.Path(path_type=Path))
@click.argument("proof_file", type=click.Path(path_type=Path))
@click.option(
    "--onchain", is_flag=True, help="Ask the deployed verifier (see `deploy`) instead of ezkl."
)
@chain_options
@json_option
@handle_errors
def verify(
    build_dir: Path, proof_file: Path, onchain: bool, as_json: bool, **chain_kw: Any
) -> None:
    """Verify PROOF_FILE against the circuit in BUILD_DIR: exit 0 if valid, 1 if not."""
    if onchain:
        from .chain.deploy import verify_onchain
        from .chain.node import connect

        options, store = _chain_setup(chain_kw)
        with connect(options) as chain:
            checked = verify_onchain(chain, build_dir, proof_file, store=store)
        payload = checked.to_dict()
        text = (
            f"valid on chain {checked.chain_id} (verifier {checked.verifier}): verifyProof "
            f"transaction {checked.gas:,} gas, {checked.calldata_bytes:,} calldata bytes"
            if checked.valid
            else f"INVALID: {checked.reason}"
        )
        _emit(as_json, payload, text)
        sys.exit(0 if checked.valid else 1)
    from .prover import verify as run

    result = run(build_dir, proof_file)
    payload = {"valid": result.valid, "reason": result.reason, "seconds": result.seconds}
    _emit(as_json, payload, "valid" if result.valid else f"INVALID: {result.reason}")
    sys.exit(0 if result.valid else 1)


@cli.command()
@click.argument("build_dir", type=click.Path(path_type=Path))
@click.option(
    "--allow-dev-srs",
    is_flag=True,
    help="Deploy a circuit built with a dev (test-only) SRS to a chain that is not a local "
    "dev chain. Its proofs can be forged: only for throwaway test networks.",
)
@click.option(
    "--verifier-only",
    is_flag=True,
    help="Deploy the verifier alone: no oracle, no model registration (implied by --reusable "
    "builds, which the oracle does not call yet).",
)
@chain_options
@json_option
@handle_errors
def deploy(
    build_dir: Path, allow_dev_srs: bool, verifier_only: bool, as_json: bool, **chain_kw: Any
) -> None:
    """Deploy BUILD_DIR's verifier, the oracle (once per chain) and register the model.

    Everything already deployed and still on-chain is reused; records go to deployments/.
    """
    from ._progress import Steps
    from .chain.deploy import deploy_verifier
    from .chain.node import connect, sender
    from .chain.oracle import ZERO_ADDRESS, ModelConfig, deploy_and_register
    from .prover import checked_manifest

    options, store = _chain_setup(chain_kw)
    report = _reporter(as_json)
    manifest = checked_manifest(build_dir)  # read once; the deploy functions reuse it
    verifier_only = verifier_only or bool(
        manifest.verifier and manifest.verifier.kind != "standalone"
    )
    if not verifier_only:
        ModelConfig.from_manifest(manifest, ZERO_ADDRESS)  # refuse what the oracle can't serve
    with (
        connect(options) as chain,
        Steps(report).step("deploy", f"deploying to {chain.describe()}"),
    ):
        account = sender(chain, options.account)
        if verifier_only:
            verifier = deploy_verifier(
                chain,
                build_dir,
                account,
                allow_dev_srs=allow_dev_srs,
                store=store,
                manifest=manifest,
            )
            payload: dict[str, Any] = {
                "oracle": None,
                "verifier": verifier.address,
                "model_id": None,
                "gas": {"verifier": verifier.gas_used, "register_vka": verifier.register_gas},
                "reused": {"verifier": verifier.reused},
            }
        else:
            deployed = deploy_and_register(
                chain,
                build_dir,
                account,
                allow_dev_srs=allow_dev_srs,
                store=store,
                manifest=manifest,
            )
            payload = {
                "oracle": deployed.oracle,
                "verifier": deployed.verifier,
                "model_id": deployed.model_id,
                "gas": deployed.gas,
                "reused": deployed.reused,
            }
        payload.update(
            chain_id=chain.chain_id, genesis_hash=chain.genesis_hash, record=str(store.path(chain))
        )
    lines = [f"chain     {payload['chain_id']} (record {payload['record']})"]
    for part in ("verifier", "oracle"):
        if payload[part]:
            state = "reused" if payload["reused"].get(part) else "deployed"
            gas = payload["gas"].get(part) or 0
            lines.append(f"{part:<9} {payload[part]} ({state}; {gas:,} gas)")
    if payload["model_id"]:
        state = "already registered" if payload["reused"].get("model") else "registered"
        lines.append(
            f"model     {payload['model_id']} ({state}; {payload['gas'].get('register', 0):,} gas)"
        )
    if manifest.verifier:
        lines.append(f"size      verifier runtime {manifest.verifier.runtime_size:,} bytes")
    _emit(as_json, payload, "\n".join(lines))


@cli.command()
@click.argument("build_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for the public part (settings, verifying key, verifier, manifest).",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@json_option
@handle_errors
def publish(build_dir: Path, out: Path, force: bool, as_json: bool) -> None:
    """Write BUILD_DIR's public part to --out: enough to verify, deploy and register the model,
    and no weight (checked). The weights, compiled circuit and proving key stay in BUILD_DIR."""
    from .circuit.publish import publish as run

    folder = run(build_dir, out, force=force)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    _emit(
        as_json,
        {"public": str(folder), "files": files},
        f"public part written to {folder} ({', '.join(files)}); it holds no weight",
    )


@contextlib.contextmanager
def _oracle_session(options: Any, store: Any, plain: bool = False) -> Iterator[tuple[Any, Any]]:
    """The connected chain and the oracle recorded on it; ``plain``: a web3 connection
    without Ape where it serves (reads, the local dev account signing): seconds faster."""
    from .chain.node import connect, connect_rpc
    from .chain.oracle import Oracle, oracle_address

    with (connect_rpc if plain else connect)(options) as chain:
        yield chain, Oracle(chain, oracle_address(store, chain))


@cli.command()
@click.argument("model_id")
@click.argument("input_file", type=click.Path(path_type=Path))
@click.option(
    "--fee", type=click.IntRange(min=0), default=0, show_default=True, help="Fee escrowed, in wei."
)
@click.option(
    "--deadline",
    type=click.IntRange(min=1),
    default=3600,
    show_default=True,
    help="Seconds from now (chain time) after which the request can be cancelled.",
)
@click.option("--callback", default=None, help="Contract to receive the result (IZkmlConsumer).")
@click.option("--callback-gas", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--encrypt-to",
    default=None,
    help="A relayer's encryption public key (`relay-key`): for a --bind-requester model, the "
    "input and a fresh salt are sealed to it and posted with the request (only the salted "
    "commitment and the ciphertext go on-chain).",
)
@click.option(
    "--refund-to",
    default=None,
    help="Address credited the fee if the request is cancelled (default: the requester).",
)
@chain_options
@json_option
@handle_errors
def request(
    model_id: str,
    input_file: Path,
    fee: int,
    deadline: int,
    callback: str | None,
    callback_gas: int,
    encrypt_to: str | None,
    refund_to: str | None,
    as_json: bool,
    **chain_kw: Any,
) -> None:
    """Ask the oracle for MODEL_ID's output on INPUT_FILE (a hashed model commits to it only;
    a requester-bound one takes --encrypt-to, so that a relayer can prove it)."""
    from .chain.node import sender
    from .chain.oracle import ZERO_ADDRESS, input_felts, model_record
    from .circuit import data
    from .circuit.commitment import Binding
    from .circuit.private_inputs import seal
    from .field import felt_to_hex
    from .prover import check_request_input as circuit_check
    from .types import Manifest

    if refund_to is not None:
        from eth_utils.address import is_address

        if not is_address(refund_to) or int(refund_to, 16) == 0:
            raise InputError(f"--refund-to {refund_to!r} is not a non-zero address (0x + 40 hex)")
        if encrypt_to is not None:
            raise InputError("--refund-to is for public requests: drop it with --encrypt-to")
    options, store = _chain_setup(chain_kw)
    with _oracle_session(options, store, plain=True) as (chain, oracle):
        record = model_record(store, chain, model_id)
        manifest = Manifest.load(Path(record.build_dir))
        sample = data.single_sample(data.load(input_file), manifest.inputs, input_file)
        circuit_check(Path(record.build_dir), sample)
        account = sender(chain, options.account)
        if manifest.requester_bound != (encrypt_to is not None):
            raise InputError(
                "this model takes private inputs sealed to a relayer: pass --encrypt-to "
                "PUBLIC_KEY (`zkml-oracle relay-key`)"
                if manifest.requester_bound
                else "--encrypt-to is for models built with --bind-requester"
            )
        binding = Binding.new(str(account.address)) if encrypt_to else None
        felts = input_felts(manifest, sample, binding)
        sealed = (
            () if binding is None or encrypt_to is None else (seal(encrypt_to, sample, binding),)
        )
        now = int(chain.web3.eth.get_block("pending")["timestamp"])  # the request's block
        method = "requestInference"
        extra: tuple[Any, ...] = ()
        if sealed:
            method, extra = "requestPrivateInference", sealed
        elif refund_to is not None:
            method, extra = "requestInferenceWithRefund", (refund_to,)
        receipt = oracle.send(
            method,
            model_id,
            felts,
            callback or ZERO_ADDRESS,
            callback_gas,
            now + deadline,
            *extra,
            sender=account,
            value=fee,
        )
        [event] = oracle.events(receipt, "InferenceRequested")
    payload = {
        "request_id": int(event["args"]["requestId"]),
        "tx": str(receipt.txn_hash),
        "gas_used": int(receipt.gas_used),
        "input_felts": [felt_to_hex(f) for f in felts],  # as `prove` shows instances
        "deadline": now + deadline,
    }
    _emit(as_json, payload, f"request {payload['request_id']} (tx {payload['tx']})")


@cli.command()
@click.argument("args", nargs=-1, required=True, metavar="REQUEST_ID... BUILD_DIR PROOF_FILE")
@chain_options
@json_option
@handle_errors
def fulfill(args: tuple[str, ...], as_json: bool, **chain_kw: Any) -> None:
    """Answer REQUEST_ID with PROOF_FILE (made by `prove` with BUILD_DIR); several ids settle a
    batch (slot i answers the i-th id) with one verification: requests meanwhile fulfilled,
    cancelled or expired are skipped, a mismatching slot refuses the whole batch."""
    from .chain.node import sender
    from .chain.oracle import (
        check_build_serves,
        fulfilled_outputs,
        model_record,
        outputs_to_floats,
        proof_calldata,
    )
    from .chain.reverts import enum_name
    from .types import Manifest

    if len(args) < 3:
        raise click.UsageError("give REQUEST_ID [REQUEST_ID ...] BUILD_DIR PROOF_FILE")
    try:
        request_ids = [int(a) for a in args[:-2]]
    except ValueError:
        raise click.UsageError(
            f"request ids must be integers, not {' '.join(args[:-2])!r}"
        ) from None
    build_dir, proof_file = Path(args[-2]), Path(args[-1])
    options, store = _chain_setup(chain_kw)
    manifest = Manifest.load(build_dir)
    proof, instances = proof_calldata(proof_file)
    with _oracle_session(options, store) as (chain, oracle):
        model_id = oracle.request(request_ids[0]).model_id
        record = model_record(store, chain, model_id)
        check_build_serves(chain, store, build_dir, manifest, record, f"request {request_ids[0]}")
        account = sender(chain, options.account)
        if len(request_ids) == 1:
            receipt = oracle.send("fulfill", request_ids[0], proof, instances, sender=account)
        else:
            receipt = oracle.send(
                "fulfillBatch", model_id, request_ids, proof, instances, sender=account
            )
        fulfilled = [
            *oracle.events(receipt, "RequestFulfilled"),
            *oracle.events(receipt, "BatchFulfilled"),
        ]
        skipped = oracle.events(receipt, "RequestSkipped")
    results = {
        rid: outputs_to_floats(list(outputs), record)
        for e in fulfilled
        for rid, outputs in fulfilled_outputs(e).items()
    }
    payload: dict[str, Any] = {
        "tx": str(receipt.txn_hash),
        "gas_used": int(receipt.gas_used),
        "gas_per_request": int(receipt.gas_used) // len(results),
        "fulfilled": {str(k): v for k, v in results.items()},
        "skipped": {
            str(int(e["args"]["requestId"])): enum_name(
                "IZkmlOracle.SkipReason", int(e["args"]["reason"])
            ).lower()
            for e in skipped
        },
    }
    # One request: its outputs; a batch: one entry per id given, in order (None if skipped).
    payload["outputs"] = (
        results[request_ids[0]]
        if len(request_ids) == 1
        else [results.get(rid) for rid in request_ids]
    )
    lines = [f"fulfilled {rid}: {out}" for rid, out in results.items()]
    lines += [f"skipped   {rid}: already {why}" for rid, why in payload["skipped"].items()]
    lines.append(
        f"gas       {payload['gas_used']:,} ({payload['gas_per_request']:,} per fulfilled request)"
    )
    _emit(as_json, payload, "\n".join(lines))


@cli.command()
@click.argument("build_dir", type=click.Path(path_type=Path))
@click.argument("proof_file", type=click.Path(path_type=Path))
@chain_options
@json_option
@handle_errors
def submit(build_dir: Path, proof_file: Path, as_json: bool, **chain_kw: Any) -> None:
    """Publish PROOF_FILE's verified result as the next round of the model's push feed (a
    batched proof: one round, the last sample; every sample indexed by its input)."""
    from .chain.deploy import recorded_model_id
    from .chain.node import sender
    from .chain.oracle import (
        model_record,
        outputs_to_floats,
        proof_calldata,
        proven_slots,
    )
    from .types import Manifest

    options, store = _chain_setup(chain_kw)
    manifest = Manifest.load(build_dir)
    proof, instances = proof_calldata(proof_file)
    with _oracle_session(options, store) as (chain, oracle):
        model_id = recorded_model_id(chain, manifest, store)
        record = model_record(store, chain, model_id)
        account = sender(chain, options.account)
        slots = proven_slots(manifest, instances)
        if manifest.batch == 1:
            receipt = oracle.send("submitResult", model_id, proof, instances, sender=account)
        else:
            receipt = oracle.send(
                "submitResultBatch", model_id, proof, instances, slots, sender=account
            )
        [event] = oracle.events(receipt, "ResultSubmitted")
    payload = {
        "tx": str(receipt.txn_hash),
        "gas_used": int(receipt.gas_used),
        "round": int(event["args"]["round"]),
        "outputs": outputs_to_floats(list(event["args"]["outputs"]), record),
        "model_id": model_id,
        "slots": slots,
    }
    _emit(as_json, payload, f"round {payload['round']}: {payload['outputs']}")


@cli.command()
@click.argument("model_id")
@chain_options
@json_option
@handle_errors
def result(model_id: str, as_json: bool, **chain_kw: Any) -> None:
    """The latest verified result of MODEL_ID's push feed."""
    from .chain.oracle import model_record, outputs_to_floats

    options, store = _chain_setup(chain_kw)
    with _oracle_session(options, store, plain=True) as (chain, oracle):
        record = model_record(store, chain, model_id)
        latest = oracle.latest_result(model_id)
    if latest is None:
        raise InputError(
            f"model {model_id} has no round yet: publish one with `zkml-oracle submit "
            f"{record.build_dir} PROOF_FILE` (a proof from `zkml-oracle prove`)"
        )
    payload = {
        "outputs": outputs_to_floats(list(latest.outputs), record),
        "round": latest.round,
        "updated_at": latest.updated_at,
        "input_hash": latest.input_hash,
    }
    _emit(
        as_json,
        payload,
        f"round {payload['round']} at {payload['updated_at']}: {payload['outputs']}",
    )


@cli.command()
@click.argument("model_id")
@click.option(
    "--output",
    "output_index",
    type=int,
    default=0,
    show_default=True,
    help="Which output (flat index across output tensors) the feed reports.",
)
@click.option(
    "--decimals",
    type=int,
    default=8,
    show_default=True,
    help="Answer decimals (Chainlink USD feeds use 8).",
)
@chain_options
@json_option
@handle_errors
def feed(model_id: str, output_index: int, decimals: int, as_json: bool, **chain_kw: Any) -> None:
    """A Chainlink-compatible feed (AggregatorV2V3Interface) over one model output: deployed
    on first use (recorded), then reused; prints its latestRoundData."""
    from .chain.node import sender
    from .chain.oracle import deploy_feed

    options, store = _chain_setup(chain_kw)
    with _oracle_session(options, store) as (chain, _oracle):
        entry = deploy_feed(
            chain,
            sender(chain, options.account),
            model_id,
            output=output_index,
            decimals=decimals,
            store=store,
        )
    payload = {
        k: entry[k] for k in ("feed", "decimals", "description", "gas_used", "reused", "latest")
    }
    latest = entry["latest"]
    reads = (
        f"round {latest['round']}: {latest['value']} (answer {latest['answer']}, updated at "
        f"{latest['updated_at']})"
        if latest
        else "no round yet (publish one with `zkml-oracle submit BUILD_DIR PROOF_FILE`)"
    )
    state = "reused" if entry["reused"] else f"deployed; {entry['gas_used']:,} gas"
    _emit(as_json, payload, f"feed {entry['feed']} ({state}): {entry['description']}; {reads}")


@cli.command("check-verifier")
@click.argument("model_id")
@click.argument("build_dir", type=click.Path(path_type=Path))
@chain_options
@json_option
@handle_errors
def check_verifier(model_id: str, build_dir: Path, as_json: bool, **chain_kw: Any) -> None:
    """Check that MODEL_ID's registered verifier is, byte for byte, ezkl's verifier for
    BUILD_DIR's verifying key compiled by solc (regenerated here): what anyone relying on the
    model can run; exits 1 when it is not."""
    from dataclasses import asdict

    from .chain.oracle import check_verifier as run

    options, store = _chain_setup(chain_kw)
    with _oracle_session(options, store) as (_, oracle):
        check = run(oracle, model_id, build_dir)
    _emit(
        as_json,
        {**asdict(check), "matches": check.matches},
        f"the verifier of {model_id} at {check.verifier} is ezkl's verifier for {build_dir}'s "
        f"verifying key (code hash {check.onchain_codehash})",
    )


@cli.group()
def admin() -> None:
    """The oracle admin's hardening settings: who fulfils first, callback gas, deadlines,
    who moves a model's feed (docs/protocol.md, "Hardening"). Signed by --account, which must
    hold the oracle's DEFAULT_ADMIN_ROLE."""


@admin.command("settings")
@click.option("--max-callback-gas", type=int, help="The most gas a request's callback may ask.")
@click.option(
    "--grace-period",
    type=int,
    help="Seconds after a request during which only FULFILLER_ROLE holders may fulfil (0: open).",
)
@click.option("--max-ttl", type=int, help="The furthest a deadline may be, in seconds.")
@chain_options
@json_option
@handle_errors
def admin_settings(
    max_callback_gas: int | None,
    grace_period: int | None,
    max_ttl: int | None,
    as_json: bool,
    **chain_kw: Any,
) -> None:
    """Show the oracle's settings; with options, replace those given (the others are kept)."""
    from dataclasses import asdict

    from .chain.node import sender
    from .chain.oracle import set_settings, settings

    options, store = _chain_setup(chain_kw)
    with _oracle_session(options, store) as (chain, oracle):
        if (max_callback_gas, grace_period, max_ttl) == (None, None, None):
            now = settings(oracle)
        else:
            now = set_settings(
                oracle,
                sender(chain, options.account),
                max_callback_gas_limit=max_callback_gas,
                fulfiller_grace_period=grace_period,
                max_request_ttl=max_ttl,
            )
    payload = asdict(now)
    _emit(as_json, payload, ", ".join(f"{k}: {v}" for k, v in payload.items()))


@admin.command("fulfiller")
@click.argument("address")
@click.option("--revoke", is_flag=True, help="Take FULFILLER_ROLE away instead.")
@chain_options
@json_option
@handle_errors
def admin_fulfiller(address: str, revoke: bool, as_json: bool, **chain_kw: Any) -> None:
    """Grant ADDRESS FULFILLER_ROLE (it fulfils during the grace period), or --revoke it."""
    from .chain.node import sender
    from .chain.oracle import checksum_address, set_fulfiller

    address = checksum_address(address)
    options, store = _chain_setup(chain_kw)
    with _oracle_session(options, store) as (chain, oracle):
        holds = set_fulfiller(oracle, sender(chain, options.account), address, not revoke)
    _emit(
        as_json,
        {"address": address, "fulfiller": holds},
        f"{address} {'holds' if holds else 'does not hold'} FULFILLER_ROLE",
    )


@admin.command("publisher")
@click.argument("model_id")
@click.argument("address")
@click.option("--revoke", is_flag=True, help="Stop ADDRESS publishing instead.")
@chain_options
@json_option
@handle_errors
def admin_publisher(
    model_id: str, address: str, revoke: bool, as_json: bool, **chain_kw: Any
) -> None:
    """Let ADDRESS publish MODEL_ID's feed rounds (`submit`), or --revoke it."""
    from .chain.node import sender
    from .chain.oracle import checksum_address, set_feed_publisher

    address = checksum_address(address)
    options, store = _chain_setup(chain_kw)
    with _oracle_session(options, store) as (chain, oracle):
        policy = set_feed_publisher(
            oracle, sender(chain, options.account), model_id, address, not revoke
        )
    allowed = policy.publishers[address]
    _emit(
        as_json,
        {"model_id": model_id, "address": address, "publisher": allowed, "open": policy.open},
        f"{address} {'publishes' if allowed else 'does not publish'} {model_id}'s feed",
    )


@admin.command("open-feed")
@click.argument("model_id")
@click.option("--close", is_flag=True, help="Close it to its publishers again instead.")
@chain_options
@json_option
@handle_errors
def admin_open_feed(model_id: str, close: bool, as_json: bool, **chain_kw: Any) -> None:
    """Open MODEL_ID's feed to anyone with a valid proof, or --close it."""
    from .chain.node import sender
    from .chain.oracle import set_feed_open

    options, store = _chain_setup(chain_kw)
    with _oracle_session(options, store) as (chain, oracle):
        policy = set_feed_open(oracle, sender(chain, options.account), model_id, not close)
    _emit(
        as_json,
        {"model_id": model_id, "open": policy.open},
        f"{model_id}'s feed is {'open to anyone' if policy.open else 'its publishers only'}",
    )


@cli.command()
@click.argument("request_id", type=int)
@chain_options
@json_option
@handle_errors
def status(request_id: int, as_json: bool, **chain_kw: Any) -> None:
    """pending | fulfilled | cancelled | expired, with the outputs once fulfilled."""
    from .chain.oracle import model_record
    from .chain.oracle import status as run

    options, store = _chain_setup(chain_kw)
    with _oracle_session(options, store, plain=True) as (chain, oracle):
        payload = run(oracle, request_id, lambda m: model_record(store, chain, m))
    text = f"request {request_id}: {payload['status']}"
    if "outputs" in payload:
        text += f"; outputs {payload['outputs']} (by {payload['fulfiller']})"
    _emit(as_json, payload, text)


@cli.command()
@click.argument("case_id", type=int)
@click.option("--judge", "judge_address", required=True, help="The ZkmlJudge's address.")
@chain_options
@json_option
@handle_errors
def case(case_id: int, judge_address: str, as_json: bool, **chain_kw: Any) -> None:
    """A ZkmlJudge case: its state, each panel's seats, requests and outputs, its ruling."""
    from .chain.judge import read_case
    from .chain.node import connect_rpc

    options, _ = _chain_setup(chain_kw)
    with connect_rpc(options) as chain:  # a read: no Ape
        view = read_case(chain.web3, judge_address, case_id)
    _emit(as_json, view.to_dict(), view.summary())


@cli.command()
@click.option("--port", type=int, default=8545, show_default=True)
@click.option("--chain-id", type=int, default=None, help="[default: Anvil's 31337]")
@click.option(
    "--state",
    "state_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Load the chain from this file and save it there on exit.",
)
@handle_errors
def node(port: int, chain_id: int | None, state_file: Path | None) -> None:
    """Run a local Anvil in the foreground; chain commands given no network use it."""
    from .chain.node import DEFAULT_STATE_DIR, run_node

    click.echo(f"anvil on http://127.0.0.1:{port} (Ctrl-C stops it)", err=True)
    sys.exit(run_node(port, chain_id, DEFAULT_STATE_DIR, state_file))


@cli.command()
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path("out/demo"),
    show_default=True,
    help="Where the model, its build and the relayer's journal go (replaced).",
)
@json_option
@handle_errors
def demo(workdir: Path, as_json: bool) -> None:
    """The whole product on a throwaway local Anvil: train, build, deploy, relay, decide.

    A credit-scoring model is trained and built into a circuit; its verifier, the oracle and a
    DAO's grant pool are deployed; a relayer proves the pool's score request; the pool grants
    on the verified score. Nothing is left running.
    """
    from .apps.demo import GRANT_WEI, THRESHOLD
    from .apps.demo import run as run_demo

    result = run_demo(workdir, report=_reporter(as_json))
    payload = {
        "applicant": result.applicant,
        "outputs": result.outputs,
        "decision": result.decision,
        "granted_wei": result.granted_wei,
        "gas": result.gas,
        "tx": result.tx,
        "timings": result.timings,
        "addresses": result.addresses,
    }
    score = result.outputs[0][0]
    lines = [
        f"applicant {result.applicant}",
        f"score     {score:.4f} (verified: proven off-chain by the relayer, checked on-chain)",
        f"decision  {result.decision} (the pool grants above {THRESHOLD}); paid "
        f"{result.granted_wei / 1e18:g} ETH of {GRANT_WEI / 1e18:g}",
        "gas       " + ", ".join(f"{k} {v:,}" for k, v in result.gas.items()),
        f"latency   request → verified fulfilment {result.timings['request_to_fulfilment']:.1f} s",
        "timings   " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()),
    ]
    _emit(as_json, payload, "\n".join(lines))


@cli.command()
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="A build directory to serve (registered with `deploy`); repeat for more.",
)
@chain_options
@click.option(
    "--keystore",
    type=click.Path(path_type=Path),
    default=None,
    help="An encrypted JSON keystore that signs (ZKML_RELAYER_PASSPHRASE unlocks it).",
)
@click.option(
    "--dev-account",
    type=int,
    default=0,
    show_default=True,
    help="Which Anvil dev key signs when no --account/--keystore is given (local dev chains).",
)
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=Path(".zkml-oracle/relayer.sqlite"),
    show_default=True,
    help="The relayer's journal (SQLite); a restart resumes from it.",
)
@click.option("--once", is_flag=True, help="Drain what is pending, then exit.")
@click.option(
    "--confirmations",
    type=int,
    default=None,
    help="Blocks a request must be buried under  [default: 0 on a local dev chain, else 3]",
)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Proving processes; with --backend ray, proofs in flight (the number of prover nodes).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Requests settled by one proof (models built with --batch N, N >= this); 1 = one "
    "`fulfill` per request.",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds the oldest pending request may wait for its batch to fill before it is "
    "proven with whatever is pending.",
)
@click.option(
    "--adaptive-batches",
    is_flag=True,
    help="Wait for a batch to fill only while the observed arrival rate can fill it within "
    "--max-wait; otherwise prove what is pending at once.",
)
@click.option("--poll-interval", type=float, default=0.5, show_default=True, help="Seconds.")
@click.option(
    "--drain-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="On SIGTERM, seconds to let in-flight work finish.",
)
@click.option(
    "--metrics-port", type=int, default=None, help="Serve Prometheus metrics on this port."
)
@click.option(
    "--min-fee",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Wei a request must escrow to be proven; cheaper ones are rejected before proving.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Put requests the journal marked failed back in the queue (attempts reset).",
)
@click.option(
    "--encryption-key",
    type=click.Path(path_type=Path),
    default=None,
    help="The relayer's secp256k1 encryption key (created, mode 0600, when missing); its public "
    "key is logged at start (`relay-key` prints it). Needed to serve --bind-requester models, "
    "whose private inputs come sealed to it.",
)
@click.option(
    "--status-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve the operator's status page (HTML, and /status.json) on 127.0.0.1:PORT.",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where proofs run: worker processes here, or Ray actors (one per node with room).",
)
@click.option(
    "--ray-address",
    default=None,
    help="An existing Ray cluster (HOST:PORT of its head) for --backend ray; without it the "
    "relayer starts a Ray of its own on this machine.",
)
@json_option
@handle_errors
def relay(
    models: tuple[Path, ...],
    keystore: Path | None,
    dev_account: int,
    db: Path,
    once: bool,
    confirmations: int | None,
    workers: int,
    batch_size: int,
    max_wait: float,
    adaptive_batches: bool,
    poll_interval: float,
    drain_timeout: float,
    metrics_port: int | None,
    min_fee: int,
    retry_failed: bool,
    encryption_key: Path | None,
    status_port: int | None,
    backend: str,
    ray_address: str | None,
    as_json: bool,
    **chain_kw: Any,
) -> None:
    """Prove and fulfil the oracle's requests for the served models (logs: JSON on stderr)."""
    from .chain.node import connect
    from .relayer.app import check_backend
    from .relayer.app import relay as run
    from .relayer.settings import RelayerSettings
    from .relayer.signer import KeySource

    options, store = _chain_setup(chain_kw)
    relay_options = RelayerSettings(
        build_dirs=models,
        db=db,
        key=KeySource(ape_alias=options.account, keystore=keystore, dev_index=dev_account),
        once=once,
        confirmations=confirmations,
        workers=workers,
        batch_size=batch_size,
        max_wait=max_wait,
        adaptive_batches=adaptive_batches,
        poll_interval=poll_interval,
        metrics_port=metrics_port,
        drain_timeout=drain_timeout,
        min_fee=min_fee,
        retry_failed=retry_failed,
        encryption_key=encryption_key,
        backend=backend,
        ray_address=ray_address,
        status_port=status_port,
    )
    check_backend(relay_options)  # before connecting: a flag mistake is told at once
    with connect(options) as chain:
        summary = run(chain, store, relay_options)
    counts = ", ".join(f"{k} {v}" for k, v in summary["counts"].items() if v) or "nothing"
    _emit(as_json, summary, f"relayer stopped: {counts}")


@cli.command("relay-key")
@click.argument("key_file", type=click.Path(path_type=Path))
@json_option
@handle_errors
def relay_key(key_file: Path, as_json: bool) -> None:
    """Print the public key of a relayer's encryption key KEY_FILE (created when missing):
    what requesters seal their private inputs to (`request --encrypt-to`)."""
    from .circuit.private_inputs import RelayerKey

    key = RelayerKey.load_or_create(key_file)
    _emit(as_json, {"public_key": key.public_key}, key.public_key)


@cli.command("relay-status")
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=Path(".zkml-oracle/relayer.sqlite"),
    show_default=True,
    help="The relayer's journal.",
)
@json_option
@handle_errors
def relay_status(db: Path, as_json: bool) -> None:
    """Counts by state, latencies and the last errors, from a relayer's journal."""
    from .relayer.journal import Journal

    with Journal(db, readonly=True) as journal:
        summary = journal.summary()
    if summary["chain_id"] is not None:  # the journal keeps metadata as text
        summary["chain_id"] = int(summary["chain_id"])
    lines = [
        f"journal   {summary['journal']} (chain {summary['chain_id']}, oracle "
        f"{summary['oracle']}, scanned to block {summary['cursor']})"
    ]
    lines.append(
        "states    " + (", ".join(f"{k} {v}" for k, v in summary["counts"].items() if v) or "-")
    )
    if summary["alert"]:
        lines.append(f"ALERT     {summary['alert']}")
    if summary["deep_reorgs"]:
        last = summary["last_deep_reorg"]
        lines.append(
            f"REORGS    {summary['deep_reorgs']} deeper than --confirmations; last at block "
            f"{last['block']}, requests sent again: {last['requeued']}"
        )
    for name in ("latency_seconds", "prove_seconds"):
        s = summary[name]
        if s:
            lines.append(
                f"{name.split('_')[0]:9} median {s['median']:.2f} s, p90 {s['p90']:.2f} s, "
                f"max {s['max']:.2f} s ({s['count']})"
            )
    lines.extend(
        f"error     request {e['request_id']} ({e['state']}, {e['attempts']} attempts): "
        f"{e['error']}"
        for e in summary["last_errors"]
    )
    _emit(as_json, summary, "\n".join(lines))


# --- verifiable evaluation (docs/evaluation.md) ---


@cli.command("build-evaluator")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--calibration",
    "-c",
    type=click.Path(path_type=Path),
    required=True,
    help="The model's calibration file (ezkl data, samples back to back).",
)
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), required=True, help="Evaluator directory."
)
@click.option(
    "--metric",
    type=click.Choice(["argmax", "threshold", "within"]),
    default="argmax",
    show_default=True,
    help="argmax: largest output == label; threshold: (score > T) == label; within: "
    "|output - label| <= tolerance.",
)
@click.option("--threshold", type=float, default=None, help="T for --metric threshold.")
@click.option("--tolerance", type=float, default=None, help="Allowed error for --metric within.")
@click.option(
    "--chunk",
    type=int,
    default=256,
    show_default=True,
    help="Samples per proof; larger test sets are proven in chunks that add up.",
)
@click.option("--srs", "srs_file", type=click.Path(path_type=Path), help="A KZG SRS file.")
@click.option("--dev-srs", is_flag=True, help="Generate (once, cached) a test-only SRS.")
@click.option("--force", is_flag=True, help="Replace an existing directory (only on success).")
@json_option
@handle_errors
def build_evaluator(
    model: Path,
    calibration: Path,
    out: Path,
    metric: str,
    threshold: float | None,
    tolerance: float | None,
    chunk: int,
    srs_file: Path | None,
    dev_srs: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Build the evaluation circuit of MODEL: CHUNK samples in, (commitment, correct, samples)
    out."""
    from .apps.evaluation import EvaluatorOptions
    from .apps.evaluation import build_evaluator as run

    if metric == "within" and tolerance is None:
        raise InputError("--metric within needs --tolerance (the allowed absolute error)")
    parameter = (threshold or 0.0) if metric == "threshold" else (tolerance or 0.0)
    if metric == "argmax" and (threshold is not None or tolerance is not None):
        raise InputError("--metric argmax takes neither --threshold nor --tolerance")
    options = EvaluatorOptions(
        metric=metric,
        parameter=parameter,
        chunk=chunk,
        dev_srs=dev_srs,
        srs_file=srs_file,
        force=force,
    )
    ev = run(model, calibration, out, options, progress=_reporter(as_json))
    m, spec = ev.manifest, ev.spec
    payload = {
        "evaluator_dir": str(ev.build_dir),
        "spec": spec.to_dict(),
        "manifest": m.model_dump(mode="json"),
    }
    lines = [
        f"built     {ev.build_dir}",
        f"metric    {spec.metric}{f' {spec.parameter:g}' if spec.metric != 'argmax' else ''}; "
        f"{spec.chunk} samples per proof; logrows {m.logrows}",
        f"fidelity  counts equal onnxruntime's on {m.fidelity.samples} calibration chunks",
    ]
    if m.verifier:
        lines.append(f"verifier  runtime {m.verifier.runtime_size:,} bytes")
        warning = m.verifier.size_warning()
        if warning:
            lines.append(f"WARNING   {warning}")
    _emit(as_json, payload, "\n".join(lines))


@cli.command("commit-testset")
@click.argument("evaluator_dir", type=click.Path(path_type=Path))
@click.argument("test_set", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="The opening (PRIVATE: the test set and its salt; written readable by you only).",
)
@click.option(
    "--publish", is_flag=True, help="Publish the commitment on-chain, as the test set's owner."
)
@chain_options
@json_option
@handle_errors
def commit_testset(
    evaluator_dir: Path, test_set: Path, out: Path, publish: bool, as_json: bool, **chain_kw: Any
) -> None:
    """Salt TEST_SET ({"features": [[...]], "labels": [...]}), split it into the evaluator's
    chunks and commit to each; print the public commitment."""
    from .apps.evaluation import commit_testset as run
    from .apps.evaluation import write_opening

    opening = run(evaluator_dir, test_set)
    write_opening(opening, out)
    c = opening.commitment
    payload: dict[str, Any] = {"opening": str(out), "commitment": c.to_dict(), "published": None}
    if publish:
        from .chain.attestations import publish_testset
        from .chain.node import connect, sender

        options, store = _chain_setup(chain_kw)
        with connect(options) as chain:
            payload["published"] = publish_testset(
                chain, sender(chain, options.account), c, store
            ).to_dict()
    lines = [
        f"test set  {c.test_set_id}",
        f"samples   {c.samples} in {len(c.chunk_hashes)} chunk(s) of {c.chunk}",
        f"opening   {out} (private: keep it; evaluate needs it)",
    ]
    if payload["published"]:
        p = payload["published"]
        lines.append(f"published by {p['owner']} at block {p['published_block']}")
    _emit(as_json, payload, "\n".join(lines))


@cli.command()
@click.argument("evaluator_dir", type=click.Path(path_type=Path))
@click.argument("opening", type=click.Path(path_type=Path))
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), required=True, help="Folder for the proofs."
)
@json_option
@handle_errors
def evaluate(evaluator_dir: Path, opening: Path, out: Path, as_json: bool) -> None:
    """Prove how many samples of the committed test set the model gets right."""
    from .apps.evaluation import evaluate as run

    r = run(evaluator_dir, opening, out)
    lines = [
        f"accuracy  {r.accuracy_bps / 100:.2f}% ({r.correct}/{r.samples}, metric {r.metric}); "
        f"onnxruntime agrees ({r.reference_correct})",
        f"test set  {r.commitment.test_set_id}",
        f"proofs    {len(r.chunks)} in {out} ({r.timings['prove']:.1f} s proving)",
    ]
    _emit(as_json, r.to_dict(), "\n".join(lines))


@cli.command()
@click.argument("model_id")
@click.argument("evaluation", type=click.Path(path_type=Path))
@click.option(
    "--allow-dev-srs", is_flag=True, help="Accept a dev-SRS evaluator off a local dev chain."
)
@chain_options
@json_option
@handle_errors
def attest(
    model_id: str, evaluation: Path, allow_dev_srs: bool, as_json: bool, **chain_kw: Any
) -> None:
    """Record EVALUATION (the evaluation.json of `evaluate`) for MODEL_ID on-chain."""
    from .apps.evaluation import EVALUATION_NAME, Evaluation
    from .chain.attestations import attest as run
    from .chain.node import connect, sender

    path = evaluation / EVALUATION_NAME if evaluation.is_dir() else evaluation
    options, store = _chain_setup(chain_kw)
    with connect(options) as chain:
        result = run(
            chain,
            sender(chain, options.account),
            Evaluation.load(path),
            model_id,
            store,
            allow_dev_srs=allow_dev_srs,
        )
    a = result.attestation
    gas = ", ".join(f"chunk {k}: {v:,}" for k, v in result.chunk_gas.items()) or "nothing new"
    lines = [f"evaluator {result.evaluator_id}", f"gas       {gas}"]
    lines.append(
        f"recorded  {a.accuracy_bps / 100:.2f}% ({a.correct}/{a.samples}) at block "
        f"{a.attested_block}"
        if a
        else "pending   chunks are still missing"
    )
    _emit(as_json, result.to_dict(), "\n".join(lines))


@cli.command()
@click.argument("model_id")
@chain_options
@json_option
@handle_errors
def card(model_id: str, as_json: bool, **chain_kw: Any) -> None:
    """Every recorded evaluation of MODEL_ID."""
    from .chain.attestations import card as run
    from .chain.node import connect

    options, store = _chain_setup(chain_kw)
    with connect(options) as chain:
        model_card = run(chain, model_id, store)
    _emit(as_json, model_card.to_dict(), model_card.render())


def main() -> None:
    """The console script: a bad flag or argument is one line too, naming the fix."""
    try:
        code = cli.main(prog_name="zkml-oracle", standalone_mode=False)
    except click.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx else ""
        click.echo(f"error: {e.format_message()}{hint}", err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
