"""The relayer: watch the oracle's requests, prove them off-chain, fulfil them, lose nothing.

Modules, one concern each: :mod:`.journal` (the durable SQLite journal), :mod:`.watcher`
(the chain through web3.py), :mod:`.signer` (keys, nonces, fees), :mod:`.inputs` (request
felts → model input, or a rejection), :mod:`.backend` (the proving interface and its local
process pool), :mod:`.service` (the loop), :mod:`.metrics` (Prometheus), :mod:`.app`
(assembling a relayer from flags). See ``docs/relayer.md``.
"""
