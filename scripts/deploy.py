"""`cocoon deploy`: deploy the foundation's Root with parameters from a TOML file (idempotent).

    cocoon deploy --network localnet --params foundation.toml

The deploying wallet is the owner. Root's address is a function of its code and initial
parameters, so a second run with the same file finds the deployed Root and says so.
RewardPool is not deployed: its contract does not exist yet (Root is configured without one).

Parameter file (every key optional; amounts in TON as strings, prices in nanoTON):

    treasury = "EQ..."                 # default: the deploying wallet
    compute_unit_price = 1000
    data_unit_price = 10
    close_delay = 86400
    models = ["<sha256 hex>"]
    images = ["<sha256 hex>"]
    validators = ["<ed25519 public key hex>"]
    threshold = 1
    [splits.compute]  gpu = 7000, router = 1500, validator = 1000, protocol = 500
    [splits.data]     bandwidth = 7000, router = 1500, validator = 1000, protocol = 500
    [roles.gpu]       min_stake = "10", cooldown = 604800        # also bandwidth, router, validator
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from pytoniq_core import Address

from offchain.errors import ConfigError
from offchain.ton.build import code_cell
from offchain.ton.network import NetworkProvider
from scripts._common import ScriptError, fmt_ton, follow, parse_ton, progress, require_balance, table
from wrappers.messages import ComputeSplit, DataSplit
from wrappers.provider import Role
from wrappers.root import RoleParams, Root, RootConfig, _default_roles, root_config_to_cell

__all__ = ["load_params", "root_config", "run"]

DEPLOY_VALUE = "1"


def load_params(path: Path | None) -> dict[str, Any]:
    """The TOML parameter file as a dict ({} without a file).

    Raises:
        ConfigError: unreadable or not TOML.
    """
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: {err}") from err


def _hashes(values: list[Any], what: str) -> list[int]:
    try:
        return [int(str(v).removeprefix("0x"), 16) for v in values]
    except ValueError as err:
        raise ConfigError(f"{what}: expected hex strings ({err})") from err


def root_config(params: dict[str, Any], owner: Address) -> RootConfig:
    """RootConfig from parsed parameters; the owner is the deploying wallet.

    Raises:
        ConfigError: a parameter is malformed or the contract would reject the configuration.
    """
    roles = dict(_default_roles())
    for name, rp in params.get("roles", {}).items():
        try:
            role = Role[name.upper()]
        except KeyError as err:
            raise ConfigError(f"roles.{name}: unknown role (gpu, bandwidth, router, validator)") from err
        roles[role] = RoleParams(
            min_stake=parse_ton(rp.get("min_stake", roles[role].min_stake / 10**9), f"roles.{name}.min_stake"),
            cooldown=int(rp.get("cooldown", roles[role].cooldown)),
        )
    splits = params.get("splits", {})
    kwargs: dict[str, Any] = {}
    try:
        if "compute" in splits:
            kwargs["compute_split"] = ComputeSplit(**{k: int(v) for k, v in splits["compute"].items()})
        if "data" in splits:
            kwargs["data_split"] = DataSplit(**{k: int(v) for k, v in splits["data"].items()})
        treasury = Address(params["treasury"]) if "treasury" in params else owner
    except (TypeError, ValueError) as err:
        raise ConfigError(f"bad parameter: {err}") from err
    config = RootConfig(
        owner=owner,
        treasury=treasury,
        provider_code=code_cell("Provider"),
        compute_unit_price=int(params.get("compute_unit_price", 0)),
        data_unit_price=int(params.get("data_unit_price", 0)),
        roles=roles,
        close_delay=int(params.get("close_delay", 86400)),
        model_hashes=_hashes(params.get("models", []), "models"),
        image_hashes=_hashes(params.get("images", []), "images"),
        validators=_hashes(params.get("validators", []), "validators"),
        threshold=int(params.get("threshold", 0)),
        **kwargs,
    )
    try:
        root_config_to_cell(config)
    except ValueError as err:
        raise ConfigError(f"parameters rejected: {err}") from err
    return config


def _split(split: ComputeSplit | DataSplit) -> str:
    return ", ".join(f"{f.name} {getattr(split, f.name)}" for f in dataclasses.fields(split))


def _param_rows(config: RootConfig) -> list[tuple[str, str]]:
    rows = [
        ("owner", config.owner.to_str()),
        ("treasury", config.treasury.to_str()),
        ("compute unit price", f"{config.compute_unit_price} nanoTON"),
        ("data unit price", f"{config.data_unit_price} nanoTON"),
        ("compute split (bp)", _split(config.compute_split)),
        ("data split (bp)", _split(config.data_split)),
        ("close delay", f"{config.close_delay} s"),
        ("validators / threshold", f"{len(list(config.validators))} / {config.threshold}"),
        ("models / images", f"{len(list(config.model_hashes))} / {len(list(config.image_hashes))}"),
    ]
    for role, rp in sorted(config.roles.items()):
        rows.append((f"role {role.name.lower()}", f"min stake {fmt_ton(rp.min_stake)}, cooldown {rp.cooldown} s"))
    return rows


async def run(provider: NetworkProvider, args: list[str]) -> Root:
    """Deploy Root (or find it); returns the Root wrapper.

    Raises:
        ScriptError: not enough balance, or the deploy was refused.
        ConfigError: bad parameters.
    """
    ap = argparse.ArgumentParser(prog="cocoon deploy")
    ap.add_argument("--params", type=Path, help="TOML parameter file")
    ap.add_argument("--value", default=DEPLOY_VALUE, help="TON sent with the deploy (default %(default)s)")
    ns = ap.parse_args(args)
    via = provider.sender()
    config = root_config(load_params(ns.params), via.address)
    root = Root.create_from_config(config, code_cell("Root"))
    print(f"Root     {root.address.to_str()}  ({provider.network})")
    print(table(_param_rows(config)))
    if await provider.is_contract_deployed(root.address):
        print("Root is already deployed with these parameters: nothing to do")
        return root
    value = parse_ton(ns.value, "--value")
    await require_balance(provider, value + 10**8, "deploying Root")
    progress(f"sending the deploy from {via.address.to_str()}")
    sent = await root.send_deploy(provider.open(root), via, value=value)
    await follow(sent)
    await provider.wait_for_deploy(root.address, timeout=60)
    if not await provider.is_contract_deployed(root.address):
        raise ScriptError(f"Root {root.address.to_str()} did not become active")
    print(f"Root deployed at {root.address.to_str()}")
    print("RewardPool: not deployed (no RewardPool contract yet)")
    return root
