"""`cocoon deploy`: deploy the foundation's Root and RewardPool from a TOML file (idempotent).

    cocoon deploy --network localnet --params foundation.example.toml

The deploying wallet is the owner. The result is remembered in
`$COCOON_HOME/deployments/<network>.json` (default `./.cocoon`; `offchain.deployments`), so
later commands need no `--root` (nor, on localnet, `--url`). Four steps, each skipped when the chain already shows
its result, so a second run with the same file finds everything in place and says so:

1. Root, deployed with the Provider, Channel and RewardPool codes and *no* reward pool:
   its address is a function of its code and initial parameters only.
2. The RewardPool at the address derived from Root's (`RewardPoolConfig(root)`), deployed
   with an empty body and its StateInit.
3. `SetRewardPool` (owner only): Root names the pool in every role's terms and in the
   channel terms it hands out.
4. `PushPoolConfig` (anyone): Root sends its split tables, validator set and treasury to
   the pool; repeated whenever Root's version is newer than the pool's copy (after a
   `cocoon config set`, a deploy run brings the pool up to date).

Parameter file (every key optional; amounts in TON as strings, prices in nanoTON):

    treasury = "EQ..."                 # default: the deploying wallet
    compute_unit_price = 1000
    data_unit_price = 10
    close_delay = 86400
    dev_attestation = false            # default: true on localnet/sandbox, false elsewhere
    models = ["<sha256 hex>"]
    images = ["<sha256 hex>"]
    validators = ["<ed25519 public key hex>"]
    threshold = 1
    [splits.compute]  gpu = 7000, router = 1500, validator = 1000, protocol = 500
    [splits.data]     bandwidth = 7000, router = 1500, validator = 1000, protocol = 500
    [roles.gpu]       min_stake = "10", cooldown = 604800        # also bandwidth, router, validator

`dev_attestation` lets agents accept the `dev` attestation: a worker without TEE hardware,
explicitly insecure. It is on by default on localnet and sandbox only; on testnet or mainnet
it is refused (before anything is sent) unless `--insecure-dev-attestation` is given, which
also turns it on there.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytoniq_core import Address

from offchain.deployments import record_deployment
from offchain.errors import ConfigError
from offchain.ton.build import code_cell
from offchain.ton.network import NetworkProvider
from scripts._common import (
    INSECURE_DEV_FLAG,
    LOCAL_NETWORKS,
    ScriptError,
    fmt_ton,
    follow,
    guard_dev_attestation,
    parse_ton,
    progress,
    require_balance,
    table,
)
from wrappers.messages import ComputeSplit, DataSplit
from wrappers.provider import Role
from wrappers.reward_pool import POOL_STORAGE_RESERVE, RewardPool, RewardPoolConfig
from wrappers.root import RoleParams, Root, RootConfig, _default_roles, root_config_to_cell

__all__ = ["Deployment", "dev_attestation", "load_params", "root_config", "run"]

DEPLOY_VALUE = "1"
POOL_DEPLOY_VALUE = 2 * POOL_STORAGE_RESERVE  # the pool's storage reserve, and some to spare
OWNER_OP_VALUE = 50_000_000  # SetRewardPool / PushPoolConfig; the excess comes back
GAS_MARGIN = 10**8
CONTRACTS = ("Root", "Provider", "Channel", "RewardPool")


@dataclass(frozen=True)
class Deployment:
    """What a deploy run leaves on chain: Root, its RewardPool and the pool's config version."""

    root: Root
    pool: RewardPool
    root_version: int
    pool_config_version: int  # -1: the pool has no config yet

    @property
    def configured(self) -> bool:
        return self.pool_config_version == self.root_version


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


def dev_attestation(params: dict[str, Any], network: str, *, insecure: bool = False) -> bool:
    """Whether Root is deployed with the insecure `dev` attestation allowed.

    On localnet and sandbox it is on unless `dev_attestation = false`; elsewhere it is off,
    and on only with `insecure` (the `--insecure-dev-attestation` flag).

    Raises:
        ConfigError: `dev_attestation` is not a boolean, or it is asked for on testnet or
            mainnet without `insecure`.
    """
    value = params.get("dev_attestation")
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"dev_attestation: expected true or false, got {value!r}")
    if insecure:
        return True
    if network in LOCAL_NETWORKS:
        return True if value is None else value
    if value:
        guard_dev_attestation(network, insecure=False, what="dev_attestation = true")
    return False


def root_config(params: dict[str, Any], owner: Address, *, dev_attestation: bool = False) -> RootConfig:
    """RootConfig from parsed parameters; the owner is the deploying wallet. Whether the
    insecure `dev` attestation is allowed is decided by `dev_attestation()`, not read here.

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
        channel_code=code_cell("Channel"),
        reward_pool_code=code_cell("RewardPool"),
        reward_pool=None,  # set after deploy: the pool's address depends on Root's
        compute_unit_price=int(params.get("compute_unit_price", 0)),
        data_unit_price=int(params.get("data_unit_price", 0)),
        roles=roles,
        close_delay=int(params.get("close_delay", 86400)),
        model_hashes=_hashes(params.get("models", []), "models"),
        image_hashes=_hashes(params.get("images", []), "images"),
        validators=_hashes(params.get("validators", []), "validators"),
        threshold=int(params.get("threshold", 0)),
        dev_attestation=dev_attestation,
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
        ("dev attestation", "on (insecure: no TEE hardware)" if config.dev_attestation else "off"),
        ("validators / threshold", f"{len(list(config.validators))} / {config.threshold}"),
        ("models / images", f"{len(list(config.model_hashes))} / {len(list(config.image_hashes))}"),
    ]
    for role, rp in sorted(config.roles.items()):
        rows.append((f"role {role.name.lower()}", f"min stake {fmt_ton(rp.min_stake)}, cooldown {rp.cooldown} s"))
    return rows


async def _state(provider: NetworkProvider, root: Root, pool: RewardPool) -> tuple[Address | None, int, int]:
    """(Root's reward pool, Root's version, the pool's config version or -1)."""
    rp = provider.open(root)
    params = await root.get_params(rp)
    version = (await root.get_root_data(rp)).version
    pool_version = -1
    if await provider.is_contract_deployed(pool.address):
        pool_version = (await pool.get_pool_data(provider.open(pool))).config_version
    return params.reward_pool, version, pool_version


async def run(provider: NetworkProvider, args: list[str]) -> Deployment:
    """Deploy Root and its RewardPool and configure them (or find them so); returns the result.

    Raises:
        ScriptError: not enough balance, a step was refused (e.g. the wallet is not the owner
            of an existing Root), or an account did not become active.
        ConfigError: bad parameters.
    """
    ap = argparse.ArgumentParser(prog="cocoon deploy")
    ap.add_argument("--params", type=Path, help="TOML parameter file")
    ap.add_argument("--value", default=DEPLOY_VALUE, help="TON sent with Root's deploy (default %(default)s)")
    ap.add_argument(
        INSECURE_DEV_FLAG, action="store_true", help="allow the `dev` attestation (no TEE hardware) on testnet/mainnet"
    )
    ns = ap.parse_args(args)
    params = load_params(ns.params)
    # decided before any chain call: a refusal sends nothing
    dev = dev_attestation(params, provider.network, insecure=ns.insecure_dev_attestation)
    via = provider.sender()
    config = root_config(params, via.address, dev_attestation=dev)
    root = Root.create_from_config(config, code_cell("Root"))
    pool = RewardPool.create_from_config(RewardPoolConfig(root.address), code_cell("RewardPool"))
    print(f"Root        {root.address.to_str()}  ({provider.network})")
    print(f"RewardPool  {pool.address.to_str()}")
    done: list[str] = []

    if await provider.is_contract_deployed(root.address):
        print("Root is already deployed with these parameters")
    else:
        value = parse_ton(ns.value, "--value")
        await require_balance(provider, value + POOL_DEPLOY_VALUE + 2 * OWNER_OP_VALUE + GAS_MARGIN, "deploying Root")
        progress(f"sending Root's deploy from {via.address.to_str()}")
        await follow(await root.send_deploy(provider.open(root), via, value=value))
        await provider.wait_for_deploy(root.address, timeout=60)
        if not await provider.is_contract_deployed(root.address):
            raise ScriptError(f"Root {root.address.to_str()} did not become active")
        print(f"Root deployed at {root.address.to_str()}")
        done.append("root")

    if await provider.is_contract_deployed(pool.address):
        print("RewardPool is already deployed")
    else:
        await require_balance(provider, POOL_DEPLOY_VALUE + GAS_MARGIN, "deploying the RewardPool")
        progress("sending the RewardPool's deploy")
        await follow(await pool.send_deploy(provider.open(pool), via, value=POOL_DEPLOY_VALUE))
        await provider.wait_for_deploy(pool.address, timeout=60)
        print(f"RewardPool deployed at {pool.address.to_str()}")
        done.append("pool")

    reward_pool, version, pool_version = await _state(provider, root, pool)
    if reward_pool != pool.address:
        await require_balance(provider, OWNER_OP_VALUE + GAS_MARGIN, "setting Root's reward pool")
        was = f" (it names {reward_pool.to_str()})" if reward_pool is not None else ""
        progress(f"setting Root's reward pool to the derived pool{was} (owner only)")
        await follow(
            await root.send_set_reward_pool(provider.open(root), via, value=OWNER_OP_VALUE, reward_pool=pool.address)
        )
        reward_pool, version, pool_version = await _state(provider, root, pool)
        print(f"Root's reward pool set (Root version {version})")
        done.append("set")
    if pool_version != version:
        await require_balance(provider, OWNER_OP_VALUE + GAS_MARGIN, "pushing the pool config")
        progress(f"pushing Root's config version {version} to the pool (it has {pool_version})")
        await follow(await root.send_push_pool_config(provider.open(root), via, value=OWNER_OP_VALUE))
        reward_pool, version, pool_version = await _state(provider, root, pool)
        if pool_version != version:
            raise ScriptError(f"the pool did not adopt Root's config version {version} (it has {pool_version})")
        print(f"pool config pushed (version {pool_version})")
        done.append("push")

    rows = [
        *_param_rows(config),
        ("reward pool", pool.address.to_str()),
        ("pool config version", f"{pool_version if pool_version >= 0 else 'none'} (Root version {version})"),
    ]
    print(table(rows))
    if not list(config.validators):
        # the contracts need at least one validator signature for any epoch or slash
        print("note: no validator set: epoch reports and slashing orders are refused until `config set` names some")
    if not done:
        print("Root and RewardPool are already deployed and configured: nothing to do")
    if provider.network != "sandbox":  # an in-process chain is gone when the command ends
        path = record_deployment(
            provider.network,
            {
                "root": root.address.to_str(is_user_friendly=False),
                "reward_pool": pool.address.to_str(is_user_friendly=False),
                "code_hashes": {name: code_cell(name).hash.hex() for name in CONTRACTS},
                "owner": via.address.to_str(is_user_friendly=False),
                "params": str(ns.params.resolve()) if ns.params is not None else None,
                "url": getattr(provider.chain, "base_url", None),
                "root_version": version,
                "pool_config_version": pool_version,
                "dev_attestation": dev,
            },
        )
        print(f"deployment recorded in {path}")
    return Deployment(root=root, pool=pool, root_version=version, pool_config_version=pool_version)
