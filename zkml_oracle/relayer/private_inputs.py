"""The relayer's side of the encrypted input channel (:mod:`zkml_oracle.private_inputs`).

:class:`SealedInputs` turns a journalled request into the sample to prove: public inputs from
the request's felts as before, and for a requester-bound model the ciphertext posted with the
request (its ``EncryptedInput`` log), decrypted with the relayer's key and checked against the
request's commitment and requester. A ciphertext that is missing, does not decrypt or does
not match is a :class:`~zkml_oracle.relayer.inputs.Rejected` request (journalled, never
proven); the relayer goes on serving the others. Only the ciphertext's verdict reaches the
journal and the logs, never its plaintext.
"""

from __future__ import annotations

from typing import Any

from ..private_inputs import PrivateInputError, RelayerKey, unseal
from ..types import Manifest
from .inputs import Rejected, Sample, sample_from_felts


class SealedInputs:
    """The input of a request, for the relayer's dispatcher (see ``Relayer(inputs=...)``)."""

    def __init__(self, key: RelayerKey, contract: Any) -> None:
        self.key = key
        self.contract = contract  # the oracle, as a web3.py contract

    def __call__(self, manifest: Manifest, request_id: int, felts: tuple[int, ...]) -> Sample:
        if not manifest.requester_bound:
            return sample_from_felts(manifest, felts)
        logs = self.contract.events.EncryptedInput().get_logs(
            from_block=0, argument_filters={"requestId": request_id}
        )
        if not logs:
            raise Rejected(
                "requester-bound model: no sealed input was posted with this request (request it "
                "with requestPrivateInference, sealed to this relayer's key)"
            )
        requester = self.contract.functions.getRequest(request_id).call()[1]
        try:
            return unseal(
                self.key, bytes(logs[-1]["args"]["ciphertext"]), manifest, felts, requester
            )
        except PrivateInputError as e:
            raise Rejected(str(e)) from None
