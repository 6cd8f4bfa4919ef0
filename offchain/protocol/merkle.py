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
from dataclasses import dataclass

from pytoniq_core import Address, Cell, begin_cell

__all__ = [
    "EMPTY_LEAF_HASH",
    "MAX_TOTAL",
    "Leaf",
    "MerkleProof",
    "MerkleSumTree",
    "Role",
    "leaf_hash",
    "node_hash",
]

MAX_TOTAL = (1 << 128) - 1


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
        cell: Cell | None = None
        pairs = list(self.siblings)
        chunks = [pairs[i : i + 2] for i in range(0, len(pairs), 2)]
        for chunk in reversed(chunks):
            b = begin_cell()
            for h, s in chunk:
                b.store_uint(s, 128).store_bytes(h)
            if cell is not None:
                b.store_ref(cell)
            cell = b.end_cell()
        return cell if cell is not None else Cell.empty()

    def size_bytes(self) -> int:
        """Bytes of the proof as sent on chain: 48 per sibling plus the index (4)."""
        return 48 * self.depth + 4


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
