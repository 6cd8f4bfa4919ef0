"""`cocoon status [--network localnet|testnet|mainnet] [--url URL] [--root ADDR] [--json]`.

A table of the network at any time, read through the network provider (getters and account
states only, no wallet):

- Root: owner, version, treasury, prices, split tables, close delay, the `dev` attestation
  bit, per-role terms, the model and image allowlists, routers, validator set and threshold
  (allowlists and routers are read from Root's storage cell: no getter lists them);
- providers by role: address, owner wallet, state, stake, unstaking, claimed, endpoint;
- channels: address, client, router, deposit, redeemed compute and data, state;
- the RewardPool: balance, pots, last epoch, merkle root and total, claimed, carry, per-role
  totals and carries, config version.

Providers and channels are found the way Root learns of them: a `Watcher` over Root's whole
history (a throw-away cursor store) yields each successful `RegisterProvider` that Root
answered with `ConfirmRegistration` (the Provider is that message's destination) and each
`RequestChannelTerms` (the Channel is its sender). Reputation is not on chain: validators
score providers in their own SQLite stores and report it to routers, so the table says so.

`--root` and on localnet `--url` default to what `cocoon deploy` recorded
(`offchain.deployments`). `--json` prints one JSON object (keys below, amounts in nanoTON as
integers, addresses raw) instead of tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offchain.errors import ConfigError

__all__ = ["REPUTATION", "add_status_command", "collect_status", "render"]

REPUTATION = (
    "not on chain: each validator scores the providers it probes in its own SQLite store "
    "(offchain/validator) and reports it to routers, which pick workers and data nodes by it"
)
_ROLES = ("gpu", "bandwidth", "router", "validator")


def _raw(a: Any) -> str | None:
    from offchain.ton.transaction import raw

    return None if a is None else raw(a)


def _hex(v: int) -> str:
    return f"{v:064x}"


async def _history(chain: Any, root: str) -> tuple[list[str], list[str]]:
    """(Provider addresses, Channel addresses) in the order Root first saw them."""
    from offchain.ton.watcher import CursorStore, Watcher
    from wrappers.opcodes import Op

    providers: list[str] = []
    channels: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cocoon-status-") as tmp:
        store = CursorStore(Path(tmp) / "cursor.db")
        try:
            txs = await Watcher(chain, [root], store=store).poll()
        finally:
            store.close()
    for tx in txs:
        m = tx.in_msg
        if m is None or m.kind != "internal" or m.bounced or not tx.success:
            continue
        if m.op == int(Op.REGISTER_PROVIDER):
            for out in tx.out_msgs:
                a = out.dest
                if out.op == int(Op.CONFIRM_REGISTRATION) and a is not None and a not in providers:
                    providers.append(a)
        elif m.op == int(Op.REQUEST_CHANNEL_TERMS) and m.src is not None and m.src not in channels:
            channels.append(m.src)
    return providers, channels


async def collect_status(net: Any, root_address: str, *, url: str | None = None) -> dict[str, Any]:
    """Everything `cocoon status` shows, as the JSON object `--json` prints.

    Keys: network, url, root, params, roles, allowlists, validators, routers, providers (per
    role name, a list), channels, pool, reputation. Amounts are nanoTON integers.

    Raises:
        ConfigError: `root_address` is not an address, or no Root is active there.
        ChainError: the chain could not be read.
    """
    from pytoniq_core import Address

    from wrappers.channel import Channel
    from wrappers.provider import Provider, Role
    from wrappers.reward_pool import RewardPool
    from wrappers.root import Root, RootStorage

    try:
        root_addr = Address(root_address)
    except Exception as err:  # pytoniq-core's own error types
        raise ConfigError(f"--root: {root_address!r} is not a TON address") from err
    root = Root.create_from_address(root_addr)
    raw_root = _raw(root_addr) or ""
    account = await net.chain.get_account(root_addr)
    if account.status != "active" or account.data is None:
        raise ConfigError(f"no Root at {raw_root} on {net.network} (account {account.status}); `cocoon deploy` first")
    rp = net.open(root)
    data = await root.get_root_data(rp)
    params = await root.get_params(rp)
    splits = await root.get_split_tables(rp)
    vset = await root.get_validator_set(rp)
    terms = {r.name.lower(): await root.get_role_params(rp, r) for r in Role}
    storage = RootStorage.from_cell(account.data)
    more = storage.more

    out: dict[str, Any] = {
        "network": net.network,
        "url": url,
        "root": raw_root,
        "params": {
            "owner": _raw(data.owner),
            "pending_owner": _raw(data.pending_owner),
            "version": data.version,
            "treasury": _raw(params.treasury),
            "reward_pool": _raw(params.reward_pool),
            "compute_unit_price": params.compute_unit_price,
            "data_unit_price": params.data_unit_price,
            "close_delay": params.close_delay,
            "dev_attestation": params.dev_attestation,
            "compute_split": {k: getattr(splits.compute, k) for k in ("gpu", "router", "validator", "protocol")},
            "data_split": {k: getattr(splits.data, k) for k in ("bandwidth", "router", "validator", "protocol")},
            "balance": account.balance,
        },
        "roles": {name: {"min_stake": t.min_stake, "cooldown": t.cooldown} for name, t in terms.items()},
        "allowlists": {
            "models": sorted(_hex(h) for h, on in more.model_hashes.items() if on),
            "images": sorted(_hex(h) for h, on in storage.image_hashes.items() if on),
        },
        "validators": {"keys": sorted(_hex(k) for k in vset.validators), "count": vset.count,
                       "threshold": vset.threshold},
        "routers": {_raw(a): ep for a, ep in sorted(more.routers.items(), key=lambda kv: _raw(kv[0]) or "")},
        "reputation": REPUTATION,
    }

    provider_addrs, channel_addrs = await _history(net.chain, raw_root)
    by_role: dict[str, list[dict[str, Any]]] = {name: [] for name in _ROLES}
    for a in provider_addrs:
        p = Provider.create_from_address(Address(a))
        d = await p.get_provider_data(net.open(p))
        by_role[Role(d.role).name.lower()].append({
            "address": a,
            "owner": _raw(d.owner),
            "state": d.state.name.lower(),
            "stake": d.stake,
            "unstaking": d.unstaking,
            "unlock_at": d.unlock_at,
            "claimed": d.claimed,
            "endpoint": d.endpoint,
            "node_key": _hex(d.node_key),
            "image_hash": None if d.image_hash is None else _hex(d.image_hash),
        })
    out["providers"] = by_role
    channels = []
    for a in channel_addrs:
        c = Channel.create_from_address(Address(a))
        d = await c.get_channel_data(net.open(c))
        channels.append({
            "address": a,
            "client": _raw(d.client),
            "router": _raw(d.router),
            "state": d.state.name.lower(),
            "deposit": d.deposit,
            "redeemed_compute": d.redeemed_compute,
            "redeemed_data": d.redeemed_data,
            "unredeemed": d.unredeemed,
            "close_at": d.close_at,
        })
    out["channels"] = channels

    out["pool"] = None
    if params.reward_pool is not None and await net.is_contract_deployed(params.reward_pool):
        pool = RewardPool.create_from_address(params.reward_pool)
        pp = net.open(pool)
        pd = await pool.get_pool_data(pp)
        books = await pool.get_pool_roles(pp)
        out["pool"] = {
            "address": _raw(params.reward_pool),
            "balance": (await net.chain.get_account(params.reward_pool)).balance,
            "compute_pot": pd.compute_pot,
            "data_pot": pd.data_pot,
            "epoch": pd.epoch,
            "merkle_root": _hex(pd.merkle_root),
            "root_total": pd.root_total,
            "claimed": pd.claimed,
            "carry": pd.carry,
            "owed": pd.owed,
            "config_version": pd.config_version,
            "totals": dict(zip(_ROLES, books.totals.as_tuple(), strict=True)),
            "carries": dict(zip(_ROLES, books.carries.as_tuple(), strict=True)),
        }
    return out


# ---- rendering -----------------------------------------------------------------------------
def _ton(nano: int) -> str:
    from decimal import Decimal

    text = f"{Decimal(nano) / 10**9:f}"
    return f"{text.rstrip('0').rstrip('.') if '.' in text else text} TON"


def _f(raw_address: str | None) -> str:
    """An address as the scripts print it (user-friendly, bounceable); tables only, JSON keeps raw."""
    from pytoniq_core import Address

    return "" if raw_address is None else Address(raw_address).to_str()


def _split(s: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in s.items())


def render(status: dict[str, Any], console: Any) -> None:
    """Print `status` (from `collect_status`) as rich tables on `console`."""
    from rich.table import Table

    p = status["params"]
    t = Table(title=f"Root {_f(status['root'])} ({status['network']})", show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    rows: list[tuple[str, str]] = [
        ("owner", _f(p["owner"])),
        ("pending owner", _f(p["pending_owner"]) or "none"),
        ("version", str(p["version"])),
        ("balance", _ton(p["balance"])),
        ("treasury", _f(p["treasury"])),
        ("reward pool", _f(p["reward_pool"]) or "none"),
        ("compute unit price", f"{p['compute_unit_price']} nanoTON"),
        ("data unit price", f"{p['data_unit_price']} nanoTON"),
        ("compute split (bp)", _split(p["compute_split"])),
        ("data split (bp)", _split(p["data_split"])),
        ("close delay", f"{p['close_delay']} s"),
        ("dev attestation", "on (insecure: no TEE hardware)" if p["dev_attestation"] else "off"),
    ]
    for name, r in status["roles"].items():
        rows.append((f"role {name}", f"min stake {_ton(r['min_stake'])}, cooldown {r['cooldown']} s"))
    v = status["validators"]
    rows.append(("validators / threshold", f"{v['count']} / {v['threshold']}"))
    rows += [("validator", k) for k in v["keys"]]
    al = status["allowlists"]
    rows += [("model", h) for h in al["models"]] or [("models", "none allowed")]
    rows += [("image", h) for h in al["images"]] or [("images", "none allowed")]
    rows += [("router", f"{_f(a)} {ep}") for a, ep in status["routers"].items()]
    for k, val in rows:
        t.add_row(k, val)
    console.print(t)

    pt = Table(title="Providers", title_justify="left")
    for col in ("role", "address", "owner", "state", "stake", "unstaking", "claimed", "endpoint"):
        pt.add_column(col, no_wrap=col in ("address", "owner"))
    n = 0
    for role, items in status["providers"].items():
        for it in items:
            n += 1
            pt.add_row(role, _f(it["address"]), _f(it["owner"]), it["state"], _ton(it["stake"]), _ton(it["unstaking"]),
                       _ton(it["claimed"]), it["endpoint"] or "")
    if n:
        console.print(pt)
    else:
        console.print("Providers: none registered")
    console.print(f"reputation: {status['reputation']}")

    ct = Table(title="Channels", title_justify="left")
    for col in ("address", "client", "router", "state", "deposit", "redeemed compute", "redeemed data"):
        ct.add_column(col, no_wrap=col in ("address", "client", "router"))
    for c in status["channels"]:
        ct.add_row(_f(c["address"]), _f(c["client"]), _f(c["router"]), c["state"], _ton(c["deposit"]),
                   _ton(c["redeemed_compute"]), _ton(c["redeemed_data"]))
    if status["channels"]:
        console.print(ct)
    else:
        console.print("Channels: none opened")

    pool = status["pool"]
    if pool is None:
        console.print("RewardPool: not deployed")
        return
    rt = Table(title=f"RewardPool {_f(pool['address'])}", show_header=False, title_justify="left")
    rt.add_column("field", style="bold")
    rt.add_column("value", overflow="fold")
    for k, val in (
        ("balance", _ton(pool["balance"])),
        ("compute pot", _ton(pool["compute_pot"])),
        ("data pot", _ton(pool["data_pot"])),
        ("last epoch", str(pool["epoch"])),
        ("merkle root", pool["merkle_root"]),
        ("root total", _ton(pool["root_total"])),
        ("claimed", _ton(pool["claimed"])),
        ("carry", _ton(pool["carry"])),
        ("owed", _ton(pool["owed"])),
        ("config version", str(pool["config_version"]) if pool["config_version"] >= 0 else "none"),
        *[(f"total {r}", _ton(x)) for r, x in pool["totals"].items()],
        *[(f"carry {r}", _ton(x)) for r, x in pool["carries"].items()],
    ):
        rt.add_row(k, val)
    console.print(rt)


# ---- the command ---------------------------------------------------------------------------
async def _collect(network: str, url: str | None, root: str) -> dict[str, Any]:
    from offchain.ton.network import create_network_provider

    env = dict(os.environ)
    env.pop("WALLET_MNEMONIC", None)  # reading only
    async with await create_network_provider(network, env=env, base_url=url) as net:
        return await collect_status(net, root, url=getattr(net.chain, "base_url", url))


def _status(args: argparse.Namespace) -> int:
    from rich.console import Console

    from offchain.deployments import default_root, default_url

    root = default_root(args.network, args.root) or ""
    url = default_url(args.network, args.url)
    status = asyncio.run(_collect(args.network, url, root))
    if args.json:
        json.dump(status, sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    console = Console()
    render(status, console if console.is_terminal else Console(width=240))
    return 0


def add_status_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> Callable[[argparse.Namespace], int]:
    s = sub.add_parser("status", help="the network now: Root's params, providers by role, channels, the pool")
    s.add_argument("--network", choices=("localnet", "testnet", "mainnet"), default="localnet")
    s.add_argument("--url", help="API base URL (default on localnet: the recorded deployment's)")
    s.add_argument("--root", help="Root's address (default: the recorded deployment's, see `cocoon deploy`)")
    s.add_argument("--json", action="store_true", help="one JSON object (nanoTON as integers) instead of tables")
    return _status
