"""Putting a relayer together from a connected chain, its deployment record and flags."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

from ..chain.deployments import DeploymentStore
from ..chain.node import Chain
from ..exceptions import InputError
from .backend import LocalPoolBackend, ProverBackend
from .journal import Journal
from .log import emit, setup_logging
from .metrics import Metrics, PrometheusMetrics
from .service import (
    Relayer,
    RelayerError,
    ServedModel,
    check_batch_size,
)
from .settings import RelayerSettings
from .signer import load_signer

#: Confirmations waited for by default on a chain that is not a local dev chain.
REMOTE_CONFIRMATIONS = 3


BACKENDS = ("local", "ray")


def check_backend(options: RelayerSettings) -> None:
    """The backend flags fit together."""
    if options.backend not in BACKENDS:
        raise InputError(f"--backend {options.backend}: choose one of {', '.join(BACKENDS)}")
    if options.ray_address is not None and options.backend != "ray":
        raise InputError(
            "--ray-address is for --backend ray: add --backend ray, or drop --ray-address"
        )


def make_backend(options: RelayerSettings, build_dirs: list[str]) -> ProverBackend:
    """The proving engine the options name."""
    check_backend(options)
    if options.backend == "ray":
        from .ray_backend import RayBackend

        return RayBackend(build_dirs, options.ray_address)
    return LocalPoolBackend(build_dirs, options.workers)


def served_models(
    chain: Chain, store: DeploymentStore, build_dirs: tuple[Path, ...]
) -> dict[str, ServedModel]:
    """Each build's model id, from the verifier recorded for it on this chain."""
    from ..chain.deploy import recorded_model_id
    from ..types import Manifest

    if not build_dirs:
        raise InputError("give at least one --model DIR (a build registered with `deploy`)")
    models: dict[str, ServedModel] = {}
    for build_dir in build_dirs:
        manifest = Manifest.load(build_dir)
        model_id = recorded_model_id(chain, manifest, store)
        models[model_id] = ServedModel(model_id, Path(build_dir).resolve(), manifest)
    return models


def relay(chain: Chain, store: DeploymentStore, options: RelayerSettings) -> dict[str, Any]:
    """Run a relayer until it stops; returns the journal's summary."""
    from ..chain.oracle import oracle_address
    from .watcher import OracleClient, connect_web3

    setup_logging()
    # SIGTERM from here on drains (even during start-up); a file-size limit is an error
    # from the journal, not a kill.
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    address = oracle_address(store, chain)
    models = served_models(chain, store, options.build_dirs)
    check_batch_size(models, options.batch_size)
    url = chain.url or getattr(chain.provider, "uri", None)
    if not url:
        raise InputError(f"{chain.describe()} has no HTTP endpoint: pass --rpc-url")
    web3 = connect_web3(str(url))
    oracle = OracleClient(web3, address)
    for model_id, model in models.items():
        if not oracle.model_registered(model_id):
            raise RelayerError(
                f"model {model_id} ({model.build_dir}) is not registered on the oracle at "
                f"{address}: run `zkml-oracle deploy {model.build_dir}`"
            )
        if model.manifest.requester_bound and options.encryption_key is None:
            raise InputError(
                f"model {model_id} takes private inputs sealed to the relayer: pass "
                "--encryption-key FILE (created when missing) and publish its public key"
            )
        if model.manifest.visibility.input == "hashed" and not model.manifest.requester_bound:
            emit(
                "model.hashed_inputs",
                logging.WARNING,
                model=model_id,
                note="its requests will be rejected: a commitment alone cannot be proven",
            )
    signer = load_signer(options.key, chain.chain_id)
    inputs = None
    if options.encryption_key is not None:
        from ..circuit.private_inputs import RelayerKey
        from .private_inputs import SealedInputs

        key = RelayerKey.load_or_create(options.encryption_key)
        emit("relayer.encryption_key", public_key=key.public_key)
        inputs = SealedInputs(key, oracle.contract)
    start_block = 0
    recorded_oracle = store.load(chain).oracle
    oracle_tx = recorded_oracle.tx if recorded_oracle else None
    if oracle_tx:
        receipt = oracle.receipt(str(oracle_tx))
        start_block = int(receipt["blockNumber"]) if receipt is not None else 0
    confirmations = options.confirmations
    if confirmations is None:
        confirmations = 0 if chain.is_local_dev else REMOTE_CONFIRMATIONS
    config = options.model_copy(update={"confirmations": confirmations, "start_block": start_block})
    metrics: Metrics = (
        PrometheusMetrics(options.metrics_port) if options.metrics_port is not None else Metrics()
    )
    with Journal(options.db) as journal:
        journal.bind(chain.chain_id, address, chain.genesis_hash)
        backend = make_backend(options, [str(m.build_dir) for m in models.values()])
        status = None
        if options.status_port is not None:
            from .status_page import StatusServer, StatusSource

            source = StatusSource(
                options.db,
                relayer=signer.address,
                web3=connect_web3(str(url)),
                backend=options.backend
                + (f" ({options.ray_address or 'local'})" if options.backend == "ray" else ""),
                workers=getattr(backend, "status", list),
            )
            try:
                status = StatusServer(source, options.status_port)
            except BaseException:
                backend.close(cancel=True)
                raise
            emit("status.serving", url=f"http://127.0.0.1:{status.port}/")
        relayer = Relayer(
            config=config,
            oracle=oracle,
            signer=signer,
            models=models,
            backend=backend,
            journal=journal,
            metrics=metrics,
            stop=stop,
            inputs=inputs,
        )
        try:
            return relayer.run()
        finally:
            if status is not None:
                status.close()
