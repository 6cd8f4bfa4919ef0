"""`cocoon dataset verify DIR [--network NAME]` and `cocoon dataset anchor DIR --root ADDR`.

verify: offline, every record, proof, count and signature (the anchor is not checked);
with `--network`, also the anchor (the transaction it names on that network) and the
signers (of the manifest and of every record) against Root's validator set, Root being
`--root`, else the Root `cocoon deploy` recorded for that network, else the anchor's
address. The first failure ends it in one line, exit 1. On localnet `--url` defaults to the
recorded deployment's, as `--root` does for anchor.

anchor: verifies the dataset offline, sends its manifest digest to Root from the wallet
(`WALLET_MNEMONIC`, as the scripts; localnet and sandbox default to funded wallet 0) and
writes the anchor into manifest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.console import Console
from rich.table import Table

from offchain.errors import ConfigError, DatasetError, GetMethodError, UntrustedValidator

__all__ = ["add_dataset_command"]


def _validator_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise argparse.ArgumentTypeError(f"{text!r} is not a validator key (64 hex digits)")
    return key


def _ton(text: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of TON")
    return int(value * 10**9)


def _print(title: str, rows: list[tuple[str, object]]) -> None:
    t = Table(title=title, show_header=False)
    t.add_column()
    t.add_column(overflow="fold")  # hashes and keys are never cut short
    for name, value in rows:
        t.add_row(name, str(value))
    console = Console()
    (console if console.is_terminal else Console(width=120)).print(t)


async def _network(name: str, url: str | None, *, wallet: bool) -> Any:
    from offchain.ton.network import create_network_provider

    env = dict(os.environ)
    if not wallet:  # reading only: no wallet setting can get in the way
        env.pop("WALLET_MNEMONIC", None)
    return await create_network_provider(name, env=env, base_url=url)


async def _online(args: argparse.Namespace, manifest: Any) -> tuple[str, frozenset[bytes], str]:
    """Check the anchor, read Root's validator set: (Root, its keys, a line about them)."""
    from pytoniq_core import Address

    from offchain.dataset._anchor import check_anchor
    from offchain.ton.transaction import raw
    from wrappers.root import Root

    try:
        root = raw(args.root) if args.root else None
    except Exception as err:  # pytoniq-core's own error types
        raise ConfigError(f"--root: {args.root!r} is not a TON address") from err
    async with await _network(args.network, args.url, wallet=False) as net:
        why = await check_anchor(net, manifest, root=root)
        if why is not None:
            raise DatasetError(why, where="anchor")
        a = manifest.anchor
        root = root or raw(a.address) or ""
        try:
            vs = await Root(Address(root)).get_validator_set(net.provider(root))
        except GetMethodError as err:
            raise DatasetError(f"{root} is not a Root: get_validator_set failed (exit code {err.exit_code})",
                               where="anchor") from err
    keys = frozenset(k.to_bytes(32, "big") for k in vs.validators)
    return root, keys, f"{vs.count} validators, threshold {vs.threshold}"


def _verify(args: argparse.Namespace) -> int:
    from offchain.dataset._dataset import Dataset, verify_dataset

    if args.network is None and (args.root or args.url):
        raise ConfigError("--root and --url need --network (the chain to check the anchor on)")
    root_from = "root" if args.root else "root (the anchor's)"
    if args.network is not None:
        from offchain.deployments import default_root, default_url

        args.url = default_url(args.network, args.url)
        if not args.root:
            args.root = default_root(args.network, None, required=False)
            root_from = "root (the recorded deployment's)" if args.root else root_from
    trust = set(args.trust) if args.trust else None
    validators: list[tuple[str, object]] = []
    if args.network is not None:
        manifest = Dataset.open(args.dir).manifest
        root, keys, summary = asyncio.run(_online(args, manifest))
        trusted = keys if trust is None else keys & trust
        try:
            r = verify_dataset(args.dir, trusted_validators=set(trusted))
        except UntrustedValidator as err:
            if trust is not None and bytes.fromhex(err.validator) not in trust:
                raise
            what = "the manifest" if err.index is None else "this record"
            why = f"validator {err.validator} signed {what} but is not in Root {root}'s validator set"
            if err.index is None:
                raise DatasetError(why, where=err.where) from err
            raise DatasetError(why, index=err.index, shard=err.shard, row=err.row, url=err.url) from err
        checked = "checked"
        signed = f"{summary}; {len(r.signers)} of them signed the manifest, every record is theirs"
        validators = [(root_from, root), ("validator set", signed)]
    else:
        r = verify_dataset(args.dir, trusted_validators=trust)
        checked = "not checked (offline)"
    a = r.anchor
    rows: list[tuple[str, object]] = [
        ("records", r.records), ("bytes", r.bytes), ("hosts", r.hosts), ("shards", r.shards),
        ("merkle root", r.root.hex()), ("record validators", len(r.record_validators)),
        ("anchor", "no anchor" if a is None else f"{checked}: {a.network}, lt {a.lt}"),
    ]
    if a is not None:
        rows += [("anchor account", a.address), ("anchor transaction", a.tx_hash)]
    rows += validators + [("signer", k.hex()) for k in r.signers]
    _print(f"dataset {r.directory}: valid", rows)
    return 0


def _anchor(args: argparse.Namespace) -> int:
    from offchain.dataset._anchor import anchor_manifest
    from offchain.dataset._dataset import Dataset
    from offchain.dataset._format import manifest_digest
    from offchain.deployments import default_root, default_url

    args.root = default_root(args.network, args.root)  # --root, else `cocoon deploy`'s record
    args.url = default_url(args.network, args.url)
    m = Dataset.open(args.dir).manifest
    if m.anchor is not None and not args.force:
        a = m.anchor
        raise ConfigError(f"{args.dir} is anchored already ({a.network} {a.address} lt {a.lt}); "
                          "pass --force to anchor it again")

    async def run() -> Any:
        async with await _network(args.network, args.url, wallet=True) as net:
            return await anchor_manifest(net, args.root, args.dir, value=args.value, timeout=args.timeout)

    try:
        a = asyncio.run(run())
    except ValueError as err:  # a bad --root
        raise ConfigError(f"--root: {err}") from err
    _print(f"dataset {args.dir}: anchored", [
        ("digest", manifest_digest(m).hex()), ("network", a.network), ("root", a.address), ("lt", a.lt),
        ("transaction", a.tx_hash),
    ])
    return 0


def add_dataset_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> Callable[[argparse.Namespace], int]:
    from offchain.ton.network import NETWORKS
    from wrappers.root import ANCHOR_FEE

    d = sub.add_parser("dataset", help="verified datasets (Parquet shards + a manifest validators sign)")
    dsub = d.add_subparsers(dest="dataset_command", required=True)
    dv = dsub.add_parser("verify", help="check every record, proof, count and signature; name the first bad record")
    dv.add_argument("dir", help="the dataset directory (manifest.json, proofs.jsonl, records-*.parquet)")
    dv.add_argument("--trust", action="append", type=_validator_key, metavar="KEY",
                    help="a trusted validator key (64 hex digits); repeat it; default: any signer")
    dv.add_argument("--network", choices=NETWORKS,
                    help="also check the anchor on this network and the signers against Root's validator set "
                         "(default: offline, the anchor is not checked)")
    dv.add_argument("--url", help="API base URL (default on localnet: the recorded deployment's)")
    dv.add_argument("--root", help="the Root the anchor must be on, whose validators must have signed "
                                   "(default: the recorded deployment's, else the anchor's address)")
    da = dsub.add_parser("anchor", help="put the manifest's digest on chain through Root (wallet: WALLET_MNEMONIC) "
                                        "and write the anchor into manifest.json")
    da.add_argument("dir", help="the dataset directory")
    da.add_argument("--root", help="Root's address (default: the recorded deployment's, see `cocoon deploy`)")
    da.add_argument("--network", choices=NETWORKS, default="localnet")
    da.add_argument("--url", help="API base URL (default on localnet: the recorded deployment's)")
    da.add_argument("--value", type=_ton, default=ANCHOR_FEE, metavar="TON",
                    help=f"TON to attach (at least {ANCHOR_FEE / 10**9:g}; the unspent part comes back)")
    da.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for Root's transaction")
    da.add_argument("--force", action="store_true", help="anchor again a dataset that has an anchor")
    return lambda args: _verify(args) if args.dataset_command == "verify" else _anchor(args)
