"""`cocoon config set ...`: the Root owner's updates.

    cocoon config set prices      --root EQ... --compute 1000 --data 10        (nanoTON per unit)
    cocoon config set splits      --root EQ... --compute 7000,1500,1000,500 --data 7000,1500,1000,500
    cocoon config set role        --root EQ... --role gpu --min-stake 10 --cooldown 604800
    cocoon config set close-delay --root EQ... --seconds 86400
    cocoon config set dev-attestation --root EQ... --on | --off     (--on: localnet only, see below)
    cocoon config set treasury    --root EQ... --address EQ...
    cocoon config set reward-pool --root EQ... --address EQ...
    cocoon config set allow       --root EQ... --model <hex> | --image <hex>
    cocoon config set disallow    --root EQ... --model <hex> | --image <hex>
    cocoon config set validators  --root EQ... --keys <hex>,<hex> --threshold 2
    cocoon config set router      --root EQ... --address EQ... [--endpoint wss://...]

Only Root's owner may do these; anyone else gets "refused by ...: not the owner".

`dev-attestation --on` lets agents accept workers without TEE hardware (the `dev`
attestation, explicitly insecure): on testnet or mainnet it is refused before anything is
sent unless `--insecure-dev-attestation` is given too.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from pytoniq_core import Address

from offchain.deployments import default_root
from offchain.errors import ConfigError
from offchain.ton.network import NetworkProvider
from scripts._common import (
    INSECURE_DEV_FLAG,
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
from wrappers.root import Root

__all__ = ["run"]

OWNER_OP_VALUE = 50_000_000  # 0.05 TON with each owner message; the excess comes back


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cocoon config")
    verb = ap.add_subparsers(dest="verb", required=True)
    what = verb.add_parser("set").add_subparsers(dest="what", required=True)

    def sub(name: str) -> argparse.ArgumentParser:
        p = what.add_parser(name)
        p.add_argument(
            "--root", default=os.environ.get("COCOON_ROOT"),
            help="Root address (default: $COCOON_ROOT, else the recorded deployment's)",
        )
        return p

    p = sub("prices")
    p.add_argument("--compute", type=int, required=True)
    p.add_argument("--data", type=int, required=True)
    p = sub("splits")
    p.add_argument("--compute", required=True, help="gpu,router,validator,protocol in basis points")
    p.add_argument("--data", required=True, help="bandwidth,router,validator,protocol in basis points")
    p = sub("role")
    p.add_argument("--role", required=True, choices=[r.name.lower() for r in Role])
    p.add_argument("--min-stake", required=True, help="TON")
    p.add_argument("--cooldown", type=int, required=True, help="seconds")
    sub("close-delay").add_argument("--seconds", type=int, required=True)
    p = sub("dev-attestation")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--on", dest="allowed", action="store_true", help="allow the insecure `dev` attestation")
    g.add_argument("--off", dest="allowed", action="store_false", help="forbid it (the default)")
    p.add_argument(INSECURE_DEV_FLAG, action="store_true", help="needed for --on on testnet/mainnet")
    for name in ("treasury", "reward-pool"):
        sub(name).add_argument("--address", required=True)
    for name in ("allow", "disallow"):
        p = sub(name)
        g = p.add_mutually_exclusive_group(required=True)
        g.add_argument("--model", help="model hash, hex")
        g.add_argument("--image", help="image hash, hex")
    p = sub("validators")
    p.add_argument("--keys", required=True, help="comma-separated ed25519 public keys, hex")
    p.add_argument("--threshold", type=int, required=True)
    p = sub("router")
    p.add_argument("--address", required=True)
    p.add_argument("--endpoint")
    return ap


def _addr(text: str, what: str) -> Address:
    try:
        return Address(text)
    except Exception as err:
        raise ConfigError(f"{what}: {text!r} is not an address") from err


def _hex(text: str, what: str) -> int:
    try:
        return int(text.removeprefix("0x"), 16)
    except ValueError as err:
        raise ConfigError(f"{what}: {text!r} is not hex") from err


def _four(text: str, what: str) -> list[int]:
    try:
        parts = [int(x) for x in text.split(",")]
    except ValueError as err:
        raise ConfigError(f"{what}: expected four integers") from err
    if len(parts) != 4 or sum(parts) != 10_000:
        raise ConfigError(f"{what}: four basis-point shares summing to 10000, got {text!r}")
    return parts


async def run(provider: NetworkProvider, args: list[str]) -> Any:
    """Send one owner update to Root and show the resulting parameters.

    Raises:
        ScriptError: refused on chain (not the owner, invalid split, ...) or no funds.
        ConfigError: bad arguments.
    """
    ns = _parser().parse_args(args)
    ns.root = default_root(provider.network, ns.root)  # --root, COCOON_ROOT, else `cocoon deploy`'s record
    root = Root.create_from_address(_addr(ns.root, "--root"))
    if ns.what == "dev-attestation" and ns.allowed:  # before any chain call: a refusal sends nothing
        guard_dev_attestation(provider.network, insecure=ns.insecure_dev_attestation, what="dev-attestation --on")
    if not await provider.is_contract_deployed(root.address):
        raise ScriptError(f"no Root at {root.address.to_str()} on {provider.network}")
    rp, via, v = provider.open(root), provider.sender(), OWNER_OP_VALUE
    await require_balance(provider, v + 10**8, f"config set {ns.what}")
    progress(f"sending 'set {ns.what}' to Root {root.address.to_str()}")
    w = ns.what
    if w == "prices":
        sent = await root.send_set_prices(rp, via, value=v, compute_unit_price=ns.compute, data_unit_price=ns.data)
    elif w == "splits":
        sent = await root.send_set_splits(
            rp,
            via,
            value=v,
            compute=ComputeSplit(*_four(ns.compute, "--compute")),
            data=DataSplit(*_four(ns.data, "--data")),
        )
    elif w == "role":
        sent = await root.send_set_role_params(
            rp,
            via,
            value=v,
            role=Role[ns.role.upper()],
            min_stake=parse_ton(ns.min_stake, "--min-stake"),
            cooldown=ns.cooldown,
        )
    elif w == "close-delay":
        sent = await root.send_set_close_delay(rp, via, value=v, close_delay=ns.seconds)
    elif w == "dev-attestation":
        sent = await root.send_set_dev_attestation(rp, via, value=v, allowed=ns.allowed)
    elif w == "treasury":
        sent = await root.send_set_treasury(rp, via, value=v, treasury=_addr(ns.address, "--address"))
    elif w == "reward-pool":
        sent = await root.send_set_reward_pool(rp, via, value=v, reward_pool=_addr(ns.address, "--address"))
    elif w in ("allow", "disallow"):
        h = _hex(ns.model or ns.image, "--model/--image")
        fn = {
            ("allow", True): root.send_add_model_hash,
            ("allow", False): root.send_add_image_hash,
            ("disallow", True): root.send_remove_model_hash,
            ("disallow", False): root.send_remove_image_hash,
        }[(w, ns.model is not None)]
        sent = await fn(rp, via, value=v, hash=h)
    elif w == "validators":
        keys = [_hex(k, "--keys") for k in ns.keys.split(",") if k]
        sent = await root.send_set_validators(rp, via, value=v, validators=keys, threshold=ns.threshold)
    else:  # router
        sent = await root.send_set_router(rp, via, value=v, router=_addr(ns.address, "--address"), endpoint=ns.endpoint)
    await follow(sent)
    params = await root.get_params(rp)
    splits = await root.get_split_tables(rp)
    print(
        table(
            [
                ("treasury", params.treasury.to_str()),
                ("reward pool", params.reward_pool.to_str() if params.reward_pool else "-"),
                ("prices (compute/data)", f"{params.compute_unit_price} / {params.data_unit_price} nanoTON"),
                ("close delay", f"{params.close_delay} s"),
                ("dev attestation", "on (insecure: no TEE hardware)" if params.dev_attestation else "off"),
                ("compute split", str(list(vars(splits.compute).values()))),
                ("data split", str(list(vars(splits.data).values()))),
                ("fee attached", fmt_ton(v)),
            ]
        )
    )
    return params
