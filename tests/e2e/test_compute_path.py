"""The compute path end to end, as a developer uses it: the official `openai` client against
`cocoon gateway`, which pays a router through a channel; the router serves from two real
worker processes and redeems the vouchers on the local chain."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import openai
import pytest
from pytoniq_core import Address

from offchain.devnet import Devnet
from offchain.ton.network import ChainContractProvider, LocalnetProvider
from wrappers.channel import Channel
from wrappers.events import VoucherRedeemed, default_registry

from ._helpers import MODEL, gateway, logs


def client(net: Devnet, key: str = "sk-test") -> openai.OpenAI:
    return gateway(net, key)


def test_openai_client_gets_embeddings_paid_through_the_channel(devnet: Devnet) -> None:
    c = client(devnet)
    assert [m.id for m in c.models.list().data] == [MODEL]
    texts = ["A man is playing a guitar.", "Someone plays an acoustic guitar.", "The stock market fell sharply today."]
    r = c.embeddings.create(input=texts, model=MODEL)
    v = np.array([d.embedding for d in r.data], dtype=np.float32)
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3, "a paraphrase must score higher than an unrelated sentence"
    assert r.usage.prompt_tokens == r.usage.total_tokens > 3 * 2  # [CLS] + [SEP] + words, per input
    # float encoding gives the same vectors as the client's default (base64)
    f = c.embeddings.create(input=texts[0], model=MODEL, encoding_format="float")
    assert np.allclose(np.array(f.data[0].embedding), v[0], atol=1e-6)


def test_bad_requests_get_openai_errors(devnet: Devnet) -> None:
    with pytest.raises(openai.NotFoundError):
        client(devnet).embeddings.create(input="x", model="no-such-model")
    with pytest.raises(openai.AuthenticationError):
        client(devnet, key="wrong").embeddings.create(input="x", model=MODEL)
    with pytest.raises(openai.BadRequestError):
        client(devnet).embeddings.create(input="x", model=MODEL, dimensions=16)


def test_router_redeems_vouchers_on_chain(devnet: Devnet) -> None:
    c = client(devnet)
    for i in range(4):
        c.embeddings.create(input=[f"request number {i} about payment channels on TON"] * 3, model=MODEL)
    channel = devnet.sup.procs["gateway"].info["channel"]

    async def redeemed() -> VoucherRedeemed:
        chain = LocalnetProvider(devnet.api_url)
        registry = default_registry()
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                for tx in await chain.get_transactions(channel, limit=50):
                    for e in registry.decode(tx):
                        if isinstance(e, VoucherRedeemed):
                            data = await Channel.create_from_address(tx.address).get_channel_data(
                                ChainContractProvider(chain, Address(channel)))
                            assert data.redeemed_compute >= e.total_compute > 0
                            return e
                await asyncio.sleep(0.3)
        finally:
            await chain.close()
        raise AssertionError(f"no VoucherRedeemed on {channel} within 60s\n{logs(devnet)}")

    event = asyncio.run(redeemed())
    assert event.router == devnet.router["address"]
    assert event.compute > 0 and event.data == 0
