"""Published epochs (`epochs/N/`) and re-checking them, offline and against the chain.

    epochs/N/inputs.json   the canonical EpochInputs (anyone can settle them again)
    epochs/N/result.json   the summary, the signed report's BOC, and per provider: role,
                           this epoch's amount, cumulative total, proof (MerkleProof.to_json)
    epochs/N/tree.json     the tree: root, role totals, depth, root node BOC, every leaf

`verify_published` settles inputs.json again and compares what it gets with result.json
and tree.json (and with the root the pool adopted, when given), naming every difference.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import msgspec
from pytoniq_core import Address

from offchain.fsutil import write_atomic
from offchain.protocol.merkle import MerkleProof, proof_from_json
from offchain.settlement._core import EpochResult, settle
from offchain.settlement._inputs import (
    ROLE_NAMES,
    EpochInputs,
    SettlementError,
    decode_inputs,
    encode_inputs,
    inputs_digest,
    raw_address,
)

__all__ = [
    "AdoptedRoot",
    "adopted_root",
    "find_proof",
    "publish",
    "read_inputs",
    "result_document",
    "tree_document",
    "verify_published",
]


def result_document(result: EpochResult) -> dict[str, Any]:
    """result.json's content: the summary (allocations as `providers`, with proofs) and the
    report's BOC (what validators sign and anyone may post)."""
    doc = msgspec.to_builtins(result.summary)
    allocations = doc.pop("allocations")
    providers = []
    for i, a in enumerate(allocations):
        providers.append({**a, "proof": result.tree.proof(i).to_json()})
    doc["report"] = base64.b64encode(result.report.to_cell().to_boc()).decode()
    doc["providers"] = providers
    return doc


def tree_document(result: EpochResult) -> dict[str, Any]:
    t = result.tree
    return {
        "merkle_root": t.root_hash.hex(),
        "root_total": t.root_total,
        "role_totals": list(t.role_totals),
        "depth": t.depth,
        "root_node": base64.b64encode(t.root_node_proof().to_boc()).decode(),
        "leaves": [
            {"provider": leaf.provider.to_str(is_user_friendly=False), "role": leaf.role, "total": leaf.total}
            for leaf in t.leaves
        ],
    }


def _json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def publish(result: EpochResult, inputs: EpochInputs, directory: Path | str) -> Path:
    """Write epoch `result.epoch` under `directory` (the epochs folder): N/inputs.json,
    N/tree.json, N/result.json (last: its presence marks a whole epoch). Returns N's folder.

    Raises:
        ValueError: `result` was not settled from `inputs`.
    """
    if result.summary.inputs_digest != inputs_digest(inputs).hex():
        raise ValueError("the result was not settled from these inputs (their digests differ)")
    folder = Path(directory) / str(result.epoch)
    folder.mkdir(parents=True, exist_ok=True)
    canonical = encode_inputs(inputs)
    write_atomic(folder / "inputs.json", msgspec.json.format(canonical, indent=2) + b"\n")
    write_atomic(folder / "tree.json", _json(tree_document(result)))
    write_atomic(folder / "result.json", _json(result_document(result)))
    return folder


def read_inputs(folder: Path | str) -> EpochInputs:
    """inputs.json of a published epoch.

    Raises:
        SettlementError: missing, unreadable, or not EpochInputs.
    """
    path = Path(folder) / "inputs.json"
    try:
        return decode_inputs(path.read_bytes())
    except OSError as err:
        raise SettlementError(f"{path}: cannot read it ({err.strerror or err})") from err
    except (msgspec.ValidationError, msgspec.DecodeError) as err:
        raise SettlementError(f"{path}: not epoch inputs ({err})") from err


def _describe(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _diff(file: str, path: str, got: Any, want: Any, out: list[str]) -> None:
    """Every place where the file's `got` is not the recomputed `want`, as sentences."""
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got)):
            sub = f"{path}.{k}" if path else k
            if k not in got:
                out.append(f"{file}: {sub} is missing (recomputed: {_describe(want[k])})")
            elif k not in want:
                out.append(f"{file}: {sub} is not part of an epoch's {file}")
            else:
                _diff(file, sub, got[k], want[k], out)
        return
    if isinstance(want, list) and isinstance(got, list) and path in ("providers", "leaves"):
        _diff_entries(file, path, got, want, out)
        return
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            label = w["name"] if path == "roles" and isinstance(w, dict) else i  # roles[gpu]
            _diff(file, f"{path}[{label}]", g, w, out)
        return
    if got != want or type(got) is not type(want):
        out.append(f"{file}: {path} is {_describe(got)}, recomputed from inputs.json: {_describe(want)}")


def _entry_key(e: Any) -> tuple[str, Any]:
    if not isinstance(e, dict):
        return ("?", repr(e))
    try:
        provider = raw_address(e.get("provider"))
    except ValueError:
        provider = str(e.get("provider"))
    return (provider, e.get("role"))


def _name(key: tuple[str, Any]) -> str:
    provider, role = key
    role_name = ROLE_NAMES[role] if isinstance(role, int) and 0 <= role < len(ROLE_NAMES) else repr(role)
    return f"{provider} ({role_name})"


def _diff_entries(file: str, path: str, got: list[Any], want: list[Any], out: list[str]) -> None:
    """Per-provider entries, matched by (provider, role) so a change names whose it is."""
    want_by = {_entry_key(w): (i, w) for i, w in enumerate(want)}
    got_by: dict[tuple[str, Any], tuple[int, Any]] = {}
    for i, g in enumerate(got):
        k = _entry_key(g)
        if k in got_by:
            out.append(f"{file}: {path} names {_name(k)} twice")
        got_by[k] = (i, g)
    for k, (i, w) in want_by.items():
        if k not in got_by:
            total = w.get("cumulative", w.get("total"))
            out.append(f"{file}: {path} lacks {_name(k)} (recomputed: cumulative {total})")
            continue
        j, g = got_by[k]
        if i != j:
            out.append(f"{file}: {path}: {_name(k)} is entry {j}, recomputed: entry {i}")
        _diff(file, f"{path}[{_name(k)}]", g, w, out)
    for k in got_by:
        if k not in want_by:
            out.append(f"{file}: {path} names {_name(k)}, which the inputs do not give a leaf")


def _load_json(path: Path, out: list[str]) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as err:
        out.append(f"{path.name}: cannot read it ({err.strerror or err})")
    except ValueError as err:
        out.append(f"{path.name}: not JSON ({err})")
    return None


def verify_published(
    directory: Path | str, adopted_root_hash: bytes | int | None = None, adopted_root_total: int | None = None
) -> list[str]:
    """Re-check a published epoch folder (epochs/N): settle inputs.json again and compare
    with result.json and tree.json, and with the root the pool adopted when given (hash as
    32 bytes or an int, and its total). Returns the differences, one sentence each; []
    when everything matches."""
    folder = Path(directory)
    problems: list[str] = []
    try:
        inputs = read_inputs(folder)
    except SettlementError as err:
        return [str(err)]
    try:
        result = settle(inputs)
    except SettlementError as err:
        return [f"inputs.json: cannot be settled: {err}"]
    if folder.name.isdigit() and int(folder.name) != inputs.epoch:
        problems.append(f"inputs.json: epoch {inputs.epoch}, in the folder of epoch {folder.name}")
    result_doc = _load_json(folder / "result.json", problems)
    if result_doc is not None:
        want = result_document(result)
        stated = result_doc.get("inputs_digest") if isinstance(result_doc, dict) else None
        if stated is not None and stated != want["inputs_digest"]:
            problems.append(
                f"inputs.json: its digest is {want['inputs_digest']}, but result.json was computed from "
                f"inputs of digest {stated} (inputs.json was changed after the result)"
            )
            want = {**want, "inputs_digest": stated}  # said once, not again below
        _diff("result.json", "", result_doc, want, problems)
    tree_doc = _load_json(folder / "tree.json", problems)
    if tree_doc is not None:
        _diff("tree.json", "", tree_doc, tree_document(result), problems)
    if adopted_root_hash is not None:
        adopted = adopted_root_hash if isinstance(adopted_root_hash, int) else int.from_bytes(adopted_root_hash, "big")
        if adopted != int.from_bytes(result.tree.root_hash, "big"):
            problems.append(
                f"chain: the pool adopted root {adopted:064x} for epoch {inputs.epoch}, "
                f"the inputs give {result.tree.root_hash.hex()}"
            )
    if adopted_root_total is not None and adopted_root_total != result.tree.root_total:
        problems.append(
            f"chain: the pool adopted root total {adopted_root_total} for epoch {inputs.epoch}, "
            f"the inputs give {result.tree.root_total}"
        )
    return problems


# ---- the chain's side ---------------------------------------------------------------------------


class AdoptedRoot(msgspec.Struct, frozen=True):
    epoch: int
    merkle_root: int
    root_total: int
    where: str  # "the pool's state" or "transaction lt=..."


async def adopted_root(net: Any, pool: str, epoch: int, *, max_transactions: int = 10_000) -> AdoptedRoot:
    """The root the pool adopted for `epoch`: its state if that is its last epoch, else the
    successful PostEpochReport for that epoch among its transactions (newest first, at most
    `max_transactions` looked at). `net` is a NetworkProvider.

    Raises:
        SettlementError: the pool is not deployed / not a pool, has not reached `epoch` yet,
            or no adopted report for it is among the transactions looked at.
    """
    from offchain.errors import GetMethodError
    from wrappers.messages import PostEpochReport
    from wrappers.opcodes import Op
    from wrappers.reward_pool import RewardPool

    addr = raw_address(pool)
    try:
        data = await RewardPool(Address(addr)).get_pool_data(net.provider(addr))
    except GetMethodError as err:
        raise SettlementError(f"{addr} is not a RewardPool: get_pool_data failed (exit code {err.exit_code})") from err
    if data.epoch == epoch:
        return AdoptedRoot(epoch, data.merkle_root, data.root_total, "the pool's state")
    if data.epoch < epoch:
        raise SettlementError(f"epoch {epoch} is not adopted yet: the pool {addr} is at epoch {data.epoch}")
    chain = net.chain
    lt = h = None
    seen = 0
    while seen < max_transactions:
        txs = await chain.get_transactions(addr, limit=50, lt=lt, hash=h)
        if lt is not None:
            txs = [t for t in txs if t.lt != lt]  # (lt, hash) is inclusive
        if not txs:
            break
        for tx in txs:
            seen += 1
            m = tx.in_msg
            if m is None or m.kind != "internal" or m.bounced or not tx.success or m.op != int(Op.POST_EPOCH_REPORT):
                continue
            try:
                report = PostEpochReport.from_cell(m.body).report
            except Exception:  # not the layout: not a report the pool took
                continue
            if report.epoch == epoch:
                return AdoptedRoot(epoch, report.merkle_root, report.root_total, f"transaction lt={tx.lt}")
            if report.epoch < epoch:
                raise SettlementError(f"no adopted report for epoch {epoch} in {addr}'s transactions")
        last = txs[-1]
        lt, h = last.lt, last.hash
    raise SettlementError(f"no adopted report for epoch {epoch} among {addr}'s last {seen} transactions")


def find_proof(directory: Path | str, provider: Address | str, role: int, merkle_root: int) -> MerkleProof | None:
    """The claim proof of (`provider`, `role`) in the published epoch whose tree is the one
    adopted on chain now (`merkle_root`, the pool's), from `directory` (the epochs folder);
    None if no published epoch has that tree or it holds no leaf for them. A proof is only
    good against the current root: an older epoch's would be refused by the pool."""
    want = Address(provider).to_str(is_user_friendly=False) if isinstance(provider, str) else provider.to_str(False)
    root_hex = f"{merkle_root:064x}"
    folders = sorted((p for p in Path(directory).glob("*") if p.name.isdigit()), key=lambda p: -int(p.name))
    for folder in folders:
        try:
            tree = json.loads((folder / "tree.json").read_text())
            if tree.get("merkle_root") != root_hex:
                continue
            result = json.loads((folder / "result.json").read_text())
        except (OSError, ValueError):
            continue
        for entry in result.get("providers", []):
            if entry.get("role") == role and Address(entry["provider"]).to_str(False) == want:
                return proof_from_json(entry["proof"])
        return None
    return None
