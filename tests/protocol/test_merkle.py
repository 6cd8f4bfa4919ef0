"""Merkle sum tree: hashes are real cell hashes, proofs verify, sums add up, forgeries fail."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytoniq_core import Address, Builder, Cell, begin_cell

from offchain.errors import InvalidMessage
from offchain.protocol.merkle import ARITY, Leaf, MerkleProof, MerkleSumTree, Role, proof_from_json, walk_proof


def addr(i: int) -> Address:
    return Address((0, hashlib.sha256(i.to_bytes(4, "big")).digest()))


def leaves(n: int) -> list[Leaf]:
    return [Leaf(addr(i), Role.ALL[i % 4], 1_000 + i) for i in range(n)]


def node_cell(children: list[tuple[Cell, int]]) -> Cell:
    """A node built the slow way, straight from the layout in merkle.py's docstring."""
    sums = [s for _c, s in children] + [0] * (ARITY - len(children))
    b = begin_cell()
    for s in reversed(sums):
        b = b.store_uint(s, 128)
    for c, _s in children:
        b = b.store_ref(c)
    return b.end_cell()


def subtree_cell(lv: list[Leaf]) -> tuple[Cell, int]:
    """One role's subtree: its leaves four to a node, the leaf itself when alone."""
    level = [(leaf.cell(), leaf.total) for leaf in lv]
    while len(level) > 1:
        level = [
            (node_cell(level[i : i + ARITY]), sum(s for _c, s in level[i : i + ARITY]))
            for i in range(0, len(level), ARITY)
        ]
    return level[0]


def full_tree_cell(lv: list[Leaf]) -> Cell:
    """The root over the four role subtrees (an empty cell of sum 0 for an empty role)."""
    roles = [[leaf for leaf in lv if leaf.role == r] for r in Role.ALL]
    return node_cell([subtree_cell(group) if group else (begin_cell().end_cell(), 0) for group in roles])


def merkle_proof_cell(top: Cell) -> Cell:
    b = Builder(type_=3).store_uint(3, 8).store_bytes(top.get_hash(0)).store_uint(top.get_depth(0), 16)
    return b.store_ref(top).end_cell()


@pytest.mark.parametrize("n", [1, 2, 4, 5, 16, 17, 70])
def test_fast_hashes_are_the_cells_representation_hashes(n):
    """The tree hashes with hashlib over the standard cell representation; pytoniq-core's
    cells (what the VM sees) have the same hashes."""
    lv = leaves(n)
    assert all(leaf.hash == leaf.cell().hash for leaf in lv)
    assert MerkleSumTree(lv).root_hash == full_tree_cell(lv).hash
    one_role = [replace(leaf, role=Role.ROUTER) for leaf in lv]
    assert MerkleSumTree(one_role).root_hash == full_tree_cell(one_role).hash


def test_root_children_are_the_role_subtrees_and_paths_start_with_the_role():
    """Leaves are grouped by role under the root (whatever order they come in), the root's
    sums are the roles' totals, and every path's first branch is its leaf's role."""
    lv = [Leaf(addr(i), (Role.ROUTER, Role.GPU, Role.ROUTER)[i % 3], 10 + i) for i in range(9)]
    tree = MerkleSumTree(lv)
    gpu = sum(leaf.total for leaf in lv if leaf.role == Role.GPU)
    router = sum(leaf.total for leaf in lv if leaf.role == Role.ROUTER)
    assert tree.role_totals == (gpu, 0, router, 0) and tree.root_total == gpu + router
    assert tree.depth == 3  # 6 router leaves: 2 levels under the root
    for i, leaf in enumerate(lv):
        proof = tree.proof(i)
        assert proof.path & 3 == leaf.role and proof.leaf == leaf
        assert proof.verify(tree.root_hash, tree.root_total)
    # the report's root node: a Merkle-proof cell of the root, the four sums, children pruned
    node = tree.root_node_proof()
    assert node.type_ == 3 and node.refs[0].get_hash(0) == tree.root_hash
    root = node.refs[0]
    assert [c.type_ for c in root.refs] == [1, 1, 1, 1]
    s = root.begin_parse()
    assert [s.load_uint(128) for _ in range(4)][::-1] == list(tree.role_totals)
    with pytest.raises(ValueError, match="not a provider role"):
        MerkleSumTree([Leaf(addr(1), 4, 1)])


def test_a_leaf_outside_its_role_subtree_is_refused():
    """A gpu leaf under the router branch adds up everywhere, but the walk (as the pool's)
    refuses it: a role's claims draw on that role's subtree only."""
    gpu = Leaf(addr(1), Role.GPU, 100)
    empty = (begin_cell().end_cell(), 0)
    top = node_cell([empty, empty, (gpu.cell(), 100), empty])
    with pytest.raises(InvalidMessage, match="outside its role's subtree"):
        walk_proof(merkle_proof_cell(top), 0b100 | Role.ROUTER, top.hash, 100)
    # the same leaf in its own place proves
    top = node_cell([(gpu.cell(), 100), empty, empty, empty])
    assert walk_proof(merkle_proof_cell(top), 0b100 | Role.GPU, top.hash, 100) == gpu


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 50])
def test_every_leaf_proves_and_root_total_is_the_sum(n):
    tree = MerkleSumTree(leaves(n))
    assert tree.root_total == sum(leaf.total for leaf in tree.leaves)
    for i in range(n):
        proof = tree.proof(i)
        assert proof.cell.type_ == 3 and proof.cell.refs[0].get_hash(0) == tree.root_hash
        assert proof.verify(tree.root_hash, tree.root_total)
        assert walk_proof(proof.cell, proof.path, tree.root_hash, tree.root_total) == tree.leaves[i]


def test_proof_reveals_one_path_only():
    """Everything off the path is a pruned branch: the proof of a 64-leaf tree holds 3 nodes,
    9 pruned siblings and the leaf, whatever the other leaves say."""
    tree = MerkleSumTree(leaves(64))
    proof = tree.proof(37)
    cells, pruned, todo = 0, 0, [proof.cell.refs[0]]
    while todo:
        c = todo.pop()
        cells += 1
        pruned += c.type_ == 1
        todo.extend(c.refs)
    assert (tree.depth, cells, pruned) == (3, 3 + 9 + 1, 9)


def test_forged_proofs_fail():
    tree = MerkleSumTree(leaves(8))
    proof = tree.proof(3)
    root = (tree.root_hash, tree.root_total)
    assert proof.verify(*root)
    forgeries = {
        "another total": replace(proof, leaf=replace(proof.leaf, total=proof.leaf.total + 1)),
        "another role": replace(proof, leaf=replace(proof.leaf, role=(proof.leaf.role + 1) % 4)),
        "another provider": replace(proof, leaf=replace(proof.leaf, provider=addr(999))),
        "a path into a pruned branch": replace(proof, path=proof.path ^ 1),
        "a path past the leaf": replace(proof, path=proof.path << 2),
        "a path stopping above the leaf": replace(proof, path=0b100),
        "no length marker": replace(proof, path=0),
        "another leaf's proof": replace(tree.proof(4), leaf=proof.leaf),
    }
    for name, bad in forgeries.items():
        assert not bad.verify(*root), name
    assert not proof.verify(tree.root_hash, tree.root_total + 1)
    assert not proof.verify(MerkleSumTree(leaves(9)).root_hash, tree.root_total)


def test_a_node_whose_sums_do_not_add_up_is_refused():
    """Validators could sign a tree whose node sums overstate a branch: the walk checks every
    node on the path against its parent, so such a leaf never pays."""
    good, other = Leaf(addr(1), Role.GPU, 100), Leaf(addr(2), Role.GPU, 50)
    inflated = Leaf(addr(1), Role.GPU, 150)
    # the top node says 100 + 50 = 150, but the left child node holds a 150 leaf
    left = node_cell([(inflated.cell(), 150)])
    top = node_cell([(left, 100), (node_cell([(other.cell(), 50)]), 50)])
    proof_cell = Builder(type_=3).store_uint(3, 8).store_bytes(top.get_hash(0)).store_uint(top.get_depth(0), 16)
    proof_cell = proof_cell.store_ref(top).end_cell()
    with pytest.raises(InvalidMessage, match="do not add up"):
        walk_proof(proof_cell, 1 << 4, top.hash, 150)
    assert good.total + other.total == 150


def test_duplicate_leaves_rejected():
    a = addr(1)
    with pytest.raises(ValueError, match="duplicate"):
        MerkleSumTree([Leaf(a, Role.GPU, 1), Leaf(a, Role.GPU, 2)])
    MerkleSumTree([Leaf(a, Role.GPU, 1), Leaf(a, Role.ROUTER, 2)])  # same owner, other role: fine


def test_deep_sparse_tree_has_fixed_depth_proofs():
    tree = MerkleSumTree(leaves(5), depth=10)
    proof = tree.proof(4)
    assert tree.depth == 10 and (proof.path.bit_length() - 1) // 2 == 10
    assert proof.verify(tree.root_hash, tree.root_total)
    small = MerkleSumTree(leaves(5))
    assert small.depth == 2 and small.proof(4).verify(small.root_hash, small.root_total)
    assert small.root_hash != tree.root_hash and small.root_total == tree.root_total
    with pytest.raises(ValueError, match="do not fit in depth 1"):
        MerkleSumTree(leaves(5), depth=1)


def test_totals_beyond_coins_are_refused():
    with pytest.raises(ValueError, match="coins"):
        Leaf(addr(1), Role.GPU, 1 << 120).hash_and_depth()
    with pytest.raises(ValueError, match="exceeds"):
        MerkleSumTree([Leaf(addr(i), Role.GPU, (1 << 120) - 1) for i in range(2)])


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
    tree = MerkleSumTree(leaves(n))
    for i in {0, n // 2, n - 1}:
        proof = tree.proof(i)
        doc = json.loads(json.dumps(proof.to_json()))  # through real JSON text
        assert doc["cumulative"] == proof.cumulative and doc["path"] == proof.path
        back = proof_from_json(doc)
        assert back.cell.hash == proof.cell.hash and back.path == proof.path and back.leaf == proof.leaf
        assert back.verify(tree.root_hash, tree.root_total)
        # the leaf's own fields are optional: the proof carries the leaf
        bare = proof_from_json({"proof": doc["proof"], "path": doc["path"]})
        assert bare.leaf == proof.leaf


def _doc(**change) -> dict:
    return {**MerkleSumTree(leaves(4)).proof(1).to_json(), **change}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_doc(path=-1), "does not fit in uint64"),
        (_doc(path="12"), "must be an integer"),
        (_doc(path=1 << 4), "runs into a pruned branch"),
        (_doc(path=0b1), "path ends above the leaves"),
        (_doc(proof=123), "base64 BOC string"),
        (_doc(proof="not base64!"), "not a base64 BOC"),
        (_doc(proof=base64.b64encode(begin_cell().end_cell().to_boc()).decode()), "not a Merkle-proof cell"),
        (_doc(cumulative=5), "but the leaf says"),
        (_doc(role=3), "but the leaf says"),
        (_doc(provider=addr(9).to_str()), "but the leaf is"),
        (_doc(provider="not an address"), "not an address"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_malformed_proof_files_are_refused(doc, message):
    with pytest.raises(InvalidMessage, match=message):
        proof_from_json(doc)


def test_proof_file_is_a_merkle_proof_type():
    assert isinstance(proof_from_json(_doc()), MerkleProof)
