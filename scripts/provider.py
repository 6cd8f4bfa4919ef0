"""`cocoon provider ...`: register a Provider with Root, inspect it, unstake, withdraw, claim, update its node.

    cocoon provider register --root EQ... --role router --stake 10 --endpoint wss://r1.example.org
    cocoon provider status   --root EQ... --role router
    cocoon provider unstake  --root EQ... --role router
    cocoon provider withdraw --root EQ... --role router [--amount 5]
    cocoon provider claim    --root EQ... --role gpu [--proof proof.json | --epochs epochs] [--value 0.1]
    cocoon provider update-node --root EQ... --role gpu --node-key HEX --endpoint wss://g2.example.org

The wallet is the Provider's owner (one Provider per owner and role). `--root` defaults to
`COCOON_ROOT`, else the Root `cocoon deploy` recorded for the network. Each command checks
what it can before sending (balance, minimum stake, cooldown) and turns an on-chain refusal into one line.

A claim's proof is what the epoch's validators publish for each provider
(`MerkleProof.to_json()`): `{"proof": "base64 BOC of the Merkle-proof cell", "path": int,
"provider": "0:...", "role": int, "cumulative": int}`. Without `--proof` the script finds it
itself in the published epochs folder (`--epochs`, default `$COCOON_EPOCHS` or `epochs`):
the epoch whose tree is the one the pool holds now. The script checks it names this
Provider and walks it against the pool's current tree before sending. The Provider records
the new total and the pool pays `cumulative - claimed` to the owner (a refusal bounces back
and the record goes back down).

`update-node` replaces the node key and endpoint (a TEE worker gets a fresh key at every
boot); the image hash registered with Root stays as it is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from pytoniq_core import Address

from offchain.deployments import default_root
from offchain.errors import ConfigError, InvalidMessage
from offchain.protocol.merkle import MerkleProof, proof_from_json
from offchain.settlement import find_proof
from offchain.ton.network import NetworkProvider
from scripts._common import ScriptError, explain, fmt_ton, follow, parse_ton, progress, require_balance, table
from wrappers.messages import NodeInfo
from wrappers.opcodes import Op
from wrappers.provider import (
    CLAIM_VALUE,
    MAX_NODE_INFO_DEPTH,
    PROVIDER_OP_FEE,
    PROVIDER_STORAGE_RESERVE,
    REGISTER_FEE,
    WITHDRAW_FEE,
    Provider,
    ProviderData,
    ProviderState,
    Role,
)
from wrappers.reward_pool import CLAIM_FEE, RewardPool
from wrappers.root import Root

__all__ = ["run"]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cocoon provider")
    sub = ap.add_subparsers(dest="action", required=True)
    for name in ("register", "status", "unstake", "withdraw", "claim", "update-node"):
        p = sub.add_parser(name)
        p.add_argument(
            "--root", default=os.environ.get("COCOON_ROOT"),
            help="Root address (default: $COCOON_ROOT, else the recorded deployment's)",
        )
        p.add_argument("--role", required=True, choices=[r.name.lower() for r in Role])
        if name == "register":
            p.add_argument("--stake", required=True, help="TON to stake")
            p.add_argument("--endpoint", required=True, help="where peers reach this node (wss://...)")
            p.add_argument("--node-key", help="ed25519 public key of the node, hex (default: derived from the wallet)")
            p.add_argument("--image", help="attested image hash, hex (gpu providers)")
        if name == "update-node":
            p.add_argument("--node-key", required=True, help="the node's new ed25519 public key, hex")
            p.add_argument("--endpoint", required=True, help="where peers reach this node now (wss://...)")
        if name == "withdraw":
            p.add_argument("--amount", help="TON to withdraw (default: everything unlocked)")
        if name == "claim":
            p.add_argument("--proof", type=Path, help="this Provider's proof (JSON; default: found in --epochs)")
            p.add_argument("--epochs", type=Path, default=Path(os.environ.get("COCOON_EPOCHS", "epochs")),
                           help="the published epochs folder (epochs/N/result.json; default %(default)s)")
            p.add_argument(
                "--value",
                default=str(CLAIM_VALUE / 10**9),
                help="TON attached; the unspent part comes back with the reward (default %(default)s; "
                "at least 0.05 plus the proof's forward fee)",
            )
    return ap


def _load_proof(path: Path) -> MerkleProof:
    """The claim proof in `path`.

    Raises:
        ConfigError: unreadable, not JSON, or not a proof.
    """
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"--proof {path}: {err}") from err
    try:
        return proof_from_json(doc)
    except InvalidMessage as err:
        raise ConfigError(f"--proof {path}: {err}") from err


async def _claim(provider: NetworkProvider, p: Provider, role: Role, ns: argparse.Namespace) -> None:
    """Send ClaimReward with the proof in `ns.proof`, wait for the pool's answer, print the reward.

    Raises:
        ScriptError: nothing to claim, no reward pool, or the claim was refused ("claim
            refused: invalid proof (exit code ...)").
        ConfigError: a bad proof file, or one for another Provider.
    """
    d = await _data(provider, p)
    if ns.proof is not None:
        proof = _load_proof(ns.proof)
    else:
        if d.reward_pool is None:
            raise ScriptError("claim refused: this Provider's terms name no reward pool")
        pool = RewardPool.create_from_address(d.reward_pool)
        current = await pool.get_pool_data(provider.open(pool))
        found = find_proof(ns.epochs, p.address, int(role), current.merkle_root)
        if found is None:
            raise ScriptError(
                f"nothing to claim: no epoch in {ns.epochs} has the pool's epoch {current.epoch} tree with a leaf "
                f"for this Provider (give --proof, or --epochs where the validators publish)"
            )
        proof = found
    if proof.leaf.provider != p.address:
        raise ConfigError(f"--proof is for {proof.leaf.provider.to_str()}, not this Provider {p.address.to_str()}")
    if proof.leaf.role != role:
        raise ConfigError(f"--proof is for role {Role(proof.leaf.role).name.lower()}, not {role.name.lower()}")
    if d.reward_pool is None:
        raise ScriptError("claim refused: this Provider's terms name no reward pool")
    if proof.cumulative <= d.claimed:
        raise ScriptError(
            f"nothing to claim: the proof's total {fmt_ton(proof.cumulative)} "
            f"is not above the claimed {fmt_ton(d.claimed)}"
        )
    value = parse_ton(ns.value, "--value")
    if value < CLAIM_FEE:
        raise ConfigError(f"--value must be at least {fmt_ton(CLAIM_FEE)}")
    pool = RewardPool.create_from_address(d.reward_pool)  # check before paying for a refusal
    pd = await pool.get_pool_data(provider.open(pool))
    if not proof.verify(pd.merkle_root.to_bytes(32, "big"), pd.root_total):
        raise ScriptError(f"claim refused: invalid proof (not in the pool's epoch {pd.epoch} tree; nothing sent)")
    await require_balance(provider, value + 10**8, "claiming")
    progress(f"claiming up to {fmt_ton(proof.cumulative)} (claimed so far {fmt_ton(d.claimed)})")
    sent = await p.send_claim_reward(
        provider.open(p),
        provider.sender(),
        cumulative=proof.cumulative,
        path=proof.path,
        proof=proof.cell,
        value=value,
    )
    try:
        txs = await follow(sent)
    except ScriptError as err:
        if err.exit_code is None:
            raise
        raise ScriptError(
            f"claim refused: {explain(err.exit_code)} (exit code {err.exit_code})", exit_code=err.exit_code
        ) from err
    after = await _data(provider, p)
    received = sum(t.value for t in txs if t.op == int(Op.RECEIVE_REWARD))
    print(
        f"reward {fmt_ton(after.claimed - d.claimed)} claimed (received {fmt_ton(received)} with the unspent "
        f"value); claimed total {fmt_ton(after.claimed)}"
    )


def _node_key(text: str) -> int:
    """A 256-bit key from hex (an optional 0x prefix).

    Raises:
        ConfigError: not hex, or longer than 32 bytes.
    """
    try:
        key = int(text.removeprefix("0x"), 16)
    except ValueError as err:
        raise ConfigError(f"--node-key: {text!r} is not hex") from err
    if key >> 256:
        raise ConfigError(f"--node-key: {text!r} is longer than 32 bytes")
    return key


async def _update_node(provider: NetworkProvider, p: Provider, ns: argparse.Namespace) -> None:
    """Send UpdateNode with `ns.node_key` and `ns.endpoint`; the image hash stays.

    Raises:
        ScriptError: not registered, no funds, or refused on chain.
        ConfigError: a bad key, or an endpoint too long for the NodeInfo Root allows.
    """
    d = await _data(provider, p)
    if d.state == ProviderState.UNREGISTERED:
        raise ScriptError(f"not registered: {p.address.to_str()} was never confirmed by Root")
    key = _node_key(ns.node_key)
    node = NodeInfo(image_hash=d.image_hash, node_key=key, endpoint=ns.endpoint)  # what the Provider stores
    if node.to_cell().get_depth() > MAX_NODE_INFO_DEPTH:
        raise ConfigError(
            f"--endpoint is too long ({len(ns.endpoint.encode())} bytes): Root allows two cells (254 bytes)"
        )
    await require_balance(provider, PROVIDER_OP_FEE + 10**8, "updating the node")
    progress(f"updating the node key to {key:064x} and the endpoint to {ns.endpoint}")
    sent = await p.send_update_node(
        provider.open(p), provider.sender(), value=PROVIDER_OP_FEE, node_key=key, endpoint=ns.endpoint
    )
    await follow(sent)


async def _provider(provider: NetworkProvider, root: Root, role: Role) -> Provider:
    owner = provider.sender().address
    return Provider.create_from_address(await root.get_provider_address(provider.open(root), owner, role))


async def _data(provider: NetworkProvider, p: Provider) -> ProviderData:
    if not await provider.is_contract_deployed(p.address):
        raise ScriptError(f"no Provider at {p.address.to_str()}: register first")
    return await p.get_provider_data(provider.open(p))


def _status_rows(p: Provider, d: ProviderData) -> list[tuple[str, str]]:
    rows = [
        ("provider", p.address.to_str()),
        ("role", d.role.name.lower()),
        ("state", d.state.name.lower()),
        ("stake", f"{fmt_ton(d.stake)} (minimum {fmt_ton(d.min_stake)})"),
        ("unstaking", fmt_ton(d.unstaking)),
    ]
    if d.unstaking:
        left = d.unlock_at - int(time.time())
        rows.append(("unlocks", f"at {d.unlock_at}" + (f" (in {left} s)" if left > 0 else " (now)")))
    rows += [
        ("claimed", fmt_ton(d.claimed)),
        ("reward pool", d.reward_pool.to_str() if d.reward_pool else "-"),
        ("endpoint", d.endpoint or "-"),
        ("node key", f"{d.node_key:064x}"),
    ]
    return rows


async def run(provider: NetworkProvider, args: list[str]) -> Any:
    """Run one provider action; returns the Provider's data afterwards.

    Raises:
        ScriptError: refused on chain (below minimum stake, cooldown not over, ...) or no funds.
        ConfigError: missing/bad arguments.
    """
    ns = _parser().parse_args(args)
    ns.root = default_root(provider.network, ns.root)  # --root, COCOON_ROOT, else `cocoon deploy`'s record
    try:
        root = Root.create_from_address(Address(ns.root))
    except Exception as err:
        raise ConfigError(f"--root: {ns.root!r} is not an address") from err
    if not await provider.is_contract_deployed(root.address):
        raise ScriptError(f"no Root at {root.address.to_str()} on {provider.network}")
    role = Role[ns.role.upper()]
    via = provider.sender()
    p = await _provider(provider, root, role)
    pp = provider.open(p)

    if ns.action == "register":
        stake = parse_ton(ns.stake, "--stake")
        terms = await root.get_role_params(provider.open(root), role)
        if stake < terms.min_stake:
            raise ScriptError(f"below minimum stake: {fmt_ton(stake)} < {fmt_ton(terms.min_stake)} for {ns.role}")
        if await provider.is_contract_deployed(p.address) and (await p.get_provider_data(pp)).active:
            raise ScriptError(f"already registered: {p.address.to_str()}")
        value = stake + REGISTER_FEE + PROVIDER_STORAGE_RESERVE
        await require_balance(provider, value + 10**8, f"registering with {fmt_ton(stake)} stake")
        node_key = (
            int(ns.node_key, 16)
            if ns.node_key
            else int.from_bytes(hashlib.sha256(b"cocoon-node" + via.address.hash_part).digest(), "big")
        )
        progress(f"registering {ns.role} provider with Root {root.address.to_str()}")
        sent = await root.send_register_provider(
            provider.open(root),
            via,
            value=value,
            role=role,
            stake=stake,
            node_key=node_key,
            endpoint=ns.endpoint,
            image_hash=int(ns.image, 16) if ns.image else None,
        )
        await follow(sent)
        await provider.wait_for_deploy(p.address, timeout=60)
    elif ns.action == "unstake":
        d = await _data(provider, p)
        if d.stake == 0:
            raise ScriptError("nothing to unstake")
        await require_balance(provider, PROVIDER_OP_FEE + 10**8, "unstaking")
        progress(f"requesting unstake of {fmt_ton(d.stake)}")
        await follow(await p.send_request_unstake(pp, via, value=PROVIDER_OP_FEE))
    elif ns.action == "withdraw":
        d = await _data(provider, p)
        if d.unstaking == 0:
            raise ScriptError("nothing to withdraw: request an unstake first")
        now = int(time.time())
        if d.unlock_at > now:
            raise ScriptError(f"cooldown not over: {fmt_ton(d.unstaking)} unlocks in {d.unlock_at - now} s")
        amount = parse_ton(ns.amount, "--amount") if ns.amount else d.unstaking
        await require_balance(provider, WITHDRAW_FEE + 10**8, "withdrawing")
        progress(f"withdrawing {fmt_ton(amount)}")
        await follow(await p.send_withdraw(pp, via, value=WITHDRAW_FEE, amount=amount))
    elif ns.action == "claim":
        await _claim(provider, p, role, ns)
    elif ns.action == "update-node":
        await _update_node(provider, p, ns)

    d = await _data(provider, p)
    print(table(_status_rows(p, d)))
    return d
