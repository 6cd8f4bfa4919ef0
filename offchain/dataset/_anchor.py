"""Anchoring a dataset on chain: its manifest digest in one AnchorDataset message to Root.

    async with await create_network_provider("testnet") as net:
        anchor = await anchor_manifest(net, root, "DIR")          # sends, waits, rewrites manifest.json
        why = await check_anchor(net, Dataset.open("DIR").manifest)   # None: the anchor holds

Root logs the digest (DatasetAnchored, an external-out message), keeps none of the value and
touches no storage; the anchoring transaction (Root's address, its lt and hash) goes into the
manifest's `anchor`, which `manifest_digest` leaves out, so the validators' signatures over
the manifest stay valid. Checking reads that one transaction back by (lt, hash) through any
`ChainProvider` (sandbox, localnet, Toncenter).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import msgspec
from pytoniq_core import Address

from offchain.dataset._dataset import Dataset, verify_dataset
from offchain.dataset._format import MANIFEST_FILE, Anchor, Manifest, manifest_digest
from offchain.errors import ContractRefused, DatasetError, ProviderError
from offchain.fsutil import write_atomic
from offchain.ton._chain_types import ChainTx
from offchain.ton.network import ChainProvider, NetworkProvider
from offchain.ton.transaction import raw
from wrappers.messages import AnchorDataset, DatasetAnchored
from wrappers.opcodes import Op
from wrappers.root import ANCHOR_FEE, Root

__all__ = ["anchor_digest", "anchor_manifest", "check_anchor", "check_anchor_digest", "write_anchor"]

_PARSE_ERRORS = (ValueError, IndexError, KeyError, TypeError)


def _chain(x: Any) -> ChainProvider:
    """The ChainProvider of a NetworkProvider or a wallet Sender, or `x` itself."""
    return x.chain if hasattr(x, "chain") else x


def _raw_address(address: Address | str) -> str:
    try:
        return raw(address) or ""
    except Exception as err:  # pytoniq-core raises its own error types on a bad address
        raise ValueError(f"{address!r} is not a TON address") from err


async def anchor_manifest(
    net_or_sender: NetworkProvider | Any,
    root_address: Address | str,
    directory: str | os.PathLike[str],
    *,
    value: int = ANCHOR_FEE,
    query_id: int = 0,
    timeout: float = 60.0,
    verify: bool = True,
) -> Anchor:
    """Anchor `directory`'s manifest digest through Root and record the anchor in its manifest.

    Sends AnchorDataset (`value` attached, ANCHOR_FEE by default; the unspent part comes back)
    from the wallet: `net_or_sender` is a `NetworkProvider` (its `sender()`) or a wallet
    `Sender` with a `chain` (`WalletSender`). Waits for Root's transaction, checks it as
    `check_anchor` would, then rewrites manifest.json with `anchor` set (atomically).
    Cancelling after the message went out leaves it in flight and the manifest unchanged.

    Args:
        verify: first run `verify_dataset` on the directory (in a thread), so that nothing
            is spent on a dataset that does not verify.

    Returns:
        The anchor written into the manifest (network name, Root's raw address, lt, tx hash).

    Raises:
        DatasetError: the dataset does not verify (any of `verify_dataset`'s errors), the
            manifest changed while the message was in flight, or Root's transaction does not
            hold up as an anchor (`where` = "anchor": not a Root?).
        ContractRefused: Root refused the message (`exit_code`: ExitCode.ANCHOR_FEE, ...).
        ProviderError: the wallet could not send, or Root's transaction did not show up.
        ConfigError: no wallet configured (a NetworkProvider without one).
        ValueError: `root_address` is not an address.
    """
    sender = net_or_sender.sender() if isinstance(net_or_sender, NetworkProvider) else net_or_sender
    chain = _chain(net_or_sender)
    root = _raw_address(root_address)
    path = Path(directory)
    if verify:
        await asyncio.to_thread(verify_dataset, path)
    digest = manifest_digest(Dataset.open(path).manifest)
    anchor = await anchor_digest(sender, root, digest, value=value, query_id=query_id, timeout=timeout, chain=chain)
    await asyncio.to_thread(write_anchor, path, anchor, digest=digest)
    return anchor


async def anchor_digest(
    net_or_sender: NetworkProvider | Any,
    root_address: Address | str,
    digest: bytes,
    *,
    value: int = ANCHOR_FEE,
    query_id: int = 0,
    timeout: float = 60.0,
    chain: ChainProvider | None = None,
) -> Anchor:
    """Put any 32-byte `digest` on chain through Root (one AnchorDataset) and return where
    it landed, checked as `check_anchor_digest` would. `anchor_manifest` is this for a
    dataset's manifest; a semantic index (offchain/index) anchors its own manifest's digest.

    Raises:
        ContractRefused, ProviderError, DatasetError: as `anchor_manifest`.
    """
    sender = net_or_sender.sender() if isinstance(net_or_sender, NetworkProvider) else net_or_sender
    chain = chain or _chain(net_or_sender)
    root = _raw_address(root_address)
    sent = await sender.send(to=Address(root), value=value, body=Root.anchor_dataset_body(digest, query_id))
    txs = await sent.wait_delivered(timeout=timeout)
    tx = next((t for t in txs if t.address == root), None)
    if tx is None:
        code = sent.transaction.action_code
        raise ProviderError(
            f"wallet {raw(sender.address)} sent nothing to {root} (action code {code}): is its balance enough?"
        )
    if not tx.success:
        raise ContractRefused("AnchorDataset", root, tx.exit_code if tx.exit_code not in (0, 1) else tx.action_code)
    why = _judge(tx, root, digest)
    if why is not None:
        raise DatasetError(why, where="anchor")
    return Anchor(network=chain.network, address=root, lt=tx.lt, tx_hash=tx.hash.hex())


def write_anchor(directory: str | os.PathLike[str], anchor: Anchor | None, *, digest: bytes | None = None) -> Manifest:
    """Rewrite `directory`'s manifest.json with `anchor` (None: none), atomically (a temporary
    file renamed over it). Everything else, the signatures included, stays as it was.

    Args:
        digest: if given, the manifest's digest must still be this one (it was anchored).

    Raises:
        DatasetMalformed: no readable manifest.
        DatasetError: `digest` is given and the manifest's digest is another.
    """
    path = Path(directory)
    manifest = Dataset.open(path).manifest
    if digest is not None and manifest_digest(manifest) != digest:
        raise DatasetError(f"the manifest changed while its digest {digest.hex()} was being anchored", where="anchor")
    manifest = msgspec.structs.replace(manifest, anchor=anchor)
    write_atomic(path / MANIFEST_FILE, msgspec.json.format(msgspec.json.encode(manifest)) + b"\n")
    return manifest


async def check_anchor(
    chain_or_network: ChainProvider | NetworkProvider, manifest: Manifest, *, root: Address | str | None = None
) -> str | None:
    """Whether `manifest`'s anchor holds on the network `chain_or_network` reaches.

    It holds when the anchor names that network, and (if `root` is given) that Root, and
    the account it names has a transaction at (lt, hash) that was started by an AnchorDataset
    message (internal, not bounced), succeeded, carries `manifest_digest(manifest)` and
    logged the DatasetAnchored of that digest and sender. Reads one transaction.

    Returns:
        None if the anchor holds, else one sentence saying why not (the first failure).

    Raises:
        ProviderError: the network could not be asked (not: the transaction is not there).
    """
    a = manifest.anchor
    if a is None:
        return "the manifest has no anchor (anchor it with `cocoon dataset anchor`)"
    try:
        digest = manifest_digest(manifest)
    except ValueError as err:
        return f"the manifest has no digest: {err}"
    return await check_anchor_digest(chain_or_network, a, digest, root=root)


async def check_anchor_digest(
    chain_or_network: ChainProvider | NetworkProvider, a: Anchor, digest: bytes, *, root: Address | str | None = None
) -> str | None:
    """Whether anchor `a` holds for `digest` (see `check_anchor`): None, or why not."""
    chain = _chain(chain_or_network)
    if a.network != chain.network:
        return f"it is on {a.network}, not on {chain.network}"
    try:
        address = _raw_address(a.address)
    except ValueError as err:
        return str(err)
    if root is not None and address != _raw_address(root):
        return f"it is on {address}, not on Root {_raw_address(root)}"
    tx_hash = bytes.fromhex(a.tx_hash)
    try:
        txs = await chain.get_transactions(address, limit=1, lt=a.lt, hash=tx_hash)
    except ProviderError as err:
        if err.code != 404:
            raise
        txs = []
    tx = txs[0] if txs else None
    if tx is None or tx.lt != a.lt or tx.hash != tx_hash:
        return f"{address} has no transaction at lt {a.lt} with hash {a.tx_hash}"
    return _judge(tx, address, digest)


def _judge(tx: ChainTx, address: str, digest: bytes) -> str | None:
    """Why `tx` (on `address`) is not the anchoring transaction of `digest`, or None."""
    where = f"transaction lt {tx.lt} on {address}"
    if tx.address != address:
        return f"{where} is on {tx.address}"
    m = tx.in_msg
    if m is None or m.kind != "internal" or m.src is None:
        return f"{where} was not started by an internal message, so not by an AnchorDataset"
    if m.bounced:
        return f"{where} is a bounce, not an AnchorDataset"
    if m.op != Op.ANCHOR_DATASET:
        shown = "an empty body" if m.op is None else f"op 0x{m.op:08x}"
        return f"{where} is not an AnchorDataset (its message has {shown})"
    if not tx.success:
        code = tx.exit_code if tx.exit_code not in (0, 1) else tx.action_code
        return f"{where} is an AnchorDataset that failed (exit code {code})"
    try:
        anchored = AnchorDataset.from_cell(m.body).digest.to_bytes(32, "big")
    except _PARSE_ERRORS:
        return f"{where} carries an AnchorDataset that does not parse"
    if anchored != digest:
        return f"{where} anchors digest {anchored.hex()}, not the manifest's digest {digest.hex()}"
    for out in tx.out_msgs:
        if out.kind != "external-out" or out.op != Op.DATASET_ANCHORED:
            continue
        try:
            log = DatasetAnchored.from_cell(out.body)
        except _PARSE_ERRORS:
            continue
        if log.digest.to_bytes(32, "big") == digest and raw(log.sender) == m.src:
            return None
    return f"{where} logged no DatasetAnchored of this digest (is {address} a Root?)"
