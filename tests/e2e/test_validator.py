"""A validator's spot checks catch a worker returning random vectors (correctly sealed and
signed, so neither the SDK nor the router can tell), lower its reputation at the router, and
get it slashed on chain through Root with a signed fraud record; the router then drops it,
and the honest worker keeps passing (real processes: localnet, router, two workers, the
validator agent; Root's validator set is the validator's key with threshold 1)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey
from pytoniq_core import Address

from offchain.devnet import Devnet, DevnetConfig
from offchain.errors import RequestFailed
from offchain.mesh import connect, join
from offchain.protocol.wire import ErrorCode
from offchain.ton.network import ChainContractProvider, create_network_provider
from offchain.validator._core import FraudRecord, verify_fraud_record
from wrappers.events import Slashed, default_registry
from wrappers.provider import Provider, ProviderState

from ._helpers import read_db, wait_until

STAKE = 2 * 10**9  # the devnet's worker stake
SLASH = 15 * 10**8  # leaves 0.5 TON, below Root's 1 TON minimum: the Provider goes inactive


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Devnet]:
    d = Devnet(
        tmp_path,
        DevnetConfig(
            workers=0,
            gateway=False,
            redeem_interval=600.0,
            redeem_threshold="1000",
            validators=1,
            validator_threshold=1,
            validator_extra={
                "probe_interval": 0.4,
                "probe_burst": 3,
                "probe_inputs": 1,
                "fraud_failures": 2,
                "fraud_window": 4,
                "slash_amount": "1.5",
                "deposit": "1",
            },
        ),
    )
    try:
        d.start()
        # the cheater first, and cheaper: the router sends it the traffic (and so the probes,
        # which go where the router sends any request) until the validator's verdicts land
        d.start_worker(0, module="tests.e2e._cheating_worker", env={"COCOON_TEST_CHEAT": "random"})
        d.start_worker(1)
        yield d
    finally:
        d.close()


def wait_for(what: str, check: Callable[[], Any], net: Devnet, timeout: float = 40.0) -> Any:
    return wait_until(what, net, check, timeout, interval=0.2)


def reported(net: Devnet) -> dict[str, float]:
    """The reputation the router last applied per Provider (from its log)."""
    out: dict[str, float] = {}
    for m in re.finditer(r"reputation of (\S+) set to ([0-9.]+)", net.sup.procs["router"].output(10_000)):
        out[m.group(1)] = float(m.group(2))
    return out


def validator_db(net: Devnet, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return read_db(net.workdir / "validator0" / "validator.db", sql, params)


async def provider_state(net: Devnet, address: str) -> tuple[Any, list[Slashed]]:
    chain_net = await create_network_provider("localnet", base_url=net.api_url, env={})
    async with chain_net:
        p = Provider.create_from_address(Address(address))
        data = await p.get_provider_data(ChainContractProvider(chain_net.chain, p.address))
        txs = await chain_net.chain.get_transactions(p.address, limit=50)
    registry = default_registry()
    events = [e for tx in txs for e in registry.decode(tx) if isinstance(e, Slashed)]
    return data, events


def test_validator_catches_a_random_worker_and_gets_it_slashed(net: Devnet) -> None:
    cheater, honest = (p.info["provider"] for p in net.workers)
    started = time.monotonic()

    frauds = wait_for(
        "a fraud record relayed",
        lambda: validator_db(net, "SELECT provider, hash, body, validator, signature, status FROM fraud"
                                  " WHERE status = 'relayed'"),
        net,
    )
    ((provider, record_hash, body, validator, signature, _status),) = frauds
    assert provider == cheater
    record = FraudRecord(provider, bytes(body), bytes(record_hash), bytes(validator), bytes(signature))
    assert verify_fraud_record(record)
    assert bytes(validator).hex() == net.validators[0].info["node_key"]
    assert b'"receipt":{' in record.body and b'"signature"' in record.body

    # on chain: the cheater's Provider slashed by the order whose reason is that record
    data, slashed = wait_for("the Slashed event", lambda: _slashed(net, cheater), net)
    assert data.stake == STAKE - SLASH and data.state != ProviderState.ACTIVE
    assert [e.reason_hash for e in slashed] == [record.reason_hash]
    assert slashed[0].slashed == SLASH

    # the router: the cheater's reputation below the honest one's, then the cheater dropped
    rep = wait_for("both reputations at the router", lambda: len(reported(net)) == 2 and reported(net), net)
    assert rep[cheater] < rep[honest], rep
    wait_for("the router dropping the cheater",
             lambda: f"dropping worker {cheater}" in net.sup.procs["router"].output(10_000), net)

    # the honest worker keeps passing, after the slash too
    slashed_at = int(time.time())
    wait_for(
        "honest probes after the slash",
        lambda: validator_db(net, "SELECT COUNT(*) FROM probes WHERE provider = ? AND at > ?",
                             (honest, slashed_at))[0][0] >= 2,
        net,
    )
    ((fails, passes),) = validator_db(
        net, "SELECT SUM(passed = 0), SUM(passed = 1) FROM probes WHERE provider = ?", (honest,)
    )
    assert fails == 0 and passes >= 3
    ((cheats,),) = validator_db(net, "SELECT SUM(passed = 0) FROM probes WHERE provider = ?", (cheater,))
    assert cheats >= 2
    assert time.monotonic() - started < 60

    # a key outside Root's validator set gets no validator session
    err = asyncio.run(_validator_session_with(net, SigningKey.generate()))
    assert err.code == ErrorCode.NOT_A_PROVIDER and "validator set" in err.detail


async def _validator_session_with(net: Devnet, key: SigningKey) -> RequestFailed:
    peer = await connect(net.router["url"])
    try:
        with pytest.raises(RequestFailed) as err:
            await join(peer, key=key, role="validator", owner=net.validators[0].info["address"],
                       expect_router_key=bytes.fromhex(net.router["router_key"]))
        return err.value
    finally:
        await peer.close()


def _slashed(net: Devnet, cheater: str) -> tuple[Any, list[Slashed]] | None:
    data, events = asyncio.run(provider_state(net, cheater))
    return (data, events) if events else None
