"""The dataset's Merkle tree against RFC 6962's test vectors and an independent recursive tree.

The vectors are Certificate Transparency's (the C++ log's merkle_tree_test, reused by
certificate-transparency-go and Trillian): eight leaves, the tree head of each prefix,
and inclusion proofs (given there with 1-based leaf numbers).
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offchain.protocol import rfc6962

CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (0-based index, tree size, audit path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


def _sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


# An independent tree, written from the RFC's recursive definitions (section 2.1), not from
# the module's bottom-up levels.
def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(d: list[bytes]) -> bytes:
    if not d:
        return _sha(b"")
    if len(d) == 1:
        return _sha(b"\x00" + d[0])
    k = _k(len(d))
    return _sha(b"\x01" + _mth(d[:k]) + _mth(d[k:]))


def _path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*_path(m, d[:k]), _mth(d[k:])]
    return [*_path(m - k, d[k:]), _mth(d[:k])]


def test_roots_match_the_ct_vectors_for_every_size() -> None:
    for n in range(len(CT_LEAVES) + 1):
        assert rfc6962.root(CT_LEAVES[:n]).hex() == CT_ROOTS[n], n
        assert _mth(CT_LEAVES[:n]).hex() == CT_ROOTS[n], n


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_inclusion_proofs_match_the_ct_vectors(index: int, size: int, path: list[str]) -> None:
    leaves = CT_LEAVES[:size]
    proof = rfc6962.inclusion_proof(index, leaves)
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(CT_ROOTS[size])
    assert rfc6962.verify_inclusion(rfc6962.leaf_hash(leaves[index]), index, size, proof, root)
    assert not rfc6962.verify_inclusion(rfc6962.leaf_hash(leaves[index]), index, size, proof, rfc6962.EMPTY_ROOT)


def test_hand_computed_small_trees() -> None:
    a, b, c, d, e = (bytes([x]) for x in b"abcde")
    la, lb, lc, ld, le = (_sha(b"\x00" + x) for x in (a, b, c, d, e))
    node = rfc6962.node_hash
    assert rfc6962.root([a]) == la
    assert rfc6962.root([a, b]) == _sha(b"\x01" + la + lb)
    assert rfc6962.root([a, b, c]) == node(node(la, lb), lc)  # c is carried up, not paired with itself
    assert rfc6962.root([a, b, c, d, e]) == node(node(node(la, lb), node(lc, ld)), le)
    assert rfc6962.inclusion_proof(4, [a, b, c, d, e]) == [node(node(la, lb), node(lc, ld))]
    assert rfc6962.inclusion_proof(2, [a, b, c]) == [node(la, lb)]
    assert rfc6962.inclusion_proof(0, [a, b, c]) == [lb, lc]
    eight = [bytes([i]) for i in range(8)]
    h = [_sha(b"\x00" + x) for x in eight]
    n01, n23, n45, n67 = node(h[0], h[1]), node(h[2], h[3]), node(h[4], h[5]), node(h[6], h[7])
    assert rfc6962.root(eight) == node(node(n01, n23), node(n45, n67))
    assert rfc6962.inclusion_proof(6, eight) == [h[7], n45, node(n01, n23)]
    assert rfc6962.inclusion_proof(0, [a]) == []
    assert rfc6962.verify_inclusion(la, 0, 1, [], la)


def test_bottom_up_tree_equals_the_recursive_definition() -> None:
    for n in range(1, 70):
        leaves = [n.to_bytes(2, "big") + i.to_bytes(2, "big") for i in range(n)]
        assert rfc6962.root(leaves) == _mth(leaves), n
        all_proofs = rfc6962.inclusion_proofs([rfc6962.leaf_hash(x) for x in leaves])
        for i in range(n):
            assert rfc6962.inclusion_proof(i, leaves) == _path(i, leaves) == all_proofs[i], (n, i)


def test_verify_rejects_malformed_input_without_raising() -> None:
    leaves = CT_LEAVES[:5]
    root = rfc6962.root(leaves)
    lh = rfc6962.leaf_hash(leaves[1])
    proof = rfc6962.inclusion_proof(1, leaves)
    assert rfc6962.verify_inclusion(lh, 1, 5, proof, root)
    assert not rfc6962.verify_inclusion(lh, 5, 5, proof, root)
    assert not rfc6962.verify_inclusion(lh, -1, 5, proof, root)
    assert not rfc6962.verify_inclusion(lh, 1, 2, proof, root)  # a shorter path for that size
    assert not rfc6962.verify_inclusion(lh, 1, 5, proof[:-1], root)
    assert not rfc6962.verify_inclusion(lh, 1, 5, [*proof, proof[0]], root)
    assert not rfc6962.verify_inclusion(lh, 1, 5, [proof[0][:31], *proof[1:]], root)
    assert not rfc6962.verify_inclusion(lh[:31], 1, 5, proof, root)
    assert not rfc6962.verify_inclusion(leaves[1], 1, 5, proof, root)  # data, not its leaf hash
    with pytest.raises(IndexError):
        rfc6962.inclusion_proof(5, leaves)


@settings(max_examples=60, deadline=None)
@given(
    leaves=st.lists(st.binary(max_size=12), min_size=1, max_size=40, unique=True),
    data=st.data(),
)
def test_every_proof_verifies_and_any_change_fails(leaves: list[bytes], data: st.DataObject) -> None:
    n = len(leaves)
    root = rfc6962.root(leaves)
    assert root == _mth(leaves)
    hashes = [rfc6962.leaf_hash(x) for x in leaves]
    proofs = rfc6962.inclusion_proofs(hashes)
    for i in range(n):
        assert rfc6962.verify_inclusion(hashes[i], i, n, proofs[i], root)
    i = data.draw(st.integers(0, n - 1), label="index")
    proof = proofs[i]
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1), label="element")
        byte = data.draw(st.integers(0, 31), label="byte")
        bit = data.draw(st.integers(0, 7), label="bit")
        bad = bytearray(proof[j])
        bad[byte] ^= 1 << bit
        assert not rfc6962.verify_inclusion(hashes[i], i, n, [*proof[:j], bytes(bad), *proof[j + 1:]], root)
    if n > 1:
        other = data.draw(st.integers(0, n - 1).filter(lambda k: k != i), label="wrong index")
        assert not rfc6962.verify_inclusion(hashes[i], other, n, proof, root)
        assert not rfc6962.verify_inclusion(hashes[other], i, n, proof, root)
