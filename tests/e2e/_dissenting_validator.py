"""A validator that dissents, for tests: the real `cocoon agent validator`, except that it
settles each epoch from the router's ledger less its first row (it "saw" one provider's work
differently) and with another default reputation, so it signs a result the honest validators
do not compute, even for an epoch whose ledger is empty. It also asks for each ledger at the
boundary itself, without the half-second grace the honest ones wait (`SettleConfig.grace`),
so that its signature reaches them before they finish: otherwise, when the machine is busy,
it may find the epoch already adopted and never sign it at all. No hook in the agent:
`Settler.build_inputs` is wrapped from outside. The previous epochs it reads back are the
honest published ones (`_previous` settles them with the real code), so it dissents on every
epoch, not only the first.
"""

from __future__ import annotations

import dataclasses
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


_honest_init = _settle.Settler.__init__


def init(self: _settle.Settler, config: _settle.SettleConfig, **kwargs: Any) -> None:
    _honest_init(self, dataclasses.replace(config, grace=0.0), **kwargs)


_settle.Settler.build_inputs = build_inputs  # type: ignore[method-assign]
_settle.Settler.__init__ = init  # type: ignore[method-assign]

if __name__ == "__main__":
    from offchain.cli import main

    sys.exit(main())
