"""Merkle *sum* tree over provider earnings, hashed exactly as the RewardPool contract does.

Every node commits to its children's hashes and to the sum of the totals below it, so
the root carries the total the tree can ever pay: a claim proven against the root can
never pay out more than the root total, whatever leaves were put in.

Hashes are plain sha256 over byte-aligned fields, which the contract computes with
HASHEXT_SHA256 over a builder (no cell created: a level costs ~200 gas, not ~1,200):

    leaf = sha256(0x00:uint8, workchain:int8, provider_hash:bits256, role:uint8, total:uint128)
    node = sha256(0x01:uint8, left_sum:uint128, left_hash:bits256, right_sum:uint128, right_hash:bits256)

A proof is the list of siblings (hash, sum) from the leaf's level up, and the leaf's
index, whose bits (lowest first) say on which side each sibling sits. Trees are padded
to a power of two with empty leaves (hash of `leaf(addr_none…)` is not used: an empty
slot is the constant `EMPTY`, sum 0), and identical empty subtrees are hashed once, so a
2^20-slot tree with a few thousand real leaves builds in well under a second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytoniq_core import Address, Cell, begin_cell

from offchain.errors import InvalidMessage

__all__ = [
    "EMPTY_LEAF_HASH",
    "MAX_PROOF_DEPTH",
    "MAX_TOTAL",
    "ClaimProof",
    "Leaf",
    "MerkleProof",
    "MerkleSumTree",
    "Role",
    "leaf_hash",
    "node_hash",
    "proof_cell_from_json",
    "proof_from_json",
    "siblings_to_cell",
]

MAX_TOTAL = (1 << 128) - 1
MAX_PROOF_DEPTH = 64  # the deepest proof the RewardPool walks (wrappers.reward_pool.MAX_PROOF_DEPTH)


class Role:
    """Provider roles as the contracts number them (uint8)."""

    GPU = 0
    BANDWIDTH = 1
    ROUTER = 2
    VALIDATOR = 3
    ALL = (GPU, BANDWIDTH, ROUTER, VALIDATOR)


def leaf_hash(provider: Address, role: int, total: int) -> bytes:
    if not 0 <= total <= MAX_TOTAL:
        raise ValueError("leaf total must fit in uint128")
    if not 0 <= role <= 255:
        raise ValueError("role must fit in uint8")
    data = b"\x00" + (provider.wc & 0xFF).to_bytes(1, "big") + provider.hash_part + bytes((role,))
    return hashlib.sha256(data + total.to_bytes(16, "big")).digest()


def node_hash(left: bytes, left_sum: int, right: bytes, right_sum: int) -> bytes:
    return hashlib.sha256(
        b"\x01" + left_sum.to_bytes(16, "big") + left + right_sum.to_bytes(16, "big") + right
    ).digest()


EMPTY_LEAF_HASH = hashlib.sha256(b"cocoon: empty leaf").digest()


@dataclass(frozen=True)
class Leaf:
    provider: Address
    role: int
    total: int

    @property
    def hash(self) -> bytes:
        return leaf_hash(self.provider, self.role, self.total)


@dataclass(frozen=True)
class MerkleProof:
    leaf: Leaf
    index: int
    siblings: tuple[tuple[bytes, int], ...]  # (hash, sum), leaf level first

    @property
    def depth(self) -> int:
        return len(self.siblings)

    def root(self) -> tuple[bytes, int]:
        """The (hash, total) this proof implies; equal to the tree's root iff it is valid."""
        h, s = self.leaf.hash, self.leaf.total
        for level, (sib, sib_sum) in enumerate(self.siblings):
            if (self.index >> level) & 1:
                h = node_hash(sib, sib_sum, h, s)
            else:
                h = node_hash(h, s, sib, sib_sum)
            s += sib_sum
        return h, s

    def verify(self, root_hash: bytes, root_total: int) -> bool:
        if self.index >> self.depth:
            return False
        return self.root() == (root_hash, root_total)

    def to_cell(self) -> Cell:
        """The sibling chain as the contract reads it: two (sum, hash) pairs per cell."""
        return siblings_to_cell(self.siblings)

    def to_json(self) -> dict[str, Any]:
        """The proof as a provider's claim file (`cocoon provider claim --proof FILE`).

        `cumulative`, `index`, `depth` and `siblings` (`[sum, "hex hash"]`, leaf level first)
        are what a claim sends; `provider` (raw address) and `role` name the leaf, so a tool
        can check the file belongs to the claiming Provider. `proof_from_json` reads it back.
        """
        return {
            "provider": self.leaf.provider.to_str(is_user_friendly=False),
            "role": self.leaf.role,
            "cumulative": self.leaf.total,
            "index": self.index,
            "depth": self.depth,
            "siblings": [[s, h.hex()] for h, s in self.siblings],
        }

    def size_bytes(self) -> int:
        """Bytes of the proof as sent on chain: 48 per sibling plus the index (4)."""
        return 48 * self.depth + 4


def siblings_to_cell(siblings: Sequence[tuple[bytes, int]]) -> Cell:
    """A sibling chain `(hash, sum)`, leaf level first, as the RewardPool walks it: two
    `(sum: uint128, hash: bits256)` pairs per cell, the next cell in the first reference."""
    cell: Cell | None = None
    pairs = list(siblings)
    chunks = [pairs[i : i + 2] for i in range(0, len(pairs), 2)]
    for chunk in reversed(chunks):
        b = begin_cell()
        for h, s in chunk:
            b.store_uint(s, 128).store_bytes(h)
        if cell is not None:
            b.store_ref(cell)
        cell = b.end_cell()
    return cell if cell is not None else Cell.empty()


@dataclass(frozen=True)
class ClaimProof:
    """What a claim sends, read from a proof file: the leaf's total, its index, the siblings.

    `provider` and `role` are set when the file names its leaf (files from `to_json` do).
    """

    cumulative: int
    index: int
    siblings: tuple[tuple[bytes, int], ...]
    provider: Address | None = None
    role: int | None = None

    @property
    def depth(self) -> int:
        return len(self.siblings)

    def to_cell(self) -> Cell:
        return siblings_to_cell(self.siblings)

    def leaf(self) -> Leaf:
        """The leaf this proof is for.

        Raises:
            InvalidMessage: the file did not name its provider and role.
        """
        if self.provider is None or self.role is None:
            raise InvalidMessage("the proof does not name its provider and role")
        return Leaf(self.provider, self.role, self.cumulative)

    def verify(self, root_hash: bytes, root_total: int) -> bool:
        """Whether this proof reaches (root_hash, root_total); needs `provider` and `role`."""
        return MerkleProof(self.leaf(), self.index, self.siblings).verify(root_hash, root_total)


def _int(doc: Mapping[str, Any], key: str, bits: int) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMessage(f"proof: {key!r} must be an integer, got {value!r}")
    if not 0 <= value < 1 << bits:
        raise InvalidMessage(f"proof: {key!r} = {value} does not fit in uint{bits}")
    return value


def proof_from_json(doc: Mapping[str, Any]) -> ClaimProof:
    """Read a proof file (the shape `MerkleProof.to_json` writes).

    Required keys: `cumulative`, `index`, `depth`, `siblings` (`[[sum, "hex hash"], ...]`,
    leaf level first, `depth` of them); optional: `provider` (any address form), `role`.

    Raises:
        InvalidMessage: a key is missing or malformed, or the numbers do not fit the claim's
            fields (uint128 sums and total, uint32 index below 2^depth, depth <= 64).
    """
    if not isinstance(doc, Mapping):
        raise InvalidMessage("proof: expected a JSON object")
    cumulative = _int(doc, "cumulative", 128)
    index = _int(doc, "index", 32)
    depth = _int(doc, "depth", 8)
    raw_siblings = doc.get("siblings")
    if not isinstance(raw_siblings, list):
        raise InvalidMessage("proof: 'siblings' must be a list of [sum, hex hash] pairs")
    if depth != len(raw_siblings):
        raise InvalidMessage(f"proof: depth {depth} but {len(raw_siblings)} siblings")
    if depth > MAX_PROOF_DEPTH:
        raise InvalidMessage(f"proof: depth {depth} exceeds {MAX_PROOF_DEPTH}")
    if index >> depth:
        raise InvalidMessage(f"proof: index {index} does not fit a tree of depth {depth}")
    siblings: list[tuple[bytes, int]] = []
    for n, pair in enumerate(raw_siblings):
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise InvalidMessage(f"proof: sibling {n} must be [sum, hex hash]")
        s = _int({"sum": pair[0]}, "sum", 128)
        try:
            h = bytes.fromhex(str(pair[1]).removeprefix("0x"))
        except ValueError as err:
            raise InvalidMessage(f"proof: sibling {n} hash is not hex") from err
        if len(h) != 32:
            raise InvalidMessage(f"proof: sibling {n} hash has {len(h)} bytes, not 32")
        siblings.append((h, s))
    provider = None
    if doc.get("provider") is not None:
        try:
            provider = Address(str(doc["provider"]))
        except Exception as err:
            raise InvalidMessage(f"proof: provider {doc['provider']!r} is not an address") from err
    role = _int(doc, "role", 8) if doc.get("role") is not None else None
    return ClaimProof(cumulative, index, tuple(siblings), provider, role)


def proof_cell_from_json(doc: Mapping[str, Any]) -> tuple[int, int, int, Cell]:
    """`(cumulative, index, depth, proof cell)` for `Provider.claim_reward_body` from a proof file.

    Raises:
        InvalidMessage: as `proof_from_json`.
    """
    p = proof_from_json(doc)
    return p.cumulative, p.index, p.depth, p.to_cell()


class MerkleSumTree:
    """A full binary Merkle sum tree; `levels[0]` are leaves, `levels[-1]` the root."""

    def __init__(self, leaves: list[Leaf], *, depth: int | None = None) -> None:
        need = max(1, (len(leaves) - 1).bit_length()) if leaves else 1
        self.depth = need if depth is None else depth
        if len(leaves) > 1 << self.depth:
            raise ValueError(f"{len(leaves)} leaves do not fit in depth {self.depth}")
        seen: set[tuple[str, int]] = set()
        for leaf in leaves:
            key = (leaf.provider.to_str(False), leaf.role)
            if key in seen:
                raise ValueError(f"duplicate leaf for {key}")
            seen.add(key)
        self.leaves = list(leaves)
        # Each level is stored sparse: only the nodes that differ from the empty subtree.
        empty = [(EMPTY_LEAF_HASH, 0)]
        for _ in range(self.depth):
            h, _s = empty[-1]
            empty.append((node_hash(h, 0, h, 0), 0))
        self._empty = empty
        level = {i: (leaf.hash, leaf.total) for i, leaf in enumerate(leaves)}
        self.levels: list[dict[int, tuple[bytes, int]]] = [level]
        for d in range(self.depth):
            nxt: dict[int, tuple[bytes, int]] = {}
            for parent in {i >> 1 for i in level}:
                lh, ls = level.get(2 * parent, empty[d])
                rh, rs = level.get(2 * parent + 1, empty[d])
                nxt[parent] = (node_hash(lh, ls, rh, rs), ls + rs)
            level = nxt
            self.levels.append(level)
        self.root_hash, self.root_total = self.levels[-1].get(0, empty[self.depth])
        if self.root_total > MAX_TOTAL:
            raise ValueError("tree total exceeds uint128")

    def index_of(self, provider: Address, role: int) -> int:
        for i, leaf in enumerate(self.leaves):
            if leaf.role == role and leaf.provider == provider:
                return i
        raise KeyError(f"no leaf for {provider.to_str()} role {role}")

    def proof(self, index: int) -> MerkleProof:
        if not 0 <= index < len(self.leaves):
            raise IndexError(index)
        siblings = []
        i = index
        for d in range(self.depth):
            siblings.append(self.levels[d].get(i ^ 1, self._empty[d]))
            i >>= 1
        return MerkleProof(self.leaves[index], index, tuple(siblings))
