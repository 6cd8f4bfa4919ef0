"""`cocoon status` against the shared localnet process: a Root deployed by the deploy script
(recorded in the test's COCOON_HOME, so neither --root nor --url is given), a router and a gpu
provider registered by the provider script, a channel opened by a client, revenue in the pool."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from pytoniq_core import Address

from offchain.cli import main
from offchain.ton.build import code_cell
from offchain.ton.network import create_network_provider
from scripts._runner import run_script_async
from wrappers.channel import CHANNEL_DEPOSIT_FEE, POOL_DEPOSIT_FEE, Channel, ChannelConfig, ChannelState

from .conftest import LocalnetProcess
from .test_scripts import OPERATOR, OWNER, env_for

CLIENT, GPU_OWNER = 2, 3
IMAGE = "77" * 32
VALIDATOR = SigningKey(b"\x07" * 32)
TON = 10**9
PARAMS = f"""
compute_unit_price = 777
data_unit_price = 9
close_delay = 4242
images = ["{IMAGE}"]
models = ["{"88" * 32}"]
validators = ["{bytes(VALIDATOR.verify_key).hex()}"]
threshold = 1
[roles.router]
min_stake = "2"
[roles.gpu]
min_stake = "1"
"""


async def _wait_open(net, ch: Channel, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        active = (await net.chain.get_account(ch.address)).status == "active"
        if active and (await ch.get_channel_data(net.open(ch))).state == ChannelState.OPEN:
            return
        await asyncio.sleep(0.1)  # polling the chain, bounded by the deadline
    raise AssertionError(f"channel {ch.address.to_str()} did not open within {timeout}s")


async def _build(localnet: LocalnetProcess, home: Path) -> dict[str, str]:
    params = home / "foundation.toml"
    params.write_text(PARAMS)
    h = {"COCOON_HOME": str(home)}  # the deploy records there; the provider scripts read it back
    dep = await run_script_async(
        "deploy", ["--network", "localnet", "--url", localnet.url, "--params", str(params)], env={**env_for(OWNER), **h}
    )
    router = await run_script_async(
        "provider", ["--network", "localnet", "register", "--role", "router", "--stake", "2", "--endpoint", "wss://r9"],
        env={**env_for(OPERATOR), **h},
    )
    gpu = await run_script_async(
        "provider",
        ["--network", "localnet", "register", "--role", "gpu", "--stake", "1.5", "--endpoint", "wss://g9",
         "--image", IMAGE],
        env={**env_for(GPU_OWNER), **h},
    )
    async with await create_network_provider("localnet", env=env_for(CLIENT), base_url=localnet.url) as net:
        via = net.sender()
        cfg = ChannelConfig(root=dep.root.address, client=via.address, router=router.owner,
                            client_key=int.from_bytes(SigningKey(b"\x05" * 32).verify_key.encode(), "big"),
                            router_key=router.node_key)
        ch = Channel.create_from_config(cfg, code_cell("Channel"))
        sent = await ch.send_deposit(net.open(ch), via, value=TON + CHANNEL_DEPOSIT_FEE)
        await sent.wait_delivered()
        await _wait_open(net, ch)
        sent = await dep.pool.send_deposit_revenue(
            net.open(dep.pool), via, value=3 * TON + POOL_DEPOSIT_FEE, compute=2 * TON, data=TON
        )
        await sent.wait_delivered()
    return {
        "root": dep.root.address.to_str(False), "pool": dep.pool.address.to_str(False), "url": localnet.url,
        "router_owner": router.owner.to_str(False), "gpu_owner": gpu.owner.to_str(False),
        "client": via.address.to_str(False), "channel": ch.address.to_str(False), "home": str(home),
    }


@pytest.fixture(scope="module")
def network(localnet: LocalnetProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return asyncio.run(_build(localnet, tmp_path_factory.mktemp("status-home")))


def test_status_json_shows_root_providers_channels_and_pool(
    network: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COCOON_HOME", network["home"])
    monkeypatch.delenv("COCOON_LOCALNET_URL", raising=False)
    capsys.readouterr()
    assert main(["status", "--json"]) == 0  # --root and --url from the deployment
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    s = json.loads(out)
    assert set(s) == {"network", "url", "root", "params", "roles", "allowlists", "validators", "routers",
                      "providers", "channels", "pool", "reputation"}
    assert (s["network"], s["url"], s["root"]) == ("localnet", network["url"], network["root"])
    p = s["params"]
    assert (p["compute_unit_price"], p["data_unit_price"], p["close_delay"]) == (777, 9, 4242)
    assert p["reward_pool"] == network["pool"] and p["dev_attestation"] is True and p["version"] >= 1
    assert p["compute_split"] == {"gpu": 7000, "router": 1500, "validator": 1000, "protocol": 500}
    assert p["data_split"] == {"bandwidth": 7000, "router": 1500, "validator": 1000, "protocol": 500}
    assert s["roles"]["router"]["min_stake"] == 2 * TON and s["roles"]["gpu"]["min_stake"] == TON
    assert s["allowlists"] == {"models": ["88" * 32], "images": [IMAGE]}
    assert s["validators"] == {"keys": [bytes(VALIDATOR.verify_key).hex()], "count": 1, "threshold": 1}
    assert set(s["providers"]) == {"gpu", "bandwidth", "router", "validator"}
    (r,) = s["providers"]["router"]
    assert (r["owner"], r["state"], r["stake"], r["endpoint"]) == (network["router_owner"], "active", 2 * TON, "wss://r9")
    (g,) = s["providers"]["gpu"]
    assert (g["owner"], g["stake"], g["image_hash"], g["claimed"]) == (network["gpu_owner"], 3 * TON // 2, IMAGE, 0)
    assert isinstance(g["stake"], int) and s["providers"]["bandwidth"] == []
    (c,) = s["channels"]
    assert (c["address"], c["client"], c["router"], c["state"]) == (
        network["channel"], network["client"], network["router_owner"], "open"
    )
    assert (c["deposit"], c["redeemed_compute"], c["redeemed_data"]) == (TON, 0, 0)
    pool = s["pool"]
    assert pool["address"] == network["pool"] and (pool["compute_pot"], pool["data_pot"]) == (2 * TON, TON)
    assert (pool["epoch"], pool["root_total"], pool["claimed"], pool["merkle_root"]) == (0, 0, 0, "00" * 32)
    assert pool["totals"] == pool["carries"] == {"gpu": 0, "bandwidth": 0, "router": 0, "validator": 0}
    assert pool["config_version"] == p["version"]
    assert s["reputation"].startswith("not on chain")


def test_status_renders_tables(network: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["status", "--root", network["root"], "--url", network["url"]]) == 0
    out = capsys.readouterr().out
    f = {k: Address(v).to_str() for k, v in network.items() if v.startswith("0:")}  # as the scripts print them
    for text in (f"Root {f['root']} (localnet)", "compute unit price", "777 nanoTON", "role router",
                 "Providers", f["router_owner"], f["gpu_owner"], "wss://g9", "1.5 TON", "Channels", f["channel"],
                 f["client"], f"RewardPool {f['pool']}", "compute pot", "3 TON", "reputation: not on chain",
                 "total validator", "validators / threshold", "image", IMAGE):
        assert text in out, text


def test_status_without_root_or_deployment_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1
    assert "no --root given and no localnet deployment recorded" in lines[0] and "cocoon deploy" in lines[0]


def test_status_of_an_address_without_a_root_is_one_line(
    localnet: LocalnetProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--url", localnet.url, "--root", "0:" + "42" * 32]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no Root at 0:" + "42" * 32 + " on localnet")
