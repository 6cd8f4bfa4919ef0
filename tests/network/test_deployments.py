"""Deployments are remembered: `cocoon deploy` records `<COCOON_HOME>/deployments/<network>.json`
and later commands take `--root` (and on localnet `--url`) from it. Against the shared localnet
process; every test has its own COCOON_HOME (tests/conftest.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from offchain.agentkit import load_config
from offchain.cli import main
from offchain.deployments import (
    default_root,
    default_url,
    deployment_path,
    home,
    load_deployment,
    record_deployment,
    using_home,
)
from offchain.errors import ConfigError
from offchain.ton.build import PROJECT_ROOT
from scripts._runner import run_script_async
from wrappers.provider import ProviderState

from .conftest import LocalnetProcess
from .test_scripts import OPERATOR, OWNER, env_for

PARAMS = """
compute_unit_price = 1234
close_delay = 1800
[roles.router]
min_stake = "3"
cooldown = 5
"""


@pytest.fixture
def params(tmp_path: Path) -> Path:
    p = tmp_path / "foundation.toml"
    p.write_text(PARAMS)
    return p


def test_record_then_load_round_trips_and_keeps_the_first_deployed_at(tmp_path: Path) -> None:
    assert load_deployment("localnet", tmp_path) is None
    path = record_deployment("localnet", {"root": "0:" + "ab" * 32, "url": "http://x/api/v2"}, tmp_path)
    assert path == tmp_path / "deployments" / "localnet.json"
    first = load_deployment("localnet", tmp_path)
    assert first is not None and first["root"] == "0:" + "ab" * 32 and first["network"] == "localnet"
    os.utime(path)
    again = record_deployment("localnet", {"root": "0:" + "ab" * 32, "url": "http://y/api/v2"}, tmp_path)
    doc = json.loads(again.read_text())
    assert doc["deployed_at"] == first["deployed_at"] and doc["url"] == "http://y/api/v2"
    assert [p.name for p in path.parent.iterdir()] == ["localnet.json"]  # no temporary file left
    other = record_deployment("localnet", {"root": "0:" + "cd" * 32}, tmp_path)
    assert json.loads(other.read_text())["root"] == "0:" + "cd" * 32


def test_a_broken_record_is_one_line_and_a_record_needs_a_root(tmp_path: Path) -> None:
    path = deployment_path("testnet", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"testnet\.json: not a deployment record") as err:
        load_deployment("testnet", tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="needs 'root'"):
        record_deployment("testnet", {"url": "x"}, tmp_path)


def test_home_is_cocoon_home_else_dot_cocoon_and_using_home_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COCOON_HOME", str(tmp_path / "a"))
    assert home() == tmp_path / "a"
    assert home({}) == Path(".cocoon")
    with using_home(tmp_path / "b"):
        assert home() == tmp_path / "b"
        assert deployment_path("localnet") == tmp_path / "b" / "deployments" / "localnet.json"
    with using_home(None):
        assert home() == tmp_path / "a"


def test_defaults_come_from_the_record_unless_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COCOON_LOCALNET_URL", raising=False)
    with pytest.raises(ConfigError) as err:
        default_root("localnet", None, home=tmp_path)
    assert "run `cocoon deploy --network localnet` first, or pass --root" in str(err.value)
    assert default_root("localnet", None, required=False, home=tmp_path) is None
    assert default_url("localnet", None, home=tmp_path) is None
    record_deployment("localnet", {"root": "0:" + "11" * 32, "url": "http://127.0.0.1:9/api/v2"}, tmp_path)
    assert default_root("localnet", None, home=tmp_path) == "0:" + "11" * 32
    assert default_root("localnet", "EQmine", home=tmp_path) == "EQmine"
    assert default_url("localnet", None, home=tmp_path) == "http://127.0.0.1:9/api/v2"
    assert default_url("localnet", "http://given", home=tmp_path) == "http://given"
    assert default_url("localnet", None, {"COCOON_LOCALNET_URL": "http://env"}, home=tmp_path) is None
    assert default_url("testnet", None, home=tmp_path) is None  # testnet's URL is toncenter's, not a port


def test_agent_config_takes_root_and_url_from_the_deployment(tmp_path: Path) -> None:
    record_deployment("localnet", {"root": "0:" + "22" * 32, "url": "http://127.0.0.1:9/api/v2"}, tmp_path)
    record_deployment("testnet", {"root": "0:" + "33" * 32, "url": "https://toncenter"}, tmp_path)
    env = {"COCOON_HOME": str(tmp_path)}
    cfg = load_config(None, env=env)
    assert (cfg["root"], cfg["url"]) == ("0:" + "22" * 32, "http://127.0.0.1:9/api/v2")
    cfg = load_config(None, env={**env, "COCOON_ROOT": "EQmine", "COCOON_URL": "http://mine"})
    assert (cfg["root"], cfg["url"]) == ("EQmine", "http://mine")
    cfg = load_config(None, env={**env, "COCOON_NETWORK": "testnet"})
    assert cfg["root"] == "0:" + "33" * 32 and "url" not in cfg
    assert "root" not in load_config(None, env={"COCOON_HOME": str(tmp_path / "empty")})


async def test_deploy_records_and_later_scripts_need_no_root_nor_url(
    localnet: LocalnetProcess, params: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dep = await run_script_async(
        "deploy", ["--network", "localnet", "--url", localnet.url, "--params", str(params)], env=env_for(OWNER)
    )
    path = Path(os.environ["COCOON_HOME"]) / "deployments" / "localnet.json"
    assert f"deployment recorded in {path}" in capsys.readouterr().out
    rec = json.loads(path.read_text())
    assert rec["root"] == dep.root.address.to_str(is_user_friendly=False)
    assert rec["reward_pool"] == dep.pool.address.to_str(is_user_friendly=False)
    assert rec["url"] == localnet.url and rec["params"] == str(params.resolve()) and rec["network"] == "localnet"
    assert set(rec["code_hashes"]) == {"Root", "Provider", "Channel", "RewardPool"}
    assert all(len(h) == 64 for h in rec["code_hashes"].values())
    assert rec["owner"] and rec["root_version"] == rec["pool_config_version"] == dep.root_version
    assert isinstance(rec["deployed_at"], int)
    # an idempotent re-run records again, keeping when it was first deployed
    await run_script_async(
        "deploy", ["--network", "localnet", "--url", localnet.url, "--params", str(params)], env=env_for(OWNER)
    )
    assert json.loads(path.read_text())["deployed_at"] == rec["deployed_at"]

    data = await run_script_async(  # neither --root nor --url: both from the record
        "provider", ["--network", "localnet", "register", "--role", "router", "--stake", "3", "--endpoint", "wss://d"],
        env=env_for(OPERATOR),
    )
    assert data.state == ProviderState.ACTIVE and data.root == dep.root.address
    got = await run_script_async(
        "config", ["--network", "localnet", "set", "prices", "--compute", "4321", "--data", "7"], env=env_for(OWNER)
    )
    assert got.compute_unit_price == 4321


async def test_a_run_script_env_home_wins_over_the_process_home(
    localnet: LocalnetProcess, params: Path, tmp_path: Path
) -> None:
    own = tmp_path / "own-home"
    await run_script_async(
        "deploy", ["--network", "localnet", "--url", localnet.url, "--params", str(params)],
        env={**env_for(OWNER), "COCOON_HOME": str(own)},
    )
    assert load_deployment("localnet", own) is not None
    assert load_deployment("localnet") is None  # the process's COCOON_HOME was not written


def test_provider_without_root_or_deployment_is_one_line_naming_cocoon_deploy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["provider", "--network", "localnet", "status", "--role", "gpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no --root given and no localnet deployment recorded" in err[0]
    assert "`cocoon deploy --network localnet`" in err[0]


def test_dataset_anchor_without_root_or_deployment_is_one_line_naming_cocoon_deploy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dataset", "anchor", str(tmp_path), "--network", "localnet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cocoon deploy" in err[0], err


def test_devnet_records_into_its_own_home(tmp_path: Path) -> None:
    from offchain.devnet import Devnet, DevnetConfig

    repo_record = PROJECT_ROOT / ".cocoon" / "deployments" / "localnet.json"
    before = repo_record.stat().st_mtime_ns if repo_record.exists() else None
    d = Devnet(tmp_path, DevnetConfig(workers=0, gateway=False))
    try:
        d.start_localnet()
        d.deploy()
        rec = load_deployment("localnet", tmp_path / "home")
        assert rec is not None and (rec["root"], rec["url"]) == (d.root, d.api_url)
        assert d.sup.env["COCOON_HOME"] == str((tmp_path / "home").resolve())
    finally:
        d.close()
    assert load_deployment("localnet") is None  # not the test's home either
    assert (repo_record.stat().st_mtime_ns if repo_record.exists() else None) == before


def test_every_key_of_the_example_params_file_has_a_comment() -> None:
    lines = (PROJECT_ROOT / "foundation.example.toml").read_text().splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            above = lines[i - 1].lstrip()
            assert "#" in line or above.startswith("#"), f"line {i + 1} has no comment: {line}"


async def test_the_example_params_file_deploys_on_localnet(localnet: LocalnetProcess) -> None:
    from scripts.deploy import load_params, root_config
    from wrappers.root import RootConfig

    example = PROJECT_ROOT / "foundation.example.toml"
    dep = await run_script_async(
        "deploy", ["--network", "localnet", "--url", localnet.url, "--params", str(example)], env=env_for(OWNER)
    )
    assert dep.configured
    rec = load_deployment("localnet")
    assert rec is not None and rec["params"] == str(example) and rec["root"] == dep.root.address.to_str(False)
    # the defaults its comments name are the deploy script's defaults
    cfg = root_config(load_params(example), dep.root.address)
    default = RootConfig(owner=dep.root.address, treasury=dep.root.address, provider_code=cfg.provider_code)
    assert (cfg.compute_split, cfg.data_split, dict(cfg.roles), cfg.close_delay) == (
        default.compute_split, default.data_split, dict(default.roles), default.close_delay
    )
