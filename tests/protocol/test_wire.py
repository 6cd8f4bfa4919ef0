"""The mesh's wire format: every frame round-trips, every out-of-bounds field is refused,
`frame_id` names the request of a bad frame, and `hello_digest` binds all it signs."""

from __future__ import annotations

import msgspec
import pytest

from offchain.errors import InvalidMessage
from offchain.protocol import wire
from offchain.protocol.provenance import ProvenanceRecord, SignedRecord
from offchain.protocol.wire import (
    AccountState,
    Challenge,
    CloseApproved,
    Dispute,
    DisputeSettled,
    Embed,
    Embedded,
    Error,
    ErrorCode,
    Hello,
    ListModels,
    ListWorkers,
    Load,
    ModelInfo,
    ModelOffer,
    Models,
    Offer,
    Receipt,
    Recipient,
    Reputation,
    RequestClose,
    Sealed,
    VoucherFrame,
    Welcome,
    Work,
    WorkDone,
    WorkerInfo,
    Workers,
)

ADDR = "0:" + "ab" * 32
MASTER = "-1:" + "cd" * 32
K = bytes(range(32))
SIG = bytes(range(64))
SPEC = wire.CrawlSpec(seeds=["https://news.cocoon.test/", "https://docs.cocoon.test/a?b=c"], max_pages=3)
SIGNED = SignedRecord(
    record=ProvenanceRecord(
        url="https://news.cocoon.test/", final_url="https://news.cocoon.test/", status=200, fetched_at=1,
        cert_sha256=K, body_sha256=K, content_type="text/html", byte_count=5, provider=ADDR, main_text="hi",
        validator_key=K,
    ),
    signature=SIG,
)


def voucher() -> VoucherFrame:
    return VoucherFrame(compute=10, data=2, signature=SIG)


def receipt() -> Receipt:
    return Receipt(request=7, model_hash=K, units=12, result_hash=K, client_key=wire.PLAIN, signature=SIG)


def account() -> AccountState:
    return AccountState(
        channel=ADDR,
        deposit=10**9,
        charged_compute=5,
        charged_data=1,
        voucher_compute=10,
        voucher_data=2,
        voucher_signature=SIG,
    )


def embed(**kw: object) -> Embed:
    fields: dict[str, object] = {
        "id": 1,
        "model": "bge-small",
        "units": 4,
        "max_coefficient": 1000,
        "voucher": voucher(),
        "texts": ["hi"],
    }
    fields.update(kw)
    return Embed(**fields)  # type: ignore[arg-type]


FRAMES = [
    Challenge(version=1, nonce=K, router=ADDR, router_key=K, root=MASTER),
    Hello(version=1, role="worker", owner=ADDR, node_key=K, signature=SIG, agent="cocoon-worker/1"),
    Welcome(session="s1", compute_unit_price=100, data_unit_price=3),
    Welcome(session="s2", compute_unit_price=100, data_unit_price=3, account=account()),
    Offer(
        models=[ModelOffer(name="bge-small", hash=K, dim=384, max_tokens=512)],
        coefficient=1500,
        capacity=8,
        encryption_key=K,
        evidence=b"quote",
    ),
    Load(queued=3),
    ListModels(id=9),
    Models(id=9, models=[ModelInfo(name="bge-small", hash=K, dim=384, max_tokens=512, workers=2, min_coefficient=900)]),
    embed(),
    embed(texts=[], tokens=[[1, 2, 3], [2**31 - 1]]),
    Work(id=2**63 - 1, model="bge-small", units=4, texts=["a", "b"]),
    WorkDone(id=3, dim=2, vectors=b"\x00" * 16, receipt=receipt()),
    Embedded(
        id=1,
        model="bge-small",
        dim=2,
        vectors=b"\x01" * 8,
        units=12,
        cost=1200,
        coefficient=1000,
        worker=ADDR,
        worker_key=K,
        receipt=receipt(),
        account=account(),
    ),
    RequestClose(id=4),
    CloseApproved(id=4, compute=5, data=1, signature=SIG),
    Error(id=None, code=int(ErrorCode.BAD_FRAME), message="bad"),
    Error(id=5, code=int(ErrorCode.NO_WORKER)),
    # sealing (appended: tests below name frames by index)
    ListWorkers(id=8, model="bge-small"),
    Workers(
        id=8,
        model="bge-small",
        workers=[WorkerInfo(provider=ADDR, node_key=K, encryption_key=K, coefficient=1000, evidence=b"quote")],
    ),
    Work(
        id=2,
        model="bge-small",
        units=4,
        sealed=Sealed(client_key=K, recipients=[Recipient(worker=K, key_box=SIG)], payload=b"ciphertext"),
    ),
    embed(texts=[], sealed=Sealed(client_key=K, recipients=[Recipient(worker=K, key_box=SIG)], payload=b"c")),
    Dispute(id=6, receipt=receipt(), answer=b"sealed answer", ephemeral=K),
    DisputeSettled(id=6, refunded=1200, account=account()),
    Reputation(provider=ADDR, score=0.25, probes=12, failures=3),
    # data node streams
    wire.StreamOpen(id=11, host="example.org", port=443),
    wire.StreamOpen(id=12, host="[2001:db8::1]", port=80),
    wire.StreamOpened(id=11, address="93.184.216.34"),
    wire.StreamRefused(id=12, reason=wire.StreamRefusal.DESTINATION, message="loopback"),
    wire.StreamData(id=11, data=b"\x16\x03\x01" * 10),
    wire.StreamData(id=11, data=b"x" * wire.MAX_STREAM_DATA),
    wire.StreamClose(id=11),
    wire.StreamClose(id=11, error="byte cap"),
    wire.StreamOpen(id=13, host="news.cocoon.test", port=443, task=7, avoid=[ADDR]),
    wire.StreamOpened(id=13, address="127.0.0.1", node=ADDR),
    # crawls
    wire.Crawl(id=20, spec=SPEC, max_cost=10**9, voucher=VoucherFrame(compute=0, data=10**9, signature=SIG)),
    wire.CrawlTask(id=21, spec=SPEC),
    wire.CrawlRecord(id=21, index=0, record=SIGNED),
    wire.CrawlDone(
        id=21, stop=wire.CrawlStop.PAGE_LIMIT, records=1, failed=0, duplicates=0, refetched=1,
        manifest_digest=K, validator=K, signature=SIG,
    ),
    wire.CrawlDone(
        id=20, stop=wire.CrawlStop.EXHAUSTED, records=0, failed=2, duplicates=1, refetched=0,
        manifest_digest=K, validator=K, signature=SIG, cost=5, account=account(),
    ),
    # epoch settlement
    wire.LedgerRequest(id=30, epoch=486_111),
    wire.Ledger(id=30, epoch=486_111, router=ADDR, provider=ADDR, rows=[], signature=SIG),
    wire.Ledger(
        id=31, epoch=1, router=ADDR, provider=ADDR, signature=SIG,
        rows=[wire.LedgerRow(provider=ADDR, model="relay", units=3, requests=1, earned=30),
              wire.LedgerRow(provider=ADDR, model="all-MiniLM-L6-v2", units=9, failures=1, latency_ms=4, earned=9000)],
    ),
    wire.ReportSignature(epoch=2, digest=K, key=K, signature=SIG),
]


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_roundtrip_every_frame_is_equal(frame: wire.Frame) -> None:
    assert wire.decode(wire.encode(frame)) == frame


def test_roundtrip_covers_every_frame_type() -> None:
    assert {type(f) for f in FRAMES} == set(wire.Frame.__args__)  # type: ignore[attr-defined]


def _raw(frame: wire.Frame, **overrides: object) -> bytes:
    """`frame` as msgpack with some fields replaced, bypassing the Struct's own checks."""
    obj = msgspec.to_builtins(frame, builtin_types=(bytes,))
    obj.update(overrides)
    return msgspec.msgpack.encode(obj)


HELLO = FRAMES[1]
CHALLENGE = FRAMES[0]


@pytest.mark.parametrize(
    ("frame", "overrides"),
    [
        pytest.param(HELLO, {"node_key": b"\x00" * 31}, id="key-short"),
        pytest.param(HELLO, {"node_key": b"\x00" * 33}, id="key-long"),
        pytest.param(HELLO, {"signature": b"\x00" * 63}, id="signature-short"),
        pytest.param(HELLO, {"role": "admin"}, id="unknown-role"),
        pytest.param(HELLO, {"agent": "x" * 101}, id="agent-too-long"),
        pytest.param(HELLO, {"owner": "0:" + "AB" * 32}, id="address-upper-hex"),
        pytest.param(HELLO, {"owner": "0:" + "ab" * 31}, id="address-short"),
        pytest.param(HELLO, {"owner": "EQ" + "A" * 46}, id="address-user-friendly"),
        pytest.param(HELLO, {"owner": ADDR + "\n"}, id="address-trailing-newline"),
        pytest.param(CHALLENGE, {"root": "1234:" + "ab" * 32}, id="address-workchain-too-long"),
        pytest.param(CHALLENGE, {"nonce": b""}, id="nonce-empty"),
        pytest.param(CHALLENGE, {"version": "1"}, id="version-not-int"),
        pytest.param(FRAMES[2], {"compute_unit_price": -1}, id="negative-price"),
        pytest.param(FRAMES[2], {"data_unit_price": 2**63}, id="price-over-int64"),
        pytest.param(FRAMES[5], {"queued": -1}, id="negative-queue"),
        pytest.param(FRAMES[6], {"id": -1}, id="negative-id"),
        pytest.param(FRAMES[14], {"compute": -5}, id="negative-amount"),
        pytest.param(embed(), {"voucher": {"compute": -1, "data": 0, "signature": SIG}}, id="negative-voucher"),
        pytest.param(embed(), {"max_coefficient": 0}, id="coefficient-zero"),
        pytest.param(embed(), {"max_coefficient": 1_000_001}, id="coefficient-over-max"),
        pytest.param(embed(), {"model": ""}, id="model-empty"),
        pytest.param(embed(), {"model": "bge small"}, id="model-space"),
        pytest.param(embed(), {"model": "bge\n"}, id="model-trailing-newline"),
        pytest.param(embed(), {"model": "m" * 65}, id="model-too-long"),
        pytest.param(embed(), {"texts": ["x" * (wire.MAX_INPUT_CHARS + 1)]}, id="text-too-long"),
        pytest.param(embed(), {"texts": ["x"] * (wire.MAX_INPUTS + 1)}, id="too-many-texts"),
        pytest.param(embed(texts=[]), {"tokens": [[0]] * (wire.MAX_INPUTS + 1)}, id="too-many-token-inputs"),
        pytest.param(embed(texts=[]), {"tokens": [[0] * (wire.MAX_TOKEN_IDS + 1)]}, id="too-many-token-ids"),
        pytest.param(embed(texts=[]), {"tokens": [[2**31]]}, id="token-id-too-big"),
        pytest.param(embed(texts=[]), {"tokens": [[-1]]}, id="token-id-negative"),
        pytest.param(FRAMES[15], {"message": "m" * 1001}, id="error-message-too-long"),
        pytest.param(FRAMES[4], {"capacity": 0}, id="capacity-zero"),
        pytest.param(wire.StreamOpen(id=1, host="a", port=443), {"port": 0}, id="stream-port-zero"),
        pytest.param(wire.StreamOpen(id=1, host="a", port=443), {"port": 65_536}, id="stream-port-over"),
        pytest.param(wire.StreamOpen(id=1, host="a", port=443), {"host": ""}, id="stream-host-empty"),
        pytest.param(wire.StreamOpen(id=1, host="a", port=443), {"host": "a b"}, id="stream-host-space"),
        pytest.param(wire.StreamOpen(id=1, host="a", port=443), {"host": "a\n"}, id="stream-host-newline"),
        pytest.param(wire.StreamOpen(id=1, host="a", port=443), {"host": "a" * 254}, id="stream-host-long"),
        pytest.param(wire.StreamOpened(id=1, address="1.2.3.4"), {"address": "example.org"}, id="stream-address-name"),
        pytest.param(wire.StreamRefused(id=1, reason=wire.StreamRefusal.PORT), {"reason": 99}, id="refusal-unknown"),
        pytest.param(wire.StreamData(id=1, data=b"x"), {"data": b""}, id="stream-data-empty"),
        pytest.param(
            wire.StreamData(id=1, data=b"x"), {"data": b"x" * (wire.MAX_STREAM_DATA + 1)}, id="stream-data-too-long"
        ),
        pytest.param(wire.StreamClose(id=1), {"error": "e" * 1001}, id="stream-close-error-long"),
        pytest.param(wire.StreamOpen(id=1, host="a", port=443), {"avoid": ["EQ" + "A" * 46]}, id="stream-avoid-bad"),
        pytest.param(wire.CrawlTask(id=1, spec=SPEC), {"spec": {"seeds": []}}, id="crawl-no-seed"),
        pytest.param(wire.CrawlTask(id=1, spec=SPEC), {"spec": {"seeds": ["http://a.test/"]}}, id="crawl-plain-http"),
        pytest.param(wire.CrawlTask(id=1, spec=SPEC), {"spec": {"seeds": ["https:///x"]}}, id="crawl-no-host"),
        pytest.param(
            wire.CrawlTask(id=1, spec=SPEC), {"spec": {"seeds": ["https://a.test/"], "max_pages": 0}}, id="crawl-0"
        ),
        pytest.param(
            wire.CrawlTask(id=1, spec=SPEC), {"spec": {"seeds": ["https://a.test/"], "depth": 1}}, id="crawl-key"
        ),
        pytest.param(
            wire.CrawlTask(id=1, spec=SPEC), {"spec": {"seeds": ["https://a.test/"], "politeness_ms": 0.5}},
            id="crawl-float",
        ),
    ],
)
def test_decode_out_of_bounds_field_is_refused(frame: wire.Frame, overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidMessage):
        wire.decode(_raw(frame, **overrides))


def test_decode_missing_field_is_refused() -> None:
    obj = msgspec.to_builtins(FRAMES[4], builtin_types=(bytes,))
    del obj["coefficient"]
    with pytest.raises(InvalidMessage):
        wire.decode(msgspec.msgpack.encode(obj))


def test_decode_at_the_bounds_is_accepted() -> None:
    frame = embed(texts=["x" * wire.MAX_INPUT_CHARS] * 2, max_coefficient=1_000_000, units=2**63 - 1)
    assert wire.decode(wire.encode(frame)) == frame
    many = embed(texts=[""] * wire.MAX_INPUTS)
    assert wire.decode(wire.encode(many)) == many


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xc1", id="reserved-byte"),
        pytest.param(b"\x92\x01", id="truncated-array"),
        pytest.param(b"not msgpack at all", id="text"),
        pytest.param(msgspec.msgpack.encode([1, 2, 3]), id="array-not-map"),
        pytest.param(msgspec.msgpack.encode({"id": 1}), id="no-tag"),
        pytest.param(msgspec.msgpack.encode({"t": "Explode", "id": 1}), id="unknown-tag"),
        pytest.param(msgspec.msgpack.encode({"t": "AccountState"}), id="struct-not-a-frame"),
    ],
)
def test_decode_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidMessage):
        wire.decode(data)


def test_frame_id_recovers_id_of_undecodable_embed() -> None:
    data = _raw(embed(id=4242), texts=["x" * (wire.MAX_INPUT_CHARS + 1)])
    with pytest.raises(InvalidMessage):
        wire.decode(data)
    assert wire.frame_id(data) == 4242


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xc1", id="not-msgpack"),
        pytest.param(msgspec.msgpack.encode([1]), id="not-a-map"),
        pytest.param(msgspec.msgpack.encode({"t": "Embed"}), id="no-id"),
        pytest.param(msgspec.msgpack.encode({"t": "Embed", "id": -1}), id="negative"),
        pytest.param(msgspec.msgpack.encode({"t": "Embed", "id": 2**63}), id="over-int64"),
        pytest.param(msgspec.msgpack.encode({"t": "Embed", "id": "7"}), id="string"),
        pytest.param(msgspec.msgpack.encode({"t": "Embed", "id": True}), id="bool"),
    ],
)
def test_frame_id_unreadable_is_none(data: bytes) -> None:
    assert wire.frame_id(data) is None


def _digest(challenge: Challenge, **kw: object) -> bytes:
    args: dict[str, object] = {"role": "worker", "owner": ADDR, "node_key": K}
    args.update(kw)
    return wire.hello_digest(challenge, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("challenge_change", "identity_change"),
    [
        pytest.param({"version": 2}, {}, id="version"),
        pytest.param({"nonce": b"\x01" * 32}, {}, id="nonce"),
        pytest.param({"router": "0:" + "ee" * 32}, {}, id="router"),
        pytest.param({"router_key": b"\x02" * 32}, {}, id="router-key"),
        pytest.param({"root": ADDR}, {}, id="root"),
        pytest.param({}, {"role": "client"}, id="role"),
        pytest.param({}, {"owner": MASTER}, id="owner"),
        pytest.param({}, {"node_key": b"\x03" * 32}, id="node-key"),
    ],
)
def test_hello_digest_changing_any_field_changes_it(
    challenge_change: dict[str, object], identity_change: dict[str, object]
) -> None:
    base = _digest(CHALLENGE)
    changed = msgspec.structs.replace(CHALLENGE, **challenge_change)
    assert _digest(changed, **identity_change) != base


def test_hello_digest_is_deterministic_and_unambiguous() -> None:
    assert _digest(CHALLENGE) == _digest(msgspec.structs.replace(CHALLENGE))
    assert len(_digest(CHALLENGE)) == 32
    # length prefixes: moving a byte from one field to the next is a different digest
    a = Challenge(version=1, nonce=K, router=ADDR, router_key=K, root=MASTER)
    assert _digest(a, role="worker", owner=ADDR) != _digest(a, role="worke", owner="r" + ADDR)


def test_error_code_values_are_unique() -> None:
    values = [c.value for c in ErrorCode]
    assert len(values) == len(set(values))


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_decode_raw_without_overrides_is_accepted(frame: wire.Frame) -> None:
    """The refusals above are the overridden field's doing, not `_raw`'s."""
    assert wire.decode(_raw(frame)) == frame


def test_ledger_digest_ignores_row_order_and_binds_every_field() -> None:
    a = wire.LedgerRow(provider=ADDR, model="relay", units=3, earned=30)
    b = wire.LedgerRow(provider=ADDR, model="crawl", units=1, earned=5)
    base = {"epoch": 7, "router": ADDR, "provider": ADDR}
    d = wire.ledger_digest(rows=[a, b], **base)
    assert d == wire.ledger_digest(rows=[b, a], **base)
    assert d != wire.ledger_digest(rows=[a, msgspec.structs.replace(b, earned=6)], **base)
    assert d != wire.ledger_digest(rows=[a, b], **{**base, "epoch": 8})
    assert d != wire.ledger_digest(rows=[a], **base)
