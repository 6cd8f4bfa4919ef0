"""The validator's decisions, with no I/O: when to probe, what to send, whether an answer is
right, what a worker's reputation is, when it is fraud, and the fraud record and slashing
order that follow. The agent (`_agent.py`) moves requests and frames and calls these.

- **Scheduling.** Probe rounds come at exponentially distributed intervals (a Poisson
  process) of a configured mean, so their timing tells a worker nothing.
- **Probes.** Each input joins one to three sentences drawn from the built-in corpus
  (`PROBE_CORPUS`), so the same text rarely comes twice and a worker cannot learn a short
  list of probe texts to answer honestly.
- **Comparison.** The validator runs the same allowlisted model locally; every vector of the
  answer must have cosine >= `threshold` (default 0.99) with the local one, and the shapes
  must match. MiniLM's int8 ONNX gives ~1.0 on any machine; a random vector gives ~0.
- **Reputation.** Per worker (its Provider address): an exponentially weighted pass rate,
  `score <- (1 - alpha) * score + alpha * passed`, starting at 1.0.
- **Fraud.** `failures` failed probes among the worker's last `window` probes make it fraud
  (once per Provider): the failed probes' evidence (the worker's signed receipts, the
  hashes of the inputs and answers, the cosines) goes into a fraud record that this
  validator signs; the record's sha256 is the slashing order's `reason_hash`.
- **Orders.** Root takes a nonce once within a window below its newest (`last_slash_nonce`);
  the next unused one is always `last_slash_nonce + 1`. An order needs `threshold`
  signatures of Root's validator set (`Quorum`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from pytoniq_core import Address

from offchain.protocol.wire import Receipt, Reputation
from wrappers.messages import SlashOrder
from wrappers.root import slash_order_hash

__all__ = [
    "PROBE_CORPUS",
    "Evidence",
    "FraudRecord",
    "FraudRule",
    "Quorum",
    "ValidatorCore",
    "Verdict",
    "WorkerRecord",
    "compare",
    "fraud_record",
    "inputs_hash",
    "slash_order",
    "verify_fraud_record",
]

PROBE_CORPUS: tuple[str, ...] = (
    "A man is playing a guitar on a quiet street corner.",
    "The committee postponed its decision until the next meeting.",
    "Fresh bread is sold at the market every morning.",
    "She translated the letter from Portuguese into English.",
    "Heavy rain caused delays on the northern railway line.",
    "The museum opens a new exhibition of early photographs.",
    "Our team shipped the release two days ahead of schedule.",
    "A small boat drifted slowly toward the harbour.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Researchers measured the temperature of the lake every hour.",
    "He forgot his umbrella at the station again.",
    "The library extended its opening hours during exams.",
    "Solar panels cover the roof of the new school building.",
    "A child is flying a red kite in the park.",
    "The contract must be signed by both parties before Friday.",
    "Wolves were seen near the village for the first time in decades.",
    "The orchestra rehearsed the symphony late into the night.",
    "Please restart the router if the connection keeps dropping.",
    "The mountain trail is closed because of snow.",
    "Two dogs are chasing each other across the beach.",
    "The bakery on the corner makes the best croissants in town.",
    "Interest rates were left unchanged this quarter.",
    "The patient was advised to rest and drink plenty of water.",
    "A new species of frog was discovered in the rainforest.",
    "The software update fixes a bug in the login screen.",
    "Students gathered in the square to celebrate graduation.",
    "The old bridge will be replaced by a wider one next year.",
    "A woman is slicing tomatoes in the kitchen.",
    "The satellite sent back images of the storm from orbit.",
    "He learned to play chess from his grandfather.",
    "The farmers expect a good harvest after the warm spring.",
    "The airport added three new routes to southern Europe.",
    "Volunteers planted hundreds of trees along the river.",
    "The detective found a clue hidden under the carpet.",
    "Electric buses now run on every line in the city.",
    "The price of coffee rose sharply after the drought.",
    "A cat is sleeping on a warm windowsill.",
    "The conference will be held online this year.",
    "Engineers tested the prototype in a wind tunnel.",
    "The novel tells the story of a family across three generations.",
)
"""Sentences probes are made of (everyday English, what an embedding client sends)."""


@dataclass(frozen=True)
class FraudRule:
    """`failures` failed probes among a worker's last `window` probes make it fraud."""

    failures: int = 3
    window: int = 5

    def __post_init__(self) -> None:
        if not 1 <= self.failures <= self.window:
            raise ValueError(f"fraud rule: failures {self.failures} must be in 1..window ({self.window})")


@dataclass(frozen=True)
class Verdict:
    """One probe's comparison: `passed` when every vector's cosine reaches the threshold."""

    passed: bool
    cosines: tuple[float, ...]

    @property
    def min_cosine(self) -> float:
        return min(self.cosines) if self.cosines else -1.0


def compare(expected: np.ndarray, got: np.ndarray, threshold: float = 0.99) -> Verdict:
    """Compare an answer with the locally computed vectors, row by row (cosine similarity).

    A shape mismatch (wrong count or dimension) fails with cosine -1 for every row."""
    exp = np.asarray(expected, dtype=np.float64)
    ans = np.asarray(got, dtype=np.float64)
    if exp.ndim != 2 or exp.shape != ans.shape or exp.shape[0] == 0:
        return Verdict(False, tuple(-1.0 for _ in range(max(1, exp.shape[0] if exp.ndim else 1))))
    dots = (exp * ans).sum(axis=1)
    norms = np.linalg.norm(exp, axis=1) * np.linalg.norm(ans, axis=1)
    cos = np.where(norms > 0, dots / np.maximum(norms, 1e-30), -1.0)
    cos = np.nan_to_num(cos, nan=-1.0)
    cosines = tuple(float(c) for c in cos)
    return Verdict(all(c >= threshold for c in cosines), cosines)


def inputs_hash(texts: Sequence[str]) -> bytes:
    """sha256 over the probe's inputs (length-prefixed UTF-8, in order)."""
    h = hashlib.sha256(b"cocoon/probe-inputs/v1\x00")
    for t in texts:
        b = t.encode()
        h.update(len(b).to_bytes(4, "big") + b)
    return h.digest()


@dataclass(frozen=True)
class Evidence:
    """What one probe proves: the worker's signed receipt for its answer, and what we found."""

    provider: str
    inputs_hash: bytes
    answer_hash: bytes  # sha256 of the answer's vectors as the worker returned them (opened)
    receipt: Receipt | None  # the worker's signed receipt (its result_hash covers the sealed answer)
    worker_key: bytes  # the node key that signed the receipt
    min_cosine: float
    at: int  # unix seconds


@dataclass
class WorkerRecord:
    """One worker's standing with this validator."""

    provider: str
    score: float = 1.0
    probes: int = 0
    failures: int = 0
    recent: deque[Evidence | None] = field(default_factory=deque)  # last window probes: evidence if failed
    accused: bool = False

    def report(self) -> Reputation:
        return Reputation(
            provider=self.provider, score=min(1.0, max(0.0, self.score)), probes=self.probes, failures=self.failures
        )

    @property
    def recent_failures(self) -> list[Evidence]:
        return [e for e in self.recent if e is not None]


class ValidatorCore:
    """Probe scheduling, reputation arithmetic and the fraud threshold (see the module doc).

    Not safe for concurrent use from threads; the agent calls it from one event loop and
    never awaits between a decision and its update."""

    def __init__(
        self,
        *,
        threshold: float = 0.99,
        alpha: float = 0.3,
        rule: FraudRule | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"reputation alpha {alpha} must be in (0, 1]")
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"cosine threshold {threshold} must be in [-1, 1]")
        self.threshold = threshold
        self.alpha = alpha
        self.rule = rule or FraudRule()
        self.rng = rng or random.SystemRandom()
        self.workers: dict[str, WorkerRecord] = {}

    # ---- scheduling ---------------------------------------------------------------------------
    def next_delay(self, mean: float) -> float:
        """Seconds until the next probe round: exponential with mean `mean`."""
        if mean <= 0:
            raise ValueError(f"mean probe interval {mean} must be positive")
        return self.rng.expovariate(1.0 / mean)

    def probe_texts(self, count: int) -> list[str]:
        """`count` probe inputs, each one to three distinct corpus sentences joined."""
        out = []
        for _ in range(max(1, count)):
            k = self.rng.randint(1, 3)
            out.append(" ".join(self.rng.sample(PROBE_CORPUS, k)))
        return out

    # ---- verdicts -----------------------------------------------------------------------------
    def compare(self, expected: np.ndarray, got: np.ndarray) -> Verdict:
        return compare(expected, got, self.threshold)

    def record(self, provider: str) -> WorkerRecord:
        rec = self.workers.get(provider)
        if rec is None:
            rec = self.workers[provider] = WorkerRecord(provider, recent=deque(maxlen=self.rule.window))
        return rec

    def observe(self, evidence: Evidence, verdict: Verdict) -> tuple[WorkerRecord, bool]:
        """Book one probe of `evidence.provider`. Returns its record and whether it is now
        fraud (true once per Provider: it is then marked accused)."""
        rec = self.record(evidence.provider)
        rec.probes += 1
        if not verdict.passed:
            rec.failures += 1
        rec.score = (1 - self.alpha) * rec.score + self.alpha * (1.0 if verdict.passed else 0.0)
        rec.recent.append(None if verdict.passed else evidence)
        fraud = not rec.accused and len(rec.recent_failures) >= self.rule.failures
        if fraud:
            rec.accused = True
        return rec, fraud

    def restore(
        self,
        provider: str,
        *,
        score: float,
        probes: int,
        failures: int,
        accused: bool,
        recent: Iterable[Evidence | None],
    ) -> WorkerRecord:
        """Put back a worker's record as the store kept it (a restarted validator)."""
        rec = self.record(provider)
        rec.score, rec.probes, rec.failures, rec.accused = score, probes, failures, accused
        rec.recent.clear()
        rec.recent.extend(recent)
        return rec


# ---- fraud records and orders -------------------------------------------------------------------
@dataclass(frozen=True)
class FraudRecord:
    """A signed statement that `provider` answered probes wrongly. `body` is canonical JSON;
    `hash` = sha256(body) is the slashing order's `reason_hash`; `signature` is the
    validator's ed25519 signature of `hash`."""

    provider: str
    body: bytes
    hash: bytes
    validator: bytes  # the signing validator's public key
    signature: bytes

    @property
    def reason_hash(self) -> int:
        return int.from_bytes(self.hash, "big")


def _receipt_json(r: Receipt | None) -> dict[str, object] | None:
    if r is None:
        return None
    return {
        "request": r.request,
        "model_hash": r.model_hash.hex(),
        "units": r.units,
        "result_hash": r.result_hash.hex(),
        "client_key": r.client_key.hex(),
        "signature": r.signature.hex(),
    }


def fraud_record(
    provider: str, evidence: Sequence[Evidence], *, key: SigningKey, model: str, threshold: float, at: int
) -> FraudRecord:
    """Build and sign the fraud record of `provider` from its failed probes' `evidence`.

    Raises:
        ValueError: no evidence, or evidence about another provider.
    """
    if not evidence or any(e.provider != provider for e in evidence):
        raise ValueError("a fraud record needs evidence about its provider only")
    validator = bytes(key.verify_key)
    doc = {
        "kind": "cocoon/fraud-record/v1",
        "provider": provider,
        "validator": validator.hex(),
        "model": model,
        "threshold": threshold,
        "at": at,
        "probes": [
            {
                "inputs_hash": e.inputs_hash.hex(),
                "answer_hash": e.answer_hash.hex(),
                "cosine": round(e.min_cosine, 6),
                "worker_key": e.worker_key.hex(),
                "receipt": _receipt_json(e.receipt),
                "at": e.at,
            }
            for e in evidence
        ],
    }
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(body).digest()
    return FraudRecord(provider, body, digest, validator, key.sign(digest).signature)


def verify_fraud_record(record: FraudRecord) -> bool:
    """Whether the record's hash is its body's and its signature is its validator's."""
    if hashlib.sha256(record.body).digest() != record.hash:
        return False
    try:
        VerifyKey(record.validator).verify(record.hash, record.signature)
    except BadSignatureError:
        return False
    return True


def slash_order(*, root: str, target: str, amount: int, record: FraudRecord, last_nonce: int) -> SlashOrder:
    """The order slashing `target` (a Provider) by `amount` for `record`, with the next
    unused nonce: `last_nonce + 1` is above everything Root has taken."""
    if amount <= 0:
        raise ValueError(f"slash amount {amount} must be positive")
    return SlashOrder(
        root=Address(root), target=Address(target), amount=amount, reason_hash=record.reason_hash, nonce=last_nonce + 1
    )


class Quorum:
    """Signatures of one order from Root's validator set, until `threshold` of them."""

    def __init__(self, order: SlashOrder, *, validators: Iterable[int], threshold: int) -> None:
        self.order = order
        self.digest = slash_order_hash(order)
        self.validators = frozenset(validators)
        self.threshold = threshold
        self.signatures: dict[int, bytes] = {}

    def sign(self, key: SigningKey) -> bytes:
        """Add this validator's own signature (returned, to share with the others)."""
        sig = key.sign(self.digest).signature
        self.add(bytes(key.verify_key), sig)
        return sig

    def add(self, public_key: bytes, signature: bytes) -> bool:
        """Add one validator's signature; False (and nothing added) if it is not a member of
        the set or does not sign this order."""
        k = int.from_bytes(public_key, "big")
        if k not in self.validators:
            return False
        try:
            VerifyKey(public_key).verify(self.digest, signature)
        except BadSignatureError:
            return False
        self.signatures[k] = signature
        return True

    @property
    def complete(self) -> bool:
        return len(self.signatures) >= max(1, self.threshold)
