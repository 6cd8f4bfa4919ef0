"""Merkle *sum* tree over provider earnings, as a tree of TON cells the RewardPool walks.

The tree is made of ordinary cells, so its root hash is the root cell's representation
hash and a proof is a TVM Merkle-proof cell: the path from the root to one leaf, every
other branch pruned. The VM checks a Merkle-proof cell's hash when it loads the message,
so the contract only compares one hash and walks the path: ~100 gas per cell loaded
instead of a sha256 per level over hand-made bytes (33,344 gas a claim at 2^20 leaves
with the earlier binary sha256 tree; see benchmarks/claim_gas.py for today's figure).

    leaf  = cell(provider: address, role: uint8, total: coins)            no references
    node  = cell(sum_3: uint128, sum_2, sum_1, sum_0) + r references      1 <= r <= 4

A node's sums are its children's totals, the last child's first (so the contract picks the
chosen child's sum off the stack by its index) and 0 for a missing child; the root total is
the sum of the root's sums. The contract checks at every node of the path that the sums add up
to what the parent says of it, so every leaf's total is bounded by its branch's share of
the root total: whatever the leaves say, all claims together never exceed the root total.

The root node always has four children, the role subtrees in `Role` order (gpu,
bandwidth, router, validator; an empty role is an empty cell of sum 0), so the root's four
sums are the roles' totals: an epoch report carries the root node (`root_node_proof`, a
Merkle-proof cell with the four children pruned) and the RewardPool bounds each role's
growth by that role's share of the epoch (`offchain.protocol.epoch.split_revenue`). A
claim's path must start into its leaf's role subtree (first branch == role).

Within a role subtree the role's leaves sit in the order given, four to a node, the
subtree as shallow as `ceil(log4(n))` (a role with one leaf has it right under the root),
so a leaf's path is 1 + that many levels long. The path to leaf `i` of role `r` is `r`
then `i`'s base-4 digits, packed two bits a level into `path` with the root's choice in the
lowest bits, under a leading 1 bit that marks the length: `path = 1 << (2 * depth) | digits`.

Hashes are computed here with hashlib over the cells' standard representation (a 2^20
leaf tree in seconds); only a proof's own cells are built with pytoniq-core, whose hashes
the tests compare against.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytoniq_core import Address, Builder, Cell, Slice, begin_cell

from offchain.errors import InvalidMessage
from wrappers.reward_pool import MAX_PROOF_DEPTH

__all__ = [
    "ARITY",
    "MAX_PROOF_DEPTH",
    "MAX_TOTAL",
    "Leaf",
    "MerkleProof",
    "MerkleSumTree",
    "Role",
    "leaf_cell",
    "proof_from_json",
    "walk_proof",
]

ARITY = 4
MAX_TOTAL = (1 << 120) - 1  # what a `coins` field holds

_PRUNED_BRANCH = 1
_MERKLE_PROOF = 3


class Role:
    """Provider roles as the contracts number them (uint8)."""

    GPU = 0
    BANDWIDTH = 1
    ROUTER = 2
    VALIDATOR = 3
    ALL = (GPU, BANDWIDTH, ROUTER, VALIDATOR)


# ---- the cells' standard representation, for hashing without building cells ---------------


def _coins_bits(value: int) -> tuple[int, int]:
    """`value` as a `coins` field: (bits as an int, bit length)."""
    n = (value.bit_length() + 7) // 8
    return (n << (8 * n)) | value, 4 + 8 * n


def _cell_hash(bits: int, nbits: int, refs: list[tuple[bytes, int]]) -> tuple[bytes, int]:
    """(representation hash, depth) of an ordinary level-0 cell with these data bits and
    references given as (hash, depth)."""
    full, rem = divmod(nbits, 8)
    if rem:
        bits = ((bits << 1) | 1) << (7 - rem)  # completion tag
    nbytes = full + (1 if rem else 0)
    head = bytes((len(refs), full + nbytes)) + bits.to_bytes(nbytes, "big")
    depth = 0
    if refs:
        depth = 1 + max(d for _, d in refs)
        head += b"".join(d.to_bytes(2, "big") for _, d in refs) + b"".join(h for h, _ in refs)
    return hashlib.sha256(head).digest(), depth


def _address_bits(a: Address) -> int:
    # addr_std$10 anycast:nothing$0 workchain_id:int8 address:bits256 = 267 bits
    return (0b100 << 264) | ((a.wc & 0xFF) << 256) | int.from_bytes(a.hash_part, "big")


def _check_leaf(role: int, total: int) -> None:
    if not 0 <= total <= MAX_TOTAL:
        raise ValueError("leaf total must fit in coins (120 bits)")
    if not 0 <= role <= 255:
        raise ValueError("role must fit in uint8")


def leaf_cell(provider: Address, role: int, total: int) -> Cell:
    """The leaf as a cell: what the RewardPool reads at the end of a proof."""
    _check_leaf(role, total)
    return begin_cell().store_address(provider).store_uint(role, 8).store_coins(total).end_cell()


_LANE = 128  # bits of each sum in a node


def _lanes(sums: list[int]) -> int:
    """A node's four sums as its 512 data bits (last child first, missing children 0)."""
    bits = 0
    for s in reversed(sums + [0] * (ARITY - len(sums))):
        bits = (bits << _LANE) | s
    return bits


def _node_cell(sums: list[int], refs: list[Cell]) -> Cell:
    b = begin_cell().store_uint(_lanes(sums), ARITY * _LANE)
    for r in refs:
        b.store_ref(r)
    return b.end_cell()


def _pruned(h: bytes, depth: int) -> Cell:
    """A pruned branch standing for a subtree with this (hash, depth)."""
    b = Builder(type_=_PRUNED_BRANCH)
    return b.store_uint(_PRUNED_BRANCH, 8).store_uint(1, 8).store_bytes(h).store_uint(depth, 16).end_cell()


def _merkle_proof(inner: Cell) -> Cell:
    b = Builder(type_=_MERKLE_PROOF).store_uint(_MERKLE_PROOF, 8)
    return b.store_bytes(inner.get_hash(0)).store_uint(inner.get_depth(0), 16).store_ref(inner).end_cell()


@dataclass(frozen=True)
class Leaf:
    provider: Address
    role: int
    total: int

    def hash_and_depth(self) -> tuple[bytes, int]:
        _check_leaf(self.role, self.total)
        coins, nc = _coins_bits(self.total)
        bits = (((_address_bits(self.provider) << 8) | self.role) << nc) | coins
        return _cell_hash(bits, 267 + 8 + nc, [])

    @property
    def hash(self) -> bytes:
        return self.hash_and_depth()[0]

    def cell(self) -> Cell:
        return leaf_cell(self.provider, self.role, self.total)


def _node_hash(children: list[tuple[bytes, int, int]]) -> tuple[bytes, int, int]:
    """(hash, depth, total) of a node over children given as (hash, depth, total)."""
    bits = _lanes([s for _h, _d, s in children])
    h, depth = _cell_hash(bits, ARITY * _LANE, [(h, d) for h, d, _ in children])
    return h, depth, sum(s for _, _, s in children)


# ---- walking a proof, exactly as the contract does -----------------------------------------


def _read_leaf(cell: Cell) -> Leaf:
    try:
        s: Slice = cell.begin_parse()
        leaf = Leaf(s.load_address(), s.load_uint(8), s.load_coins())
    except Exception as err:
        raise InvalidMessage(f"proof: malformed leaf ({err})") from err
    if leaf.provider is None:
        raise InvalidMessage("proof: a leaf without an address")
    return leaf


def _read_sums(cell: Cell) -> list[int]:
    """A node's sums in reference order."""
    try:
        s: Slice = cell.begin_parse()
        return [s.load_uint(_LANE) for _ in range(ARITY)][::-1]
    except Exception as err:
        raise InvalidMessage(f"proof: malformed node ({err})") from err


def walk_proof(proof: Cell, path: int, root_hash: bytes, root_total: int) -> Leaf:
    """The leaf a claim with this proof and path pays, checked as the RewardPool checks it.

    Raises:
        InvalidMessage: not a Merkle-proof cell of this root, a node whose sums do not add
            up to its parent's figure, a path into a pruned branch, a malformed leaf, or a
            leaf outside its role's subtree (the path's first branch is not its role).
    """
    if proof.type_ != _MERKLE_PROOF or len(proof.refs) != 1:
        raise InvalidMessage("proof: not a Merkle-proof cell")
    inner: Cell = proof.refs[0]
    if inner.get_hash(0) != proof.begin_parse().skip_bits(8).load_bytes(32):
        raise InvalidMessage("proof: the Merkle-proof cell's hash is not its content's")
    if inner.get_hash(0) != root_hash:
        raise InvalidMessage("proof: not for this tree (root hash differs)")
    if path < 1:
        raise InvalidMessage("proof: the path has no length marker")
    levels = (path.bit_length() - 1) // 2
    if levels > MAX_PROOF_DEPTH:
        raise InvalidMessage(f"proof: deeper than {MAX_PROOF_DEPTH} levels")
    expected, cell, first = root_total, inner, path & 3
    for level in range(levels + 1):
        if cell.type_ != -1:
            raise InvalidMessage("proof: the path runs into a pruned branch")
        if level == levels:
            if cell.refs:
                raise InvalidMessage("proof: the path ends above the leaves")
            leaf = _read_leaf(cell)
            if leaf.total != expected:
                raise InvalidMessage("proof: the leaf's total is not its branch's sum")
            if levels == 0 or first != leaf.role:
                raise InvalidMessage("proof: the leaf is outside its role's subtree (first branch != role)")
            return leaf
        if not cell.refs:
            raise InvalidMessage("proof: the path runs past a leaf")
        k, path = path & 3, path >> 2
        sums = _read_sums(cell)
        if sum(sums) != expected:
            raise InvalidMessage("proof: a node's sums do not add up")
        if k >= len(cell.refs):
            raise InvalidMessage("proof: the path leaves the tree")
        expected, cell = sums[k], cell.refs[k]
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class MerkleProof:
    """What a claim sends: the leaf's total, the path to it, the Merkle-proof cell."""

    leaf: Leaf
    path: int
    cell: Cell

    @property
    def cumulative(self) -> int:
        return self.leaf.total

    def verify(self, root_hash: bytes, root_total: int) -> bool:
        """Whether the RewardPool would pay this leaf against (root_hash, root_total)."""
        try:
            return walk_proof(self.cell, self.path, root_hash, root_total) == self.leaf
        except InvalidMessage:
            return False

    def to_cell(self) -> Cell:
        return self.cell

    def size_bytes(self) -> int:
        """Bytes of the proof's BOC (what travels owner -> Provider -> pool)."""
        return len(self.cell.to_boc())

    def to_json(self) -> dict[str, Any]:
        """The proof as a provider's claim file (`cocoon provider claim --proof FILE`).

        `proof` (base64 BOC) and `path` are what a claim sends; `provider` (raw address),
        `role` and `cumulative` repeat the leaf so a person (and a tool) can see whose it is.
        `proof_from_json` reads it back and checks the three against the proof.
        """
        return {
            "provider": self.leaf.provider.to_str(is_user_friendly=False),
            "role": self.leaf.role,
            "cumulative": self.leaf.total,
            "path": self.path,
            "proof": base64.b64encode(self.cell.to_boc()).decode(),
        }


def _int(doc: Mapping[str, Any], key: str, bits: int) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMessage(f"proof: {key!r} must be an integer, got {value!r}")
    if not 0 <= value < 1 << bits:
        raise InvalidMessage(f"proof: {key!r} = {value} does not fit in uint{bits}")
    return value


def proof_from_json(doc: Mapping[str, Any]) -> MerkleProof:
    """Read a proof file (the shape `MerkleProof.to_json` writes).

    The leaf is read from the proof itself (walking the path, sums unchecked: the root is
    not known here); `provider`, `role` and `cumulative`, when present, must match it.

    Raises:
        InvalidMessage: a key is missing or malformed, the BOC does not decode to a
            Merkle-proof cell, the path does not reach a leaf, or the leaf differs from
            the file's `provider`/`role`/`cumulative`.
    """
    if not isinstance(doc, Mapping):
        raise InvalidMessage("proof: expected a JSON object")
    path = _int(doc, "path", 2 * (MAX_PROOF_DEPTH - 2))
    raw = doc.get("proof")
    if not isinstance(raw, str):
        raise InvalidMessage("proof: 'proof' must be a base64 BOC string")
    try:
        cell = Cell.one_from_boc(base64.b64decode(raw, validate=True))
    except Exception as err:
        raise InvalidMessage(f"proof: 'proof' is not a base64 BOC ({err})") from err
    if cell.type_ != _MERKLE_PROOF or len(cell.refs) != 1:
        raise InvalidMessage("proof: 'proof' is not a Merkle-proof cell")
    # the tree's own figures: the leaf the path reaches, trusting the sums (checked on claim)
    root = cell.refs[0]
    # a one-leaf tree's root is the leaf itself
    total = sum(_read_sums(root)) if root.refs else _read_leaf(root).total
    leaf = walk_proof(cell, path, root.get_hash(0), total)
    if doc.get("cumulative") is not None and _int(doc, "cumulative", 120) != leaf.total:
        raise InvalidMessage(f"proof: 'cumulative' {doc['cumulative']} but the leaf says {leaf.total}")
    if doc.get("role") is not None and _int(doc, "role", 8) != leaf.role:
        raise InvalidMessage(f"proof: 'role' {doc['role']} but the leaf says {leaf.role}")
    if doc.get("provider") is not None:
        try:
            named = Address(str(doc["provider"]))
        except Exception as err:
            raise InvalidMessage(f"proof: provider {doc['provider']!r} is not an address") from err
        if named != leaf.provider:
            raise InvalidMessage(f"proof: 'provider' {doc['provider']} but the leaf is {leaf.provider.to_str()}")
    return MerkleProof(leaf, path, cell)


_EMPTY = _cell_hash(0, 0, [])  # an empty role's place under the root: an empty cell


class MerkleSumTree:
    """The sum tree over `leaves`: a root node over four role subtrees (`Role` order).

    `leaves` keeps the order given (`proof(i)` proves `leaves[i]`); `role_levels[r][0]`
    holds role `r`'s leaves' (hash, depth, total) in that order, `role_levels[r][-1]` its
    subtree's root (empty for a role without leaves); `role_totals[r]` is its total.
    """

    def __init__(self, leaves: list[Leaf], *, depth: int | None = None) -> None:
        """`depth`: the path length (root level included) every role subtree is padded to
        with single-child nodes on top, when more than its leaves need: a deep tree with few
        leaves, for tests of claim gas against depth."""
        if not leaves:
            raise ValueError("a tree needs at least one leaf")
        seen: set[tuple[str, int]] = set()
        for leaf in leaves:
            if leaf.role not in Role.ALL:
                raise ValueError(f"role {leaf.role} is not a provider role {Role.ALL}")
            key = (leaf.provider.to_str(False), leaf.role)
            if key in seen:
                raise ValueError(f"duplicate leaf for {key}")
            seen.add(key)
        self.leaves = list(leaves)
        # leaf i's place: (role, index within the role)
        self._place: list[tuple[int, int]] = []
        by_role: list[list[Leaf]] = [[] for _ in Role.ALL]
        for leaf in leaves:
            self._place.append((leaf.role, len(by_role[leaf.role])))
            by_role[leaf.role].append(leaf)
        self.role_levels: list[list[list[tuple[bytes, int, int]]]] = []
        tops: list[tuple[bytes, int, int]] = []
        for role_leaves in by_role:
            if not role_leaves:
                self.role_levels.append([])
                tops.append((*_EMPTY, 0))
                continue
            level = [(*leaf.hash_and_depth(), leaf.total) for leaf in role_leaves]
            levels = [level]
            while len(level) > 1 or (depth is not None and len(levels) < depth):
                level = [_node_hash(level[i : i + ARITY]) for i in range(0, len(level), ARITY)]
                levels.append(level)
            if depth is not None and len(levels) != depth:
                raise ValueError(f"{len(role_leaves)} leaves of one role do not fit in depth {depth}")
            self.role_levels.append(levels)
            tops.append(level[0])
        self.role_totals = tuple(t for _h, _d, t in tops)
        self._root_children = tops
        self.root_hash, _depth, self.root_total = _node_hash(tops)
        if self.root_total > MAX_TOTAL:
            raise ValueError("tree total exceeds what coins hold")

    @property
    def depth(self) -> int:
        """The deepest path's length: node levels above the deepest leaf, the root's included."""
        return max(len(levels) for levels in self.role_levels)

    def index_of(self, provider: Address, role: int) -> int:
        for i, leaf in enumerate(self.leaves):
            if leaf.role == role and leaf.provider == provider:
                return i
        raise KeyError(f"no leaf for {provider.to_str()} role {role}")

    def _root_cell(self, child: Cell | None = None, role: int = -1) -> Cell:
        """The root node with every child pruned but `child` (at `role`)."""
        refs = [
            child if r == role and child is not None else _pruned(h, d)
            for r, (h, d, _s) in enumerate(self._root_children)
        ]
        return _node_cell(list(self.role_totals), refs)

    def root_node_proof(self) -> Cell:
        """The root node as a Merkle-proof cell, its four children pruned: what an epoch
        report carries so the RewardPool reads the roles' totals off the tree it adopts."""
        return _merkle_proof(self._root_cell())

    def proof(self, index: int) -> MerkleProof:
        if not 0 <= index < len(self.leaves):
            raise IndexError(index)
        role, i = self._place[index]
        levels = self.role_levels[role]
        cell = self.leaves[index].cell()
        path = 1  # the length marker, shifted up a level at a time
        for d in range(len(levels) - 1):
            first = i - i % ARITY
            group = levels[d][first : first + ARITY]
            refs = [cell if first + j == i else _pruned(h, depth) for j, (h, depth, _s) in enumerate(group)]
            cell = _node_cell([s for _h, _d, s in group], refs)
            path = (path << 2) | (i % ARITY)
            i //= ARITY
        path = (path << 2) | role
        return MerkleProof(self.leaves[index], path, _merkle_proof(self._root_cell(cell, role)))
