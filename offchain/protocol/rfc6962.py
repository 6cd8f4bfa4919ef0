"""The Merkle tree of RFC 6962 (Certificate Transparency; RFC 9162 section 2.1), no I/O.

    leaf hash  = SHA-256(0x00 || data)
    node hash  = SHA-256(0x01 || left || right)
    MTH([])    = SHA-256("")
    MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two below n

The split means a level with an odd number of nodes carries its last node up unchanged
(it is never paired with itself), so the tree is built bottom-up here in O(n). An
inclusion proof (the RFC's audit path) lists sibling hashes from the leaf up; it is
checked with RFC 9162's algorithm, so any CT tool (or `certificate-transparency-go`'s
`merkle` package) re-checks a dataset's root and proofs.

This is the dataset's tree (a standard one, for outsiders to re-check); the TON-cell
sum tree for payouts is `offchain.protocol.merkle`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "inclusion_proof",
    "inclusion_proofs",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_hashes",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one leaf entry."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first, root last (the root level has one hash)."""
    levels = [list(hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        levels.append(above)
    return levels


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """The tree head over leaves given by their leaf hashes (`leaf_hash(data)` each)."""
    return _levels(hashes)[-1][0] if hashes else EMPTY_ROOT


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(leaves): the tree head over these leaf entries (unhashed data, in order)."""
    return root_from_hashes([leaf_hash(d) for d in leaves])


def _path(levels: list[list[bytes]], index: int) -> list[bytes]:
    proof = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index >>= 1
    return proof


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, leaves): the sibling hashes from leaf `index` up to the root.

    Raises:
        IndexError: `index` is not a leaf of this tree.
    """
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    return _path(_levels([leaf_hash(d) for d in leaves]), index)


def inclusion_proofs(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every leaf's inclusion proof at once (O(n log n)), leaves given by their leaf hashes."""
    levels = _levels(hashes)
    return [_path(levels, i) for i in range(len(hashes))]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """Whether `proof` shows leaf hash `leaf` at `index` in the tree of `size` leaves with this root.

    RFC 9162, section 2.1.3.2. A proof of the wrong length, a hash of the wrong size or an
    index outside the tree is simply not a proof (False), never an exception.
    """
    if not 0 <= index < size or len(leaf) != HASH_SIZE:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0 or len(p) != HASH_SIZE:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash
