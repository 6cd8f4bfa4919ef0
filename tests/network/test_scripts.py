"""The deploy and provider scripts end to end on a real localnet process (real HTTP, real wallets)."""

from __future__ import annotations

import asyncio
import time

import pytest

from offchain.errors import ConfigError
from offchain.ton._wallet import localnet_mnemonic
from scripts._common import ScriptError
from scripts._runner import run_script_async
from wrappers.provider import ProviderState

from .conftest import LocalnetProcess

OWNER, OPERATOR, PAUPER = 4, 5, 41  # localnet wallets; 41 is valid but never funded

PARAMS = """
compute_unit_price = 1000
close_delay = 3600
[roles.router]
min_stake = "10"
cooldown = 2
"""


def env_for(wallet: int) -> dict[str, str]:
    return {"WALLET_MNEMONIC": " ".join(localnet_mnemonic(wallet)), "WALLET_VERSION": "v5r1"}


@pytest.fixture(scope="module")
def params(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("scripts") / "foundation.toml"
    path.write_text(PARAMS)
    return path


async def script(net: LocalnetProcess, name: str, args: list[str], wallet: int):
    return await run_script_async(name, ["--network", "localnet", "--url", net.url, *args], env=env_for(wallet))


async def test_deploy_is_idempotent(localnet: LocalnetProcess, params, capsys) -> None:
    root = await script(localnet, "deploy", ["--params", str(params)], OWNER)
    out = capsys.readouterr().out
    assert f"Root deployed at {root.address.to_str()}" in out or "already deployed" in out
    assert "min stake 10 TON, cooldown 2 s" in out
    again = await script(localnet, "deploy", ["--params", str(params)], OWNER)
    assert again.address == root.address
    assert "already deployed" in capsys.readouterr().out


async def test_deploy_without_funds_fails_in_one_line(localnet: LocalnetProcess, params) -> None:
    with pytest.raises(ScriptError, match=r"^insufficient balance: deploying Root needs"):
        await script(localnet, "deploy", ["--params", str(params)], PAUPER)


async def test_deploy_rejects_bad_parameters(localnet: LocalnetProcess, tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[splits.compute]\ngpu = 9000\nrouter = 1500\nvalidator = 1000\nprotocol = 500\n")
    with pytest.raises(ConfigError, match="compute_split sums to 12000"):
        await script(localnet, "deploy", ["--params", str(bad)], OWNER)


async def test_provider_lifecycle_register_unstake_withdraw(localnet: LocalnetProcess, params, capsys) -> None:
    root = await script(localnet, "deploy", ["--params", str(params)], OWNER)
    r = ["--root", root.address.to_str(), "--role", "router"]
    with pytest.raises(ScriptError, match="below minimum stake: 5 TON < 10 TON"):
        await script(localnet, "provider", ["register", *r, "--stake", "5", "--endpoint", "wss://r"], OPERATOR)
    with pytest.raises(ScriptError, match="register first"):
        await script(localnet, "provider", ["status", *r], OPERATOR)
    data = await script(localnet, "provider", ["register", *r, "--stake", "12", "--endpoint", "wss://r1"], OPERATOR)
    assert data.state == ProviderState.ACTIVE and data.stake == 12 * 10**9 and data.endpoint == "wss://r1"
    assert "state      active" in capsys.readouterr().out
    with pytest.raises(ScriptError, match="already registered"):
        await script(localnet, "provider", ["register", *r, "--stake", "12", "--endpoint", "wss://r1"], OPERATOR)
    with pytest.raises(ScriptError, match="nothing to withdraw"):
        await script(localnet, "provider", ["withdraw", *r], OPERATOR)
    data = await script(localnet, "provider", ["unstake", *r], OPERATOR)
    assert data.unstaking == 12 * 10**9 and data.stake == 0
    with pytest.raises(ScriptError, match="cooldown not over"):
        await script(localnet, "provider", ["withdraw", *r], OPERATOR)
    await asyncio.sleep(max(0.0, data.unlock_at - time.time()) + 1.1)
    data = await script(localnet, "provider", ["withdraw", *r], OPERATOR)
    assert data.unstaking == 0
    with pytest.raises(ScriptError, match="RewardPool"):
        await script(localnet, "provider", ["claim", *r], OPERATOR)


async def test_a_contract_refusal_becomes_one_line(localnet: LocalnetProcess, params) -> None:
    root = await script(localnet, "deploy", ["--params", str(params)], OWNER)
    args = ["register", "--root", root.address.to_str(), "--role", "gpu", "--stake", "10", "--endpoint", "wss://g",
            "--image", "1234"]
    with pytest.raises(ScriptError, match=r"^registration refused: image not allowed"):
        await script(localnet, "provider", args, OPERATOR)


async def test_provider_needs_a_root(localnet: LocalnetProcess) -> None:
    with pytest.raises(ConfigError, match="--root"):
        await script(localnet, "provider", ["status", "--role", "gpu"], OPERATOR)


async def test_config_set_by_the_owner_and_refused_for_anyone_else(localnet: LocalnetProcess, params) -> None:
    root = await script(localnet, "deploy", ["--params", str(params)], OWNER)
    r = ["--root", root.address.to_str()]
    got = await script(localnet, "config", ["set", "prices", *r, "--compute", "2000", "--data", "20"], OWNER)
    assert (got.compute_unit_price, got.data_unit_price) == (2000, 20)
    got = await script(localnet, "config", ["set", "close-delay", *r, "--seconds", "7200"], OWNER)
    assert got.close_delay == 7200
    with pytest.raises(ScriptError, match="not the owner"):
        await script(localnet, "config", ["set", "prices", *r, "--compute", "1", "--data", "1"], OPERATOR)
    with pytest.raises(ConfigError, match="summing to 10000"):
        await script(localnet, "config", ["set", "splits", *r, "--compute", "1,2,3,4", "--data", "1,2,3,4"], OWNER)
