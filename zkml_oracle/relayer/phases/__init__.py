"""The relayer loop's phases, one module each, over one :class:`~..context.Context`:
:mod:`.scan` → :mod:`.settle` → :mod:`.send` → :mod:`.prove`."""
