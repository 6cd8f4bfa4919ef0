"""Merkle sum tree: proofs verify, sums add up, and nothing can be claimed twice or forged."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytoniq_core import Address

from offchain.protocol.merkle import Leaf, MerkleSumTree, Role, leaf_hash, node_hash


def addr(i: int) -> Address:
    return Address((0, hashlib.sha256(i.to_bytes(4, "big")).digest()))


def leaves(n: int) -> list[Leaf]:
    return [Leaf(addr(i), Role.ALL[i % 4], 1_000 + i) for i in range(n)]


def test_hash_layouts_are_byte_aligned_sha256():
    """The contract hashes builders with HASHEXT_SHA256: plain sha256 of these exact bytes."""
    a = addr(1)
    expected = hashlib.sha256(b"\x00\x00" + a.hash_part + bytes([Role.ROUTER]) + (123).to_bytes(16, "big")).digest()
    assert leaf_hash(a, Role.ROUTER, 123) == expected
    h1, h2 = hashlib.sha256(b"l").digest(), hashlib.sha256(b"r").digest()
    node = hashlib.sha256(b"\x01" + (5).to_bytes(16, "big") + h1 + (7).to_bytes(16, "big") + h2).digest()
    assert node_hash(h1, 5, h2, 7) == node


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 50])
def test_every_leaf_proves_and_root_total_is_the_sum(n):
    tree = MerkleSumTree(leaves(n))
    assert tree.root_total == sum(leaf.total for leaf in tree.leaves)
    for i in range(n):
        proof = tree.proof(i)
        assert proof.verify(tree.root_hash, tree.root_total)


def test_forged_proofs_fail():
    tree = MerkleSumTree(leaves(8))
    proof = tree.proof(3)
    from dataclasses import replace

    assert not replace(proof, leaf=replace(proof.leaf, total=proof.leaf.total + 1)).verify(
        tree.root_hash, tree.root_total
    )
    assert not replace(proof, leaf=replace(proof.leaf, role=(proof.leaf.role + 1) % 4)).verify(
        tree.root_hash, tree.root_total
    )
    assert not replace(proof, leaf=replace(proof.leaf, provider=addr(999))).verify(tree.root_hash, tree.root_total)
    assert not replace(proof, index=proof.index ^ 1).verify(tree.root_hash, tree.root_total)
    assert not replace(proof, index=proof.index + 8).verify(tree.root_hash, tree.root_total)
    # moving value between a sibling sum and the leaf keeps the root total but not the hash
    sib_hash, sib_sum = proof.siblings[0]
    moved = replace(
        proof,
        leaf=replace(proof.leaf, total=proof.leaf.total + 1),
        siblings=((sib_hash, sib_sum - 1), *proof.siblings[1:]),
    )
    assert moved.root()[1] == tree.root_total
    assert not moved.verify(tree.root_hash, tree.root_total)


def test_duplicate_leaves_rejected():
    a = addr(1)
    with pytest.raises(ValueError, match="duplicate"):
        MerkleSumTree([Leaf(a, Role.GPU, 1), Leaf(a, Role.GPU, 2)])
    MerkleSumTree([Leaf(a, Role.GPU, 1), Leaf(a, Role.ROUTER, 2)])  # same owner, other role: fine


def test_deep_sparse_tree_has_fixed_depth_proofs():
    tree = MerkleSumTree(leaves(5), depth=20)
    proof = tree.proof(4)
    assert proof.depth == 20 and proof.size_bytes() == 20 * 48 + 4
    assert proof.verify(tree.root_hash, tree.root_total)
    small = MerkleSumTree(leaves(5), depth=4)
    assert small.proof(4).verify(small.root_hash, small.root_total)
    assert small.root_hash != tree.root_hash and small.root_total == tree.root_total


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**15), min_size=1, max_size=40))
def test_property_sum_and_proofs(totals):
    lv = [Leaf(addr(i), Role.ALL[i % 4], t) for i, t in enumerate(totals)]
    tree = MerkleSumTree(lv)
    assert tree.root_total == sum(totals)
    for i in range(0, len(lv), max(1, len(lv) // 5)):
        assert tree.proof(i).verify(tree.root_hash, tree.root_total)


# ---- proof files (`cocoon provider claim --proof FILE`) -----------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 50])
def test_proof_json_round_trips_to_the_same_cell(n):
    import json

    from offchain.protocol.merkle import proof_cell_from_json, proof_from_json

    tree = MerkleSumTree(leaves(n))
    for i in {0, n // 2, n - 1}:
        proof = tree.proof(i)
        doc = json.loads(json.dumps(proof.to_json()))  # through real JSON text
        assert doc["cumulative"] == proof.leaf.total and doc["depth"] == proof.depth == len(doc["siblings"])
        cumulative, index, depth, cell = proof_cell_from_json(doc)
        assert (cumulative, index, depth) == (proof.leaf.total, proof.index, proof.depth)
        assert cell.hash == proof.to_cell().hash
        back = proof_from_json(doc)
        assert back.provider == proof.leaf.provider and back.role == proof.leaf.role
        assert back.verify(tree.root_hash, tree.root_total)


def test_proof_json_without_the_leaf_still_gives_the_claim_fields():
    from offchain.errors import InvalidMessage
    from offchain.protocol.merkle import proof_from_json

    proof = MerkleSumTree(leaves(4)).proof(2)
    doc = {k: v for k, v in proof.to_json().items() if k not in ("provider", "role")}
    got = proof_from_json(doc)
    assert got.provider is None and got.to_cell().hash == proof.to_cell().hash
    with pytest.raises(InvalidMessage, match="provider and role"):
        got.leaf()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cumulative": -1}, "does not fit in uint128"),
        ({"cumulative": "12"}, "must be an integer"),
        ({"index": 4}, "does not fit a tree of depth 2"),
        ({"depth": 3}, "depth 3 but 2 siblings"),
        ({"siblings": "nope"}, "must be a list"),
        ({"siblings": [[1, "00" * 32], [2]]}, "sibling 1 must be"),
        ({"siblings": [[1, "zz" * 32], [2, "00" * 32]]}, "not hex"),
        ({"siblings": [[1, "00" * 31], [2, "00" * 32]]}, "31 bytes"),
        ({"siblings": [[1 << 128, "00" * 32], [2, "00" * 32]]}, "uint128"),
        ({"provider": "not an address"}, "not an address"),
    ],
)
def test_malformed_proof_files_are_refused(change, message):
    from offchain.errors import InvalidMessage
    from offchain.protocol.merkle import proof_from_json

    doc = {**MerkleSumTree(leaves(4)).proof(1).to_json(), **change}
    with pytest.raises(InvalidMessage, match=message):
        proof_from_json(doc)
