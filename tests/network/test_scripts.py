"""The deploy and provider scripts end to end on a real localnet process (real HTTP, real wallets)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time

import pytest
from nacl.signing import SigningKey

from offchain.errors import ConfigError
from offchain.protocol.epoch import build_report, sign_report, split_revenue
from offchain.protocol.merkle import Leaf, MerkleSumTree
from offchain.ton._wallet import localnet_mnemonic
from offchain.ton.network import create_network_provider
from scripts._common import ScriptError, fmt_ton
from scripts._runner import run_script_async
from wrappers.channel import POOL_DEPOSIT_FEE
from wrappers.errors import ExitCode
from wrappers.provider import ProviderState, Role

from .conftest import LocalnetProcess, free_port

OWNER, OPERATOR, PAUPER = 4, 5, 41  # localnet wallets; 41 is valid but never funded
VALIDATORS = [SigningKey(hashlib.sha256(f"cocoon-scripts-validator-{i}".encode()).digest()) for i in range(3)]
TON = 10**9


def pub(k: SigningKey) -> int:
    return int.from_bytes(bytes(k.verify_key), "big")


PARAMS = f"""
compute_unit_price = 1000
close_delay = 3600
validators = [{", ".join(f'"{pub(k):064x}"' for k in VALIDATORS)}]
threshold = 2
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


async def test_deploy_is_idempotent_and_configures_the_pool(localnet: LocalnetProcess, params, capsys) -> None:
    dep = await script(localnet, "deploy", ["--params", str(params)], OWNER)
    root, pool = dep.root, dep.pool
    out = capsys.readouterr().out
    assert f"Root deployed at {root.address.to_str()}" in out or "already deployed" in out
    assert "min stake 10 TON, cooldown 2 s" in out
    assert f"reward pool             {pool.address.to_str()}" in out
    assert f"pool config version     {dep.root_version} (Root version {dep.root_version})" in out
    assert dep.configured and dep.pool_config_version >= 1  # SetRewardPool bumped Root's version
    async with await create_network_provider("localnet", env={}, base_url=localnet.url) as net:
        assert (await root.get_params(net.open(root))).reward_pool == pool.address
        assert (await root.get_role_params(net.open(root), Role.GPU)).reward_pool == pool.address
        pool_data = await pool.get_pool_data(net.open(pool))
        assert pool_data.root == root.address and pool_data.config_version == dep.root_version
        cfg = await pool.get_pool_config(net.open(pool))
        assert cfg.threshold == 2 and set(cfg.validators) == {pub(k) for k in VALIDATORS}
    again = await script(localnet, "deploy", ["--params", str(params)], OWNER)
    assert (again.root.address, again.pool.address, again.pool_config_version) == (
        root.address,
        pool.address,
        dep.pool_config_version,
    )
    out = capsys.readouterr().out
    assert "Root and RewardPool are already deployed and configured: nothing to do" in out
    assert "pushing" not in out and "deployed at" not in out


async def test_deploy_on_localnet_allows_dev_attestation_by_default(
    localnet: LocalnetProcess, params, tmp_path, capsys
) -> None:
    dep = await script(localnet, "deploy", ["--params", str(params)], OWNER)
    assert re.search(r"^  dev attestation +on \(insecure: no TEE hardware\)$", capsys.readouterr().out, re.M)
    async with await create_network_provider("localnet", env={}, base_url=localnet.url) as net:
        assert (await dep.root.get_params(net.open(dep.root))).dev_attestation is True
    off = tmp_path / "off.toml"
    off.write_text("dev_attestation = false\n" + PARAMS)
    other = await script(localnet, "deploy", ["--params", str(off)], OWNER)
    assert other.root.address != dep.root.address  # the flag is part of Root's initial data
    assert re.search(r"^  dev attestation +off$", capsys.readouterr().out, re.M)
    async with await create_network_provider("localnet", env={}, base_url=localnet.url) as net:
        assert (await other.root.get_params(net.open(other.root))).dev_attestation is False


@pytest.mark.parametrize("network", ["testnet", "mainnet"])
async def test_deploy_refuses_dev_attestation_on_a_public_network_before_any_call(
    network: str, tmp_path, capsys
) -> None:
    on = tmp_path / "on.toml"
    on.write_text("dev_attestation = true\n" + PARAMS)
    dead = f"http://127.0.0.1:{free_port()}/api/v2"  # nothing listens: any chain call would fail differently
    argv = ["--network", network, "--url", dead, "--params", str(on)]
    with pytest.raises(ConfigError) as err:
        await run_script_async("deploy", argv, env=env_for(OWNER))
    assert str(err.value) == (
        f"dev_attestation = true on {network} would let workers without TEE hardware in (insecure); "
        "pass --insecure-dev-attestation to do it anyway"
    )
    assert "\n" not in str(err.value) and "Root " not in capsys.readouterr().out  # nothing was derived or sent


async def test_config_set_dev_attestation_on_is_refused_on_testnet_before_any_call() -> None:
    dead = f"http://127.0.0.1:{free_port()}/api/v2"
    argv = ["--network", "testnet", "--url", dead, "set", "dev-attestation", "--root", "0:" + "00" * 32, "--on"]
    with pytest.raises(ConfigError, match=r"^dev-attestation --on on testnet would let workers without TEE hardware"):
        await run_script_async("config", argv, env=env_for(OWNER))


async def test_deploy_pushes_a_newer_root_config_to_the_pool(localnet: LocalnetProcess, params, capsys) -> None:
    dep = await script(localnet, "deploy", ["--params", str(params)], OWNER)
    r = ["--root", dep.root.address.to_str()]
    await script(localnet, "config", ["set", "close-delay", *r, "--seconds", "3600"], OWNER)  # Root's version + 1
    capsys.readouterr()
    again = await script(localnet, "deploy", ["--params", str(params)], OWNER)
    assert again.root_version == dep.root_version + 1 and again.configured
    assert f"pool config pushed (version {again.root_version})" in capsys.readouterr().out


async def test_deploy_without_funds_fails_in_one_line(localnet: LocalnetProcess, params) -> None:
    with pytest.raises(ScriptError, match=r"^insufficient balance: deploying Root needs"):
        await script(localnet, "deploy", ["--params", str(params)], PAUPER)


async def test_deploy_rejects_bad_parameters(localnet: LocalnetProcess, tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[splits.compute]\ngpu = 9000\nrouter = 1500\nvalidator = 1000\nprotocol = 500\n")
    with pytest.raises(ConfigError, match="compute_split sums to 12000"):
        await script(localnet, "deploy", ["--params", str(bad)], OWNER)


async def test_provider_lifecycle_register_update_node_unstake_withdraw(
    localnet: LocalnetProcess, params, capsys
) -> None:
    root = (await script(localnet, "deploy", ["--params", str(params)], OWNER)).root
    r = ["--root", root.address.to_str(), "--role", "router"]
    with pytest.raises(ScriptError, match="below minimum stake: 5 TON < 10 TON"):
        await script(localnet, "provider", ["register", *r, "--stake", "5", "--endpoint", "wss://r"], OPERATOR)
    with pytest.raises(ScriptError, match="register first"):
        await script(localnet, "provider", ["status", *r], OPERATOR)
    with pytest.raises(ScriptError, match="register first"):
        await script(localnet, "provider", ["update-node", *r, "--node-key", "ab", "--endpoint", "wss://r"], OPERATOR)
    data = await script(localnet, "provider", ["register", *r, "--stake", "12", "--endpoint", "wss://r1"], OPERATOR)
    assert data.state == ProviderState.ACTIVE and data.stake == 12 * 10**9 and data.endpoint == "wss://r1"
    assert re.search(r"^  state +active$", capsys.readouterr().out, re.M)
    with pytest.raises(ScriptError, match="already registered"):
        await script(localnet, "provider", ["register", *r, "--stake", "12", "--endpoint", "wss://r1"], OPERATOR)
    key = "0x" + "5e" * 32
    with pytest.raises(ConfigError, match=r"^--endpoint is too long \(255 bytes\)"):
        await script(localnet, "provider", ["update-node", *r, "--node-key", key, "--endpoint", "x" * 255], OPERATOR)
    with pytest.raises(ConfigError, match="is not hex"):
        await script(localnet, "provider", ["update-node", *r, "--node-key", "xyz", "--endpoint", "wss://r2"], OPERATOR)
    data = await script(
        localnet, "provider", ["update-node", *r, "--node-key", key, "--endpoint", "wss://r2"], OPERATOR
    )
    assert (data.node_key, data.endpoint, data.stake) == (int(key, 16), "wss://r2", 12 * 10**9)
    assert re.search(r"^  endpoint +wss://r2$", capsys.readouterr().out, re.M)
    with pytest.raises(ScriptError, match="nothing to withdraw"):
        await script(localnet, "provider", ["withdraw", *r], OPERATOR)
    data = await script(localnet, "provider", ["unstake", *r], OPERATOR)
    assert data.unstaking == 12 * 10**9 and data.stake == 0
    with pytest.raises(ScriptError, match="cooldown not over"):
        await script(localnet, "provider", ["withdraw", *r], OPERATOR)
    await asyncio.sleep(max(0.0, data.unlock_at - time.time()) + 1.1)
    data = await script(localnet, "provider", ["withdraw", *r], OPERATOR)
    assert data.unstaking == 0


async def test_a_contract_refusal_becomes_one_line(localnet: LocalnetProcess, params) -> None:
    root = (await script(localnet, "deploy", ["--params", str(params)], OWNER)).root
    args = [
        "register",
        "--root",
        root.address.to_str(),
        "--role",
        "gpu",
        "--stake",
        "10",
        "--endpoint",
        "wss://g",
        "--image",
        "1234",
    ]
    with pytest.raises(ScriptError, match=r"^registration refused: image not allowed"):
        await script(localnet, "provider", args, OPERATOR)


async def test_provider_needs_a_root(localnet: LocalnetProcess) -> None:
    with pytest.raises(ConfigError, match="--root"):
        await script(localnet, "provider", ["status", "--role", "gpu"], OPERATOR)


async def test_config_set_by_the_owner_and_refused_for_anyone_else(localnet: LocalnetProcess, params) -> None:
    root = (await script(localnet, "deploy", ["--params", str(params)], OWNER)).root
    r = ["--root", root.address.to_str()]
    got = await script(localnet, "config", ["set", "prices", *r, "--compute", "2000", "--data", "20"], OWNER)
    assert (got.compute_unit_price, got.data_unit_price) == (2000, 20)
    got = await script(localnet, "config", ["set", "close-delay", *r, "--seconds", "7200"], OWNER)
    assert got.close_delay == 7200
    got = await script(localnet, "config", ["set", "dev-attestation", *r, "--off"], OWNER)
    assert got.dev_attestation is False
    got = await script(localnet, "config", ["set", "dev-attestation", *r, "--on"], OWNER)
    assert got.dev_attestation is True
    with pytest.raises(ScriptError, match="not the owner"):
        await script(localnet, "config", ["set", "dev-attestation", *r, "--off"], OPERATOR)
    with pytest.raises(ScriptError, match="not the owner"):
        await script(localnet, "config", ["set", "prices", *r, "--compute", "1", "--data", "1"], OPERATOR)
    with pytest.raises(ConfigError, match="summing to 10000"):
        await script(localnet, "config", ["set", "splits", *r, "--compute", "1,2,3,4", "--data", "1,2,3,4"], OWNER)


async def test_claim_with_a_real_proof_from_an_epoch_report(
    localnet: LocalnetProcess, params, tmp_path, capsys
) -> None:
    """Revenue into the pool, a 2-of-3 epoch report signed by the validators the params file
    lists, then `provider claim --proof`: a file that contradicts its proof, or a proof of a
    tree the pool never adopted, is refused before anything is sent; a refusal on chain (too
    little value for the proof's forward fee) is one line; the real one pays, and a second
    claim has nothing left."""
    dep = await script(localnet, "deploy", ["--params", str(params)], OWNER)
    pool = dep.pool
    r = ["--root", dep.root.address.to_str(), "--role", "validator"]
    data = await script(localnet, "provider", ["register", *r, "--stake", "10", "--endpoint", "wss://v1"], OPERATOR)
    assert data.reward_pool == pool.address
    owner = " ".join(localnet_mnemonic(OWNER))
    async with await create_network_provider("localnet", env={"WALLET_MNEMONIC": owner}, base_url=localnet.url) as net:
        prov = await dep.root.get_provider_address(net.open(dep.root), data.owner, Role.VALIDATOR)
        compute, data_rev = 2 * TON, TON
        sent = await pool.send_deposit_revenue(
            net.open(pool), net.sender(), value=compute + data_rev + POOL_DEPOSIT_FEE, compute=compute, data=data_rev
        )
        await sent.wait_delivered()
        before = await pool.get_pool_data(net.open(pool))
        cfg = await pool.get_pool_config(net.open(pool))
        split = split_revenue(compute, data_rev, cfg.compute_split, cfg.data_split)
        tree = MerkleSumTree([Leaf(prov, Role.VALIDATOR, before.root_total + split.validator)])
        report = build_report(
            pool.address, before.epoch + 1, compute_consumed=compute, data_consumed=data_rev, tree=tree
        )
        sent = await pool.send_post_epoch_report(
            net.open(pool), net.sender(), report=report, signatures=sign_report(report, VALIDATORS[1:])
        )
        (tx,) = await sent.wait_delivered()
        assert tx.success, tx.exit_code
    proof = tree.proof(0).to_json()
    total = proof["cumulative"]

    lying = tmp_path / "lying.json"  # the file's figures contradict the leaf inside its proof
    lying.write_text(json.dumps({**proof, "cumulative": total + 1}))
    with pytest.raises(ConfigError, match=r"'cumulative' \d+ but the leaf says"):
        await script(localnet, "provider", ["claim", *r, "--proof", str(lying)], OPERATOR)
    unknown = tmp_path / "unknown.json"  # a consistent proof of a tree the pool never adopted
    stranger = MerkleSumTree([Leaf(prov, Role.VALIDATOR, total), Leaf(pool.address, Role.GPU, 1)])
    unknown.write_text(json.dumps(stranger.proof(0).to_json()))
    with pytest.raises(ScriptError, match=r"^claim refused: invalid proof \(not in the pool's epoch \d+ tree"):
        await script(localnet, "provider", ["claim", *r, "--proof", str(unknown)], OPERATOR)
    good = tmp_path / "proof.json"
    good.write_text(json.dumps(proof))
    with pytest.raises(ScriptError) as err:  # CLAIM_FEE alone: the proof's forward fee comes on top
        await script(localnet, "provider", ["claim", *r, "--proof", str(good), "--value", "0.05"], OPERATOR)
    assert str(err.value) == f"claim refused: not enough TON attached (exit code {int(ExitCode.NOT_ENOUGH_VALUE)})"
    assert err.value.exit_code == ExitCode.NOT_ENOUGH_VALUE

    # without --proof: found in the published epochs folder, in the epoch whose tree the pool holds
    epochs = tmp_path / "epochs"
    with pytest.raises(ScriptError, match=r"^nothing to claim: no epoch in .* has the pool's epoch"):
        await script(localnet, "provider", ["claim", *r, "--epochs", str(epochs)], OPERATOR)
    for n, t in ((1, stranger), (2, tree)):  # an older, other tree, then the adopted one
        (epochs / str(n)).mkdir(parents=True)
        (epochs / str(n) / "tree.json").write_text(json.dumps({"merkle_root": t.root_hash.hex()}))
        (epochs / str(n) / "result.json").write_text(
            json.dumps({"providers": [{"provider": prov.to_str(False), "role": int(Role.VALIDATOR),
                                       "proof": t.proof(0).to_json()}]})
        )
    capsys.readouterr()
    data = await script(localnet, "provider", ["claim", *r, "--epochs", str(epochs)], OPERATOR)
    assert data.claimed == total
    out = capsys.readouterr().out
    assert f"reward {fmt_ton(total)} claimed" in out and f"claimed total {fmt_ton(total)}" in out
    assert "received 0 TON" not in out
    with pytest.raises(ScriptError, match=r"^nothing to claim"):
        await script(localnet, "provider", ["claim", *r, "--proof", str(good)], OPERATOR)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**proof, "role": int(Role.GPU)}))
    with pytest.raises(ConfigError, match="'role' 0 but the leaf says 3"):
        await script(localnet, "provider", ["claim", *r, "--proof", str(other)], OPERATOR)
