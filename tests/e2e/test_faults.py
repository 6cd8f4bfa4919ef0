"""Faults across real processes: a worker killed mid-batch, a router killed and restarted
between two requests, a client (gateway) killed and restarted. Money is read from the
router's and the client's own SQLite books, as an operator would."""

from __future__ import annotations

import concurrent.futures
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from offchain.devnet import Devnet, DevnetConfig

from ._helpers import MODEL, embed, gateway, logs, read_db, router_db, wait_log


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Devnet]:
    d = Devnet(tmp_path, DevnetConfig(workers=2, coefficients=[1000, 1000], redeem_interval=600.0,
                                      redeem_threshold="1000"))
    d.start()
    yield d
    d.close()


def router_books(net: Devnet) -> tuple[int, int]:
    """(charged compute, vouchers held) from the router's store, read-only."""
    [(charged, held)] = router_db(net, "SELECT (SELECT coalesce(sum(charged_compute), 0) FROM accounts), "
                                       "(SELECT count(*) FROM vouchers)")
    return charged, held


def client_books(net: Devnet, *, charged: int | None = None, timeout: float = 10.0) -> tuple[int, int]:
    """(newest voucher's compute total, charged) from the gateway's client store, read-only.

    The client records the router's charge after answering (not on the answer's path):
    with `charged`, wait (bounded) until its books show that charge."""
    deadline = time.monotonic() + timeout
    while True:
        books = read_db(net.workdir / "gateway" / "client.db", "SELECT compute, charged_compute FROM channel")[0]
        if charged is None or books[1] == charged or time.monotonic() > deadline:
            return books
        time.sleep(0.05)


def wait_models(net: Devnet, timeout: float = 30.0) -> None:
    """Until the router again lists the model (its workers reconnected)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if [m.id for m in gateway(net).models.list().data] == [MODEL]:
                return
        except openai.APIError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the model did not come back within {timeout}s\n{logs(net)}")


def test_worker_killed_mid_batch_is_retried_elsewhere_and_charged_once(net: Devnet) -> None:
    texts = [f"sentence {i} for a batch that a worker will not finish" for i in range(24)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(embed, net, texts) for _ in range(16)]
        deadline = time.monotonic() + 30
        while router_books(net)[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # the first charge: requests are flowing to both workers
        net.sup.stop("worker0", sig=signal.SIGKILL)
        costs = [f.result(timeout=120) for f in futures]
    assert all(c > 0 for c in costs)
    charged, _ = router_books(net)
    assert charged == sum(costs), "every request is charged exactly once, failed attempts never"
    voucher, client_charged = client_books(net, charged=charged)
    assert client_charged == charged <= voucher


def test_router_killed_between_requests_loses_no_voucher_and_charges_once(net: Devnet) -> None:
    first = embed(net, ["before the router dies"])
    charged, held = router_books(net)
    assert charged == first and held >= 1
    net.sup.stop("router", sig=signal.SIGKILL)
    assert router_books(net) == (charged, held), "what was committed survives a kill -9"
    net.start_router(port=net.router["port"])  # same port: workers and gateway dial it again
    wait_models(net)
    second = embed(net, ["after the router came back"])
    charged2, _ = router_books(net)
    assert charged2 == first + second
    voucher, client_charged = client_books(net, charged=charged2)
    assert client_charged == charged2 <= voucher


def test_client_restarted_mid_stream_never_signs_lower_and_goes_on(net: Devnet) -> None:
    costs = [embed(net, [f"stream item {i}"]) for i in range(3)]
    before, _ = client_books(net)
    net.sup.stop("gateway", sig=signal.SIGKILL)
    net.start_gateway()
    costs += [embed(net, [f"stream item {i} after restart"]) for i in range(3)]
    charged, _ = router_books(net)
    after, client_charged = client_books(net, charged=charged)
    assert after >= before, "a restarted client never signs a lower total"
    assert charged == client_charged == sum(costs)


def test_unstaked_worker_is_dropped_and_the_other_serves(net: Devnet) -> None:
    import asyncio

    from offchain.devnet import wallet_env
    from scripts._runner import run_script_async

    provider = net.workers[0].info["provider"]
    asyncio.run(run_script_async("provider", ["--network", "localnet", "--url", net.api_url, "unstake",
                                              "--root", net.root, "--role", "gpu"], env=wallet_env(2)))
    wait_log(net, "router", f"dropping worker {provider}")  # within one watcher poll
    wait_log(net, "worker0", "PROVIDER_INACTIVE")  # it reconnects and is refused
    costs = [embed(net, ["served by the worker that still stakes"]) for _ in range(3)]
    assert all(c > 0 for c in costs)


def test_workers_restarted_with_new_keys_are_sealed_to_again(net: Devnet) -> None:
    """Every worker restarts (a new encryption key each): the gateway's client, which sealed to
    the old keys, asks the router for its workers again and goes on without an error."""
    assert embed(net, ["before the restart"]) > 0
    for p in list(net.workers):
        net.sup.stop(p.name, sig=signal.SIGKILL)
    net.start_worker(0)
    assert embed(net, ["after the restart, sealed to the new key"]) > 0
