"""The validator's end of relayed streams, without sockets: opening answers with the relaying
node or a typed refusal, bytes flow in order, a clean close reads as b"", an error close or a
lost session fails every read, and closing tells the router once."""

from __future__ import annotations

import asyncio

import pytest

from offchain.protocol.wire import (
    Frame,
    StreamClose,
    StreamData,
    StreamOpen,
    StreamOpened,
    StreamRefusal,
    StreamRefused,
)
from offchain.validator._relay import RelayClient, RelayLost, StreamRefusedError

NODE = "0:" + "ab" * 32


class Router:
    """What the validator sent, and a way to answer it."""

    def __init__(self) -> None:
        self.sent: list[Frame] = []
        self.opened = asyncio.Event()

    async def send(self, frame: Frame) -> None:
        self.sent.append(frame)
        if isinstance(frame, StreamOpen):
            self.opened.set()


async def opened(relay: RelayClient, router: Router, answer: Frame | None = None):  # type: ignore[no-untyped-def]
    task = asyncio.ensure_future(relay.open("news.cocoon.test", 443, task=7, avoid=[NODE, NODE]))
    await router.opened.wait()
    req = router.sent[-1]
    assert isinstance(req, StreamOpen) and req.task == 7 and req.avoid == [NODE]
    relay.handle(answer or StreamOpened(id=req.id, address="127.0.0.1", node=NODE))
    return await task


async def test_open_then_bytes_in_order_then_a_clean_end() -> None:
    router = Router()
    relay = RelayClient(router.send)
    s = await opened(relay, router)
    assert s.node == NODE and s.address == "127.0.0.1"
    relay.handle(StreamData(id=s.id, data=b"one"))
    relay.handle(StreamData(id=s.id, data=b"two"))
    assert await s.transport(b"x" * 70_000) == b"one"
    ups = [f for f in router.sent if isinstance(f, StreamData)]
    assert [len(f.data) for f in ups] == [65_536, 70_000 - 65_536], "split into frames"
    assert await s.transport(b"") == b"two"
    relay.handle(StreamClose(id=s.id))
    assert await s.transport(b"") == b""
    assert await s.transport(b"") == b"", "stays ended"
    await s.close()
    await s.close()
    assert sum(isinstance(f, StreamClose) for f in router.sent) == 1


async def test_a_refusal_is_typed() -> None:
    router = Router()
    relay = RelayClient(router.send)
    with pytest.raises(StreamRefusedError) as err:
        await opened(relay, router, StreamRefused(id=1, reason=StreamRefusal.BUDGET, message="spent"))
    assert err.value.reason == StreamRefusal.BUDGET
    assert relay.open_streams == 0


async def test_an_error_close_and_a_lost_session_fail_reads() -> None:
    router = Router()
    relay = RelayClient(router.send)
    s = await opened(relay, router)
    relay.handle(StreamClose(id=s.id, error="the data node disconnected"))
    with pytest.raises(RelayLost, match="disconnected"):
        await s.transport(b"")
    router.opened.clear()
    s2 = await opened(relay, router, StreamOpened(id=2, address="127.0.0.1", node=NODE))
    relay.lost("the router session closed")
    with pytest.raises(RelayLost, match="session closed"):
        await s2.transport(b"")
    with pytest.raises(RelayLost):
        await relay.open("a.test", 443, task=7)


async def test_no_answer_to_open_is_a_lost_relay_and_the_stream_is_dropped() -> None:
    router = Router()
    relay = RelayClient(router.send, open_timeout=0.05)
    with pytest.raises(RelayLost, match="opening a stream"):
        await relay.open("a.test", 443, task=1)
    assert isinstance(router.sent[-1], StreamClose) and relay.open_streams == 0
