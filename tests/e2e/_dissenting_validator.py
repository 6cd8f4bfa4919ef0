"""A validator that dissents, for tests: the real `cocoon agent validator`, except that it
settles each epoch from the router's ledger less its first row (it "saw" one provider's work
differently) and with another default reputation, so it signs a result the honest validators
do not compute, even for an epoch whose ledger is empty. No hook in the agent:
`Settler.build_inputs` is wrapped from outside. The previous epochs it reads back are the
honest published ones (`_previous` settles them with the real code), so it dissents on every
epoch, not only the first.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import msgspec

from offchain.validator import _settle

_honest = _settle.Settler.build_inputs
log = logging.getLogger("cocoon.validator.settle")


async def build_inputs(self: _settle.Settler, ledger: Any, threshold: int) -> Any:
    inputs = await _honest(self, ledger, threshold)
    if inputs is None:
        return None
    log.warning("dissenting: settling epoch %d without the ledger's first row", inputs.epoch)
    ledgers = [msgspec.structs.replace(g, rows=g.rows[1:]) for g in inputs.ledgers]
    return msgspec.structs.replace(inputs, ledgers=ledgers,
                                   default_reputation_ppm=inputs.default_reputation_ppm // 2)


_settle.Settler.build_inputs = build_inputs  # type: ignore[method-assign]

if __name__ == "__main__":
    from offchain.cli import main

    sys.exit(main())
