"""The validator's decisions without I/O (offchain/validator/_core.py): probe scheduling,
comparison, reputation arithmetic, the fraud threshold, fraud records, orders and quorum;
and the store's round trip of what the core restores from."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest
from nacl.signing import SigningKey, VerifyKey

from offchain.protocol.wire import Receipt
from offchain.validator._core import (
    PROBE_CORPUS,
    Evidence,
    FraudRecord,
    FraudRule,
    Quorum,
    ValidatorCore,
    Verdict,
    compare,
    fraud_record,
    inputs_hash,
    slash_order,
    verify_fraud_record,
)
from offchain.validator._store import ValidatorStore
from wrappers.root import slash_order_hash

ROOT = "0:" + "11" * 32
CHEATER = "0:" + "aa" * 32
HONEST = "0:" + "bb" * 32
PASS = Verdict(True, (1.0,))
FAIL = Verdict(False, (0.02,))


def unit(rows: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def evidence(provider: str = CHEATER, n: int = 0, receipt: Receipt | None = None) -> Evidence:
    return Evidence(
        provider=provider,
        inputs_hash=inputs_hash([f"text {n}"]),
        answer_hash=hashlib.sha256(b"answer %d" % n).digest(),
        receipt=receipt,
        worker_key=b"\x07" * 32,
        min_cosine=0.02,
        at=1_700_000_000 + n,
    )


def receipt(n: int = 1) -> Receipt:
    return Receipt(
        request=n, model_hash=b"\x01" * 32, units=5, result_hash=b"\x02" * 32, client_key=b"\x03" * 32,
        signature=b"\x04" * 64,
    )


# ---- scheduling and probes ---------------------------------------------------------------------
def test_next_delay_is_exponential_with_the_configured_mean() -> None:
    core = ValidatorCore(rng=random.Random(7))
    delays = [core.next_delay(2.0) for _ in range(20_000)]
    assert min(delays) > 0
    assert 1.9 < sum(delays) / len(delays) < 2.1
    with pytest.raises(ValueError):
        core.next_delay(0)


def test_probe_texts_join_corpus_sentences_and_vary() -> None:
    core = ValidatorCore(rng=random.Random(1))
    texts = core.probe_texts(50)
    assert len(texts) == 50
    for t in texts:
        assert any(t.startswith(s) for s in PROBE_CORPUS)
        assert all(len(part) > 0 for part in t.split(". "))
    assert len(set(texts)) > 40
    assert len(core.probe_texts(0)) == 1


def test_inputs_hash_is_order_and_boundary_sensitive() -> None:
    assert inputs_hash(["a", "b"]) != inputs_hash(["b", "a"])
    assert inputs_hash(["ab"]) != inputs_hash(["a", "b"])
    assert inputs_hash(["a"]) == inputs_hash(["a"])


# ---- comparison -----------------------------------------------------------------------------------
def test_compare_identical_vectors_pass() -> None:
    v = unit(3)
    verdict = compare(v, v.copy())
    assert verdict.passed and verdict.min_cosine == pytest.approx(1.0, abs=1e-6)


def test_compare_random_vectors_fail() -> None:
    verdict = compare(unit(3, 384, 1), unit(3, 384, 2))
    assert not verdict.passed and abs(verdict.min_cosine) < 0.3


def test_compare_one_bad_row_fails_the_probe() -> None:
    v = unit(3)
    got = v.copy()
    got[1] = -got[1]
    verdict = compare(v, got)
    assert not verdict.passed and verdict.cosines[0] > 0.99 and verdict.min_cosine == pytest.approx(-1.0)


def test_compare_threshold_is_inclusive_and_configurable() -> None:
    a = np.array([[1.0, 0.0]], dtype=np.float32)
    b = np.array([[0.98, np.sqrt(1 - 0.98**2)]], dtype=np.float32)
    assert not compare(a, b, 0.99).passed
    assert compare(a, b, 0.98 - 1e-6).passed


def test_compare_shape_mismatch_or_zero_vector_fails() -> None:
    v = unit(2)
    assert compare(v, unit(3)).min_cosine == -1.0 and not compare(v, unit(3)).passed
    assert not compare(v, unit(2, dim=4)).passed
    assert not compare(v, np.zeros_like(v)).passed
    assert not compare(np.zeros((0, 8)), np.zeros((0, 8))).passed


# ---- reputation and fraud -------------------------------------------------------------------------
def test_reputation_is_an_exponentially_weighted_pass_rate() -> None:
    core = ValidatorCore(alpha=0.3, rule=FraudRule(failures=5, window=5))
    rec, _ = core.observe(evidence(), FAIL)
    assert rec.score == pytest.approx(0.7)
    rec, _ = core.observe(evidence(n=1), PASS)
    assert rec.score == pytest.approx(0.79)
    assert (rec.probes, rec.failures) == (2, 1)
    assert rec.report().score == pytest.approx(0.79) and rec.report().provider == CHEATER
    honest, _ = core.observe(evidence(HONEST), PASS)
    assert honest.score == 1.0 and core.workers[CHEATER].score < honest.score


def test_fraud_needs_n_failures_within_the_last_m_probes() -> None:
    core = ValidatorCore(rule=FraudRule(failures=2, window=3))
    outcomes = [core.observe(evidence(n=i), v)[1] for i, v in enumerate([FAIL, PASS, PASS, FAIL, PASS, PASS])]
    assert outcomes == [False] * 6  # the first failure left the window before the second came
    _, fraud = core.observe(evidence(n=7), FAIL)
    assert not fraud  # window: PASS, PASS, FAIL
    _, fraud = core.observe(evidence(n=8), FAIL)
    assert fraud
    rec = core.workers[CHEATER]
    assert rec.accused and [e.at for e in rec.recent_failures] == [1_700_000_007, 1_700_000_008]


def test_fraud_is_decided_once_per_provider() -> None:
    core = ValidatorCore(rule=FraudRule(failures=1, window=1))
    assert core.observe(evidence(), FAIL)[1]
    assert not core.observe(evidence(n=1), FAIL)[1]


def test_fraud_rule_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        FraudRule(failures=4, window=3)
    with pytest.raises(ValueError):
        FraudRule(failures=0, window=3)
    with pytest.raises(ValueError):
        ValidatorCore(alpha=0)


def test_restore_puts_back_an_accused_record() -> None:
    core = ValidatorCore(rule=FraudRule(failures=1, window=2))
    rec = core.restore(CHEATER, score=0.4, probes=9, failures=4, accused=True, recent=[None, evidence()])
    assert (rec.score, rec.probes, rec.failures, rec.accused, len(rec.recent_failures)) == (0.4, 9, 4, True, 1)
    assert not core.observe(evidence(n=1), FAIL)[1]


# ---- fraud records, orders, quorum ----------------------------------------------------------------
def test_fraud_record_is_signed_and_hashes_its_body() -> None:
    key = SigningKey(b"\x05" * 32)
    rec = fraud_record(CHEATER, [evidence(receipt=receipt(1)), evidence(n=1)], key=key, model="m", threshold=0.99,
                       at=5)
    assert rec.hash == hashlib.sha256(rec.body).digest() and rec.reason_hash == int.from_bytes(rec.hash, "big")
    VerifyKey(rec.validator).verify(rec.hash, rec.signature)
    assert verify_fraud_record(rec)
    doc = json.loads(rec.body)
    assert doc["provider"] == CHEATER and doc["validator"] == bytes(key.verify_key).hex()
    assert doc["probes"][0]["receipt"]["signature"] == "04" * 64 and doc["probes"][1]["receipt"] is None
    assert doc["probes"][0]["inputs_hash"] == inputs_hash(["text 0"]).hex()
    forged = FraudRecord(rec.provider, rec.body.replace(b"0.99", b"0.5"), rec.hash, rec.validator, rec.signature)
    assert not verify_fraud_record(forged)
    other = FraudRecord(rec.provider, rec.body, rec.hash, bytes(SigningKey(b"\x06" * 32).verify_key), rec.signature)
    assert not verify_fraud_record(other)


def test_fraud_record_needs_evidence_about_its_provider() -> None:
    key = SigningKey(b"\x05" * 32)
    with pytest.raises(ValueError):
        fraud_record(CHEATER, [], key=key, model="m", threshold=0.99, at=0)
    with pytest.raises(ValueError):
        fraud_record(CHEATER, [evidence(HONEST)], key=key, model="m", threshold=0.99, at=0)


def test_slash_order_takes_the_next_nonce_and_the_record_as_reason() -> None:
    key = SigningKey(b"\x05" * 32)
    rec = fraud_record(CHEATER, [evidence()], key=key, model="m", threshold=0.99, at=0)
    order = slash_order(root=ROOT, target=CHEATER, amount=10**9, record=rec, last_nonce=41)
    assert order.nonce == 42 and order.reason_hash == rec.reason_hash and order.amount == 10**9
    assert order.target.to_str(is_user_friendly=False) == CHEATER
    with pytest.raises(ValueError):
        slash_order(root=ROOT, target=CHEATER, amount=0, record=rec, last_nonce=0)


def test_quorum_counts_valid_signatures_of_members_only() -> None:
    a, b, stranger = (SigningKey(bytes([i]) * 32) for i in (1, 2, 3))
    members = [int.from_bytes(bytes(k.verify_key), "big") for k in (a, b)]
    rec = fraud_record(CHEATER, [evidence()], key=a, model="m", threshold=0.99, at=0)
    order = slash_order(root=ROOT, target=CHEATER, amount=1, record=rec, last_nonce=0)
    q = Quorum(order, validators=members, threshold=2)
    sig = q.sign(a)
    VerifyKey(bytes(a.verify_key)).verify(slash_order_hash(order), sig)  # what Root checks
    assert not q.complete
    assert not q.add(bytes(stranger.verify_key), stranger.sign(q.digest).signature)
    assert not q.add(bytes(b.verify_key), b.sign(b"another order").signature)
    assert not q.complete
    assert q.add(bytes(b.verify_key), b.sign(q.digest).signature)
    assert q.complete and set(q.signatures) == set(members)
    one = Quorum(order, validators=members[:1], threshold=1)
    one.sign(a)
    assert one.complete


# ---- the store's round trip -----------------------------------------------------------------------
def test_store_keeps_probes_workers_and_fraud_records(tmp_path: Path) -> None:
    core = ValidatorCore(rule=FraudRule(failures=2, window=3))
    store = ValidatorStore(tmp_path / "validator.db")
    key = SigningKey(b"\x05" * 32)

    async def book() -> FraudRecord:
        ops = []
        for i, v in enumerate([PASS, FAIL, FAIL]):
            e = evidence(n=i, receipt=receipt(i + 1))
            rec, fraud = core.observe(e, v)
            ops += [store.op_probe(e, v.passed), store.op_worker(rec)]
        assert fraud
        r = fraud_record(CHEATER, core.workers[CHEATER].recent_failures, key=key, model="m", threshold=0.99, at=9)
        await store.write([*ops, store.op_fraud(r, 9, "signed")])
        await store.write([store.op_fraud_status(r.hash, "relayed", nonce=3)])
        return r

    try:
        r = asyncio.run(book())
        ((provider, score, probes, failures, accused),) = store.workers()
        assert (provider, probes, failures, accused) == (CHEATER, 3, 2, True)
        assert score == pytest.approx(core.workers[CHEATER].score)
        recent = store.recent(CHEATER, 3)
        assert recent[0] is None and [e.receipt for e in recent[1:] if e] == [receipt(2), receipt(3)]
        assert store.frauds() == [(CHEATER, r.hash, "relayed", 3)]
        again = ValidatorCore(rule=FraudRule(failures=2, window=3))
        again.restore(CHEATER, score=score, probes=probes, failures=failures, accused=accused, recent=recent)
        assert again.workers[CHEATER].recent_failures == core.workers[CHEATER].recent_failures
    finally:
        store.close()
