"""The relayer's side of the encrypted input channel (:mod:`zkml_oracle.circuit.private_inputs`).

:class:`SealedInputs` turns a journalled request into the sample to prove: public inputs from
the request's felts as before, and for a requester-bound model the ciphertext posted with the
request (its ``EncryptedInput`` log), decrypted with the relayer's key and checked against the
request's commitment and requester. A ciphertext that is missing, does not decrypt or does
not match is a :class:`~zkml_oracle.relayer.inputs.Rejected` request (journalled, never
proven); the relayer goes on serving the others. Only the ciphertext's verdict reaches the
journal and the logs, never its plaintext.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ..circuit.private_inputs import PrivateInputError, RelayerKey, unseal
from ..types import Manifest
from .inputs import Rejected, Sample, sample_from_felts
from .journal import Entry

#: Opened samples kept for requests waiting for their batch (oldest dropped first).
MAX_OPENED = 4096
#: Blocks searched back for a ciphertext whose request moved in a reorg.
REORG_WINDOW = 64


class SealedInputs:
    """The input of a request, for the relayer's dispatcher (see ``Relayer(inputs=...)``).

    A request's ciphertext is looked up in the block that journalled it (its
    ``EncryptedInput`` log is in the same transaction as its ``InferenceRequested``), once:
    the opened sample is kept by request id while the request waits for its batch.
    """

    def __init__(self, key: RelayerKey, contract: Any) -> None:
        self.key = key
        self.contract = contract  # the oracle, as a web3.py contract
        self._opened: OrderedDict[int, Sample] = OrderedDict()  # bounded: MAX_OPENED

    def __call__(self, manifest: Manifest, entry: Entry) -> Sample:
        if not manifest.requester_bound:
            return sample_from_felts(manifest, entry.input_felts)
        opened = self._opened.get(entry.request_id)
        if opened is None:
            opened = self._open(manifest, entry)
            self._opened[entry.request_id] = opened
            if len(self._opened) > MAX_OPENED:
                self._opened.popitem(last=False)
        return opened

    def _open(self, manifest: Manifest, entry: Entry) -> Sample:
        event = self.contract.events.EncryptedInput()
        where = {"requestId": entry.request_id}
        block = entry.block_number
        logs = event.get_logs(from_block=block, to_block=block, argument_filters=where)
        if not logs:  # re-mined elsewhere after a reorg: look around, boundedly
            start = max(0, block - REORG_WINDOW)
            logs = event.get_logs(from_block=start, argument_filters=where)
        if not logs:
            raise Rejected(
                "requester-bound model: no sealed input was posted with this request (request it "
                "with requestPrivateInference, sealed to this relayer's key)"
            )
        # The request's requester, from its InferenceRequested (the oracle stores only a
        # commitment to its fields): same transaction, so the same block as the ciphertext.
        requested = self.contract.events.InferenceRequested().get_logs(
            from_block=int(logs[-1]["blockNumber"]),
            to_block=int(logs[-1]["blockNumber"]),
            argument_filters=where,
        )
        if not requested:
            raise Rejected("no InferenceRequested log next to this request's sealed input")
        requester = str(requested[-1]["args"]["requester"])
        try:
            return unseal(
                self.key,
                bytes(logs[-1]["args"]["ciphertext"]),
                manifest,
                entry.input_felts,
                requester,
            )
        except PrivateInputError as e:
            raise Rejected(str(e)) from None
