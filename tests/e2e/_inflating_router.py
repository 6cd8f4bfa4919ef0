"""A router that inflates its ledgers, for tests: the real `cocoon agent router`, except that
every usage row it reads back from its store claims three times the units and the nanoTON it
earned. Its ledgers are signed by its own node key as usual (nothing a signature check
catches); the validators must refuse them because the chain holds less than they claim.
No hook in the agent: `RouterStore.usage` is wrapped from outside.
"""

from __future__ import annotations

import sys

from offchain.router import _store

_honest = _store.RouterStore.usage


def usage(self: _store.RouterStore, epoch: int | None = None) -> list[_store.UsageRow]:
    return [_store.UsageRow((e, p, m, 3 * units, n, f, lat, 3 * earned))
            for e, p, m, units, n, f, lat, earned in _honest(self, epoch)]


_store.RouterStore.usage = usage  # type: ignore[method-assign]

if __name__ == "__main__":
    from offchain.cli import main

    sys.exit(main())
