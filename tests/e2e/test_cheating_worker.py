"""A worker that cheats on the sealed path is caught by the SDK or the router, and the client
pays nothing for it (real processes; the cheater is the real worker with its answers altered,
tests/e2e/_cheating_worker.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from offchain.client import CocoonClient
from offchain.devnet import Devnet, DevnetConfig, wallet_env
from offchain.errors import RequestFailed
from offchain.protocol.wire import ErrorCode
from offchain.ton.network import create_network_provider

from ._helpers import MODEL, router_config, router_db


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Devnet]:
    d = Devnet(tmp_path, DevnetConfig(workers=0, gateway=False, redeem_interval=600.0, redeem_threshold="1000"))
    d.start()
    yield d
    d.close()


def charged(net: Devnet) -> int:
    return router_db(net, "SELECT coalesce(sum(charged_compute), 0) FROM accounts")[0][0]


async def attempt(net: Devnet, tmp_path: Path) -> RequestFailed:
    """One sealed request from a fresh client; returns the error it must end in."""
    chain_net = await create_network_provider("localnet", base_url=net.api_url, env=wallet_env(net.client_wallet))
    async with (
        chain_net,
        CocoonClient(
            router_config(net),
            chain=chain_net.chain,
            wallet=chain_net.sender(),
            channel_key=SigningKey.generate(),
            store=tmp_path / "client.db",
        ) as client,
    ):
        await client.open_channel(deposit=10**9)
        with pytest.raises(RequestFailed) as err:
            await client.embed(["a sentence the worker will not answer honestly"], model=MODEL)
        assert client.charged_compute == 0
        return err.value


def test_an_answer_sealed_to_another_key_is_rejected_disputed_and_refunded(net: Devnet, tmp_path: Path) -> None:
    net.start_worker(0, module="tests.e2e._cheating_worker", env={"COCOON_TEST_CHEAT": "wrong-seal"})
    err = asyncio.run(attempt(net, tmp_path))
    refunded = re.search(r"disputed, (\d+) nanoTON refunded", str(err))
    assert err.code == ErrorCode.RESULT_REJECTED and refunded and int(refunded.group(1)) > 0, err
    assert charged(net) == 0, "the router took the charge back on the client's proof"
    assert "sealed an answer to the wrong key" in net.sup.procs["router"].output(200)


def test_an_answer_signed_by_another_key_is_never_billed(net: Devnet, tmp_path: Path) -> None:
    net.start_worker(0, module="tests.e2e._cheating_worker", env={"COCOON_TEST_CHEAT": "wrong-key"})
    err = asyncio.run(attempt(net, tmp_path))
    assert err.code == ErrorCode.WORKER_FAILED and "receipt" in str(err)
    assert charged(net) == 0
