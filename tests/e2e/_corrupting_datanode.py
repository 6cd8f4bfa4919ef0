"""A data node that corrupts what it relays, for tests: the real `cocoon agent datanode` with
one byte flipped in every site-to-router chunk (COCOON_TEST_CORRUPT=1), so no TLS session
through it survives, a handshake or a page. No hook in the agent itself: the relay's send
is wrapped."""

from __future__ import annotations

import os
import sys

from offchain.datanode import _relay
from offchain.protocol.wire import StreamData

_honest_init = _relay.Relay.__init__


def _init(self: _relay.Relay, send: _relay.Send, **kwargs: object) -> None:
    async def corrupt(frame: object) -> None:
        if isinstance(frame, StreamData):
            data = bytearray(frame.data)
            data[-1] ^= 0x01
            frame = StreamData(id=frame.id, data=bytes(data))
        await send(frame)  # type: ignore[arg-type]

    _honest_init(self, corrupt if os.environ.get("COCOON_TEST_CORRUPT") else send, **kwargs)  # type: ignore[arg-type]


_relay.Relay.__init__ = _init  # type: ignore[method-assign]

if __name__ == "__main__":
    from offchain.cli import main

    sys.exit(main())
