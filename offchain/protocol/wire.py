"""The mesh's wire format, defined once: every frame agents exchange over websockets.

Frames are `msgspec` Structs in one tagged union (`Frame`), encoded as msgpack. Decoding
validates every field (types, lengths, ranges), so an agent's core only ever sees
well-formed frames; anything else is an `InvalidMessage` that the transport answers with
an `Error` frame. Version 1 of the protocol; the version travels in `Challenge` and `Hello`.

A session (DESIGN.md, "Agent layer decisions"):

    router                                  peer (client / worker / data node / validator)
      |-- Challenge(version, nonce, router, router_key, root) -->|
      |<-- Hello(version, role, owner, node_key, signature) -----|   signs hello_digest(...)
      |-- Welcome(session, prices, account?) ------------------->|
    then, for a client:  Embed -> Embedded | Error;  RequestClose -> CloseApproved | Error;
                         ListModels -> Models
          for a worker:  Offer, Load ->;  <- Work;  WorkDone | Error ->
          for a validator: Reputation -> (no answer; Error if refused)

Amounts are nanoTON (`Nano`), units are those of `offchain.protocol.units`. Vectors travel
as packed little-endian float32 (`vectors`, n x dim), not as msgpack arrays: decoding a
384-float array element by element would cost more than the inference.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum
from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from pytoniq_core import Address

from offchain.errors import InvalidMessage
from offchain.protocol.provenance import SignedRecord

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_INPUTS",
    "MAX_INPUT_CHARS",
    "MAX_TOKEN_IDS",
    "PLAIN",
    "PROTOCOL_VERSION",
    "AccountState",
    "Challenge",
    "CloseApproved",
    "Dispute",
    "DisputeSettled",
    "Embed",
    "Embedded",
    "Error",
    "ErrorCode",
    "Frame",
    "Hello",
    "ListModels",
    "ListWorkers",
    "Load",
    "ModelInfo",
    "ModelOffer",
    "Models",
    "Offer",
    "Receipt",
    "Recipient",
    "Reputation",
    "RequestClose",
    "Role",
    "Sealed",
    "SealedInput",
    "VoucherFrame",
    "Welcome",
    "Work",
    "WorkDone",
    "WorkerInfo",
    "Workers",
    "decode",
    "encode",
    "frame_id",
    "hello_digest",
    "receipt_digest",
    "wire_address",
]
__all__ += [  # data node streams
    "MAX_STREAM_DATA",
    "RELAY_FAULT",
    "StreamClose",
    "StreamData",
    "StreamOpen",
    "StreamOpened",
    "StreamRefusal",
    "StreamRefused",
]
__all__ += [  # crawls (the data path: a client buys, a validator fetches through data nodes)
    "MAX_CRAWL_PAGES",
    "Crawl",
    "CrawlDone",
    "CrawlRecord",
    "CrawlSpec",
    "CrawlStop",
    "CrawlTask",
]
__all__ += [  # epoch settlement (routers' ledgers, validators' report signatures)
    "MAX_LEDGER_ROWS",
    "Ledger",
    "LedgerRequest",
    "LedgerRow",
    "ReportSignature",
    "ledger_digest",
]

PROTOCOL_VERSION = 2  # 2: sealed requests, receipts bind the answer's key
MAX_FRAME_BYTES = 4 * 1024 * 1024
"""Largest frame an agent accepts (4 MiB: 2048 inputs of ~2 KB, or 2048 x 384 float32 vectors
in one answer). A larger one gets `FRAME_TOO_LARGE` and is dropped; the connection goes on."""
MAX_INPUTS = 2048
"""Inputs in one embeddings request (OpenAI's own limit)."""
MAX_INPUT_CHARS = 32_768
"""Characters in one text input (the model truncates at its token limit anyway)."""
MAX_TOKEN_IDS = 8192
"""Token ids in one pre-tokenized input (OpenAI's limit per input)."""


class ErrorCode(IntEnum):
    """Typed errors of the mesh (`Error.code`); the gateway maps them to HTTP statuses."""

    BAD_FRAME = 1  # undecodable, or a field out of its bounds
    FRAME_TOO_LARGE = 2
    UNSUPPORTED_VERSION = 3
    UNEXPECTED_FRAME = 4  # a valid frame this peer may not send now (e.g. Work from a client)
    NOT_AUTHENTICATED = 10  # no valid Hello yet, or its signature does not match
    NOT_A_PROVIDER = 11  # no registered Provider of this role with this node key
    PROVIDER_INACTIVE = 12  # unstaking, slashed, or below the role's minimum stake
    NO_CHANNEL = 13  # no open Channel between this client and this router
    ATTESTATION_FAILED = 14  # the worker's evidence does not verify, binds other keys, or measures a refused image
    UNKNOWN_MODEL = 20
    MODEL_NOT_ALLOWED = 21  # not (or no longer) in Root's model allowlist
    INPUT_TOO_LARGE = 22
    INVALID_INPUT = 23
    NO_WORKER = 24  # no connected worker serves the model within the client's coefficient
    TOO_MANY_REQUESTS = 25  # the peer's in-flight limit
    DUPLICATE_REQUEST = 26  # a request id already in flight on this connection
    VOUCHER_BAD_SIGNATURE = 30
    VOUCHER_STALE = 31  # below the newest voucher the router holds
    VOUCHER_UNDERPAID = 32  # does not cover what is charged, in flight and this request
    VOUCHER_OVER_DEPOSIT = 33  # more than the channel holds
    UNITS_MISMATCH = 34  # the request declares fewer units than its input has
    WORKER_FAILED = 40
    TIMEOUT = 41
    BUSY = 42  # e.g. a close asked for while requests are in flight
    SHUTTING_DOWN = 43
    RESULT_REJECTED = 44  # the client refused an answer: not sealed to it, or not signed by its worker
    DISPUTE_REFUSED = 45  # the dispute's proof does not hold (the answer opens, or the receipt is not the worker's)
    NO_VALIDATOR = 46  # no validator is connected to take a crawl
    CRAWL_FAILED = 47  # the crawl's validator gave up (its CrawlDone says how far it got)
    INTERNAL = 50


# ---- field types ------------------------------------------------------------------------
U64 = Annotated[int, Meta(ge=0, le=2**63 - 1)]  # msgspec bounds fit an int64
Nano = Annotated[int, Meta(ge=0, le=2**63 - 1)]  # 9.2e9 TON: above the total supply
Key32 = Annotated[bytes, Meta(min_length=32, max_length=32)]
Sig64 = Annotated[bytes, Meta(min_length=64, max_length=64)]
# Patterns end in \Z, not $: msgspec matches with re.search, where $ also matches before a
# trailing newline ("0:ab..\n" would pass).
Addr = Annotated[str, Meta(pattern=r"^-?[0-9]{1,3}:[0-9a-f]{64}\Z")]  # raw form, lower-case hex
Name = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+\Z")]
Text = Annotated[str, Meta(max_length=MAX_INPUT_CHARS)]
TokenIds = Annotated[list[Annotated[int, Meta(ge=0, lt=2**31)]], Meta(max_length=MAX_TOKEN_IDS)]
Coefficient = Annotated[int, Meta(ge=1, le=1_000_000)]  # units.MAX_COEFFICIENT
Count = Annotated[int, Meta(ge=0, le=1_000_000)]
Message = Annotated[str, Meta(max_length=1000)]
Role = Literal["client", "worker", "datanode", "validator"]


class _Frame(msgspec.Struct, frozen=True, tag=True, tag_field="t"):
    """Base of every frame: the tag is the class name."""


# ---- handshake ----------------------------------------------------------------------------
class Challenge(_Frame):
    """Router -> peer, first frame: sign this nonce (with who you say you are) to go on."""

    version: int
    nonce: Key32
    router: Addr  # the router's wallet (a Channel's `router`)
    router_key: Key32  # the router's node key (a Channel's `routerKey`)
    root: Addr


class Hello(_Frame):
    """Peer -> router: who I am, proven by `signature` = node key over `hello_digest`.

    `owner` is the wallet that owns the peer's Provider (workers, data nodes, validators) or
    the client's wallet (clients: `node_key` is then the channel's client key)."""

    version: int
    role: Role
    owner: Addr
    node_key: Key32
    signature: Sig64
    agent: Annotated[str, Meta(max_length=100)] = ""


class AccountState(msgspec.Struct, frozen=True):
    """The router's books for a client's channel, as persisted (sent in Welcome and on
    request so that a restarted client resumes exactly where the router is)."""

    channel: Addr
    deposit: Nano
    charged_compute: Nano
    charged_data: Nano
    voucher_compute: Nano  # the newest voucher the router holds
    voucher_data: Nano
    voucher_signature: bytes = b""  # empty when it holds none


class Welcome(_Frame):
    session: Annotated[str, Meta(max_length=64)]
    compute_unit_price: Nano
    data_unit_price: Nano
    account: AccountState | None = None


# ---- models and load ---------------------------------------------------------------------
class ModelOffer(msgspec.Struct, frozen=True):
    name: Name
    hash: Key32  # sha256 of the ONNX file: what Root's allowlist holds
    dim: Annotated[int, Meta(ge=1, le=65_536)]
    max_tokens: Annotated[int, Meta(ge=1, le=1_000_000)]
    kind: Literal["embedding"] = "embedding"


class Offer(_Frame):
    """Worker -> router after Welcome (and again whenever it changes).

    `encryption_key` is the X25519 key requests are sealed to, generated at the worker's
    start; `evidence` is its attestation (offchain.attestation's encoding), which binds
    that key and the node key to the measured image: clients check it themselves."""

    models: Annotated[list[ModelOffer], Meta(max_length=64)]
    coefficient: Coefficient
    capacity: Annotated[int, Meta(ge=1, le=100_000)]  # requests it takes at once
    encryption_key: Key32
    evidence: Annotated[bytes, Meta(max_length=64 * 1024)] = b""


class ListWorkers(_Frame):
    """Client -> router: the workers serving `model` now, with their attestations."""

    id: U64
    model: Name


class WorkerInfo(msgspec.Struct, frozen=True):
    provider: Addr
    node_key: Key32
    encryption_key: Key32
    coefficient: Coefficient
    evidence: bytes


class Workers(_Frame):
    id: U64
    model: Name
    workers: Annotated[list[WorkerInfo], Meta(max_length=256)]


class Load(_Frame):
    """Worker -> router, periodically: what it has queued (inputs waiting or running)."""

    queued: Count


class ListModels(_Frame):
    id: U64


class ModelInfo(msgspec.Struct, frozen=True):
    name: Name
    hash: Key32
    dim: int
    max_tokens: int
    workers: int
    min_coefficient: int  # the cheapest connected worker for it


class Models(_Frame):
    id: U64
    models: list[ModelInfo]


# ---- compute ------------------------------------------------------------------------------
class VoucherFrame(msgspec.Struct, frozen=True):
    """A cumulative voucher of the client's channel (offchain.protocol.voucher)."""

    compute: Nano
    data: Nano
    signature: Sig64


class Recipient(msgspec.Struct, frozen=True):
    """One worker a sealed request may go to: the request's key, sealed to that worker."""

    worker: Key32  # the worker's encryption key
    key_box: Annotated[bytes, Meta(max_length=128)]  # Box(client ephemeral, worker).encrypt(request key)


class Sealed(msgspec.Struct, frozen=True):
    """A request only its recipients can read (DESIGN.md, "Sealing").

    The payload (a msgpack `SealedInput`) is encrypted once with a fresh random key
    (XSalsa20-Poly1305, PyNaCl SecretBox); that key is sealed to each candidate worker with
    PyNaCl Box between a fresh per-request client key and the worker's attested encryption
    key. The router may pick any recipient, and retry on another, without reading a word;
    the worker seals its answer to `client_key`."""

    client_key: Key32  # the request's ephemeral X25519 public key
    recipients: Annotated[list[Recipient], Meta(min_length=1, max_length=16)]
    payload: Annotated[bytes, Meta(max_length=MAX_FRAME_BYTES)]


class SealedInput(msgspec.Struct, frozen=True):
    """What a sealed payload holds (exactly one of the two is non-empty)."""

    texts: Annotated[list[Text], Meta(max_length=MAX_INPUTS)] = []
    tokens: Annotated[list[TokenIds], Meta(max_length=MAX_INPUTS)] = []


class Embed(_Frame):
    """Client -> router: embed a `sealed` input (the SDK's only path), or plain `texts` /
    pre-tokenized `tokens` (a router sees these: kept for benchmarks' sealing-off baseline
    and for debugging). Exactly one of the three is given.

    `units` is what the client counted (offchain.models' tokenizer); the worker refuses the
    request if its input has more. The voucher must cover what the router has charged, what
    is in flight, and `units` at `max_coefficient`; the client is charged the chosen worker's
    price for the units the worker signs for, never more."""

    id: U64
    model: Name
    units: U64
    max_coefficient: Coefficient
    voucher: VoucherFrame
    texts: Annotated[list[Text], Meta(max_length=MAX_INPUTS)] = []
    tokens: Annotated[list[TokenIds], Meta(max_length=MAX_INPUTS)] = []
    sealed: Sealed | None = None


class Work(_Frame):
    """Router -> worker: one request to run (the router's own id), as the client sent it."""

    id: U64
    model: Name
    units: U64
    sealed: Sealed | None = None
    texts: Annotated[list[Text], Meta(max_length=MAX_INPUTS)] = []
    tokens: Annotated[list[TokenIds], Meta(max_length=MAX_INPUTS)] = []


class Receipt(msgspec.Struct, frozen=True):
    """The worker's signed statement of what it did: what the router bills by."""

    request: U64  # the router's Work id
    model_hash: Key32
    units: U64
    result_hash: Key32  # sha256 of `vectors` (the sealed answer, when sealed)
    client_key: Key32  # the sealed request's ephemeral key the answer is sealed to; zeros when plain
    signature: Sig64  # worker node key over receipt_digest(...)


class WorkDone(_Frame):
    id: U64
    dim: int
    vectors: bytes
    receipt: Receipt


class Embedded(_Frame):
    """Router -> client: the result, what it cost, and the router's books after it."""

    id: U64
    model: Name
    dim: int
    vectors: bytes
    units: U64
    cost: Nano
    coefficient: Coefficient
    worker: Addr  # the serving worker's Provider
    worker_key: Key32
    receipt: Receipt
    account: AccountState


class Dispute(_Frame):
    """Client -> router: the answer to request `receipt.request` does not open with the key
    it was sealed to. `ephemeral` is that request's (single-use) ephemeral secret: with it the
    router checks, without trusting anyone, that the worker's signed receipt names this
    answer and this key and that the answer does not open, then refunds the charge. (It also
    lets the router read that one request: the client chooses to reveal it.)"""

    id: U64
    receipt: Receipt
    answer: Annotated[bytes, Meta(max_length=MAX_FRAME_BYTES)]
    ephemeral: Key32


class DisputeSettled(_Frame):
    id: U64
    refunded: Nano
    account: AccountState


class RequestClose(_Frame):
    """Client -> router: sign the final totals so that the channel can close at once."""

    id: U64


class CloseApproved(_Frame):
    id: U64
    compute: Nano
    data: Nano
    signature: Sig64  # router node key over the CloseApproval cell's hash


class Reputation(_Frame):
    """Validator -> router: its spot checks' verdict on one worker's Provider.

    `score` is the validator's reputation of it (0..1: an exponentially weighted pass rate of
    its probes); the router uses it as that worker's `reputation` (its choice weighs it) and
    keeps it for the Provider across reconnects. `probes` and `failures` are counts since the
    validator first probed it, for the router's log."""

    provider: Addr
    score: Annotated[float, Meta(ge=0.0, le=1.0)]
    probes: U64
    failures: U64


class Error(_Frame):
    id: U64 | None
    code: int
    message: Message = ""


# ---- data node streams (DESIGN.md, "Data node": the validator is the TLS client) ----------
MAX_STREAM_DATA = 64 * 1024
"""Bytes in one `StreamData` frame."""


class StreamRefusal(IntEnum):
    """Why a data node refused to open a stream (`StreamRefused.reason`), defined once."""

    PORT = 1  # not a port the node relays (80 and 443)
    DESTINATION = 2  # the resolved address is private, loopback, link-local, multicast, reserved or unspecified
    UNRESOLVED = 3  # the name does not resolve (or is not a host name)
    TOO_MANY_STREAMS = 4  # the node's cap on concurrent streams
    DUPLICATE = 5  # a stream with this id is open on this connection
    CONNECT_FAILED = 6  # every checked address refused or timed out
    SHUTTING_DOWN = 7
    NO_NODE = 8  # router -> validator: no connected data node (outside the ones to avoid) can take it
    BUDGET = 9  # router -> validator: what is left of the crawl's budget does not cover another page
    NOT_YOURS = 10  # router -> validator: no crawl task of this session has that id


Host = Annotated[str, Meta(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9._:\[\]-]+\Z")]  # a name or an IP literal
IpText = Annotated[str, Meta(min_length=2, max_length=45, pattern=r"^[0-9A-Fa-f.:]+\Z")]


class StreamOpen(_Frame):
    """Open a TCP stream to `host`:`port`; `id` is the sender's id for it.

    Validator -> router: for crawl `task`, through a data node the router picks, never one
    of `avoid` (Provider addresses: nodes that failed this page already). Router -> data
    node: the router's own id (`task` 0, `avoid` empty). The node resolves `host` itself,
    checks the resolved address against its policy, and connects to exactly that address
    (no second lookup: no DNS rebinding)."""

    id: U64
    host: Host
    port: Annotated[int, Meta(ge=1, le=65_535)]
    task: U64 = 0
    avoid: Annotated[list[Addr], Meta(max_length=64)] = []


class StreamOpened(_Frame):
    """Connected; `address` is the IP the node checked and connected to. Router -> validator
    adds `node`, the relaying data node's Provider (what the provenance record names)."""

    id: U64
    address: IpText
    node: Addr | None = None


class StreamRefused(_Frame):
    """Data node -> router: the stream was not opened (nothing was sent to the target)."""

    id: U64
    reason: StreamRefusal
    message: Message = ""


class StreamData(_Frame):
    """Bytes of an open stream, either way (TLS records: the node cannot read them)."""

    id: U64
    data: Annotated[bytes, Meta(min_length=1, max_length=MAX_STREAM_DATA)]


RELAY_FAULT = "relay fault: "
"""How a validator's `StreamClose.error` starts when the relaying node is to blame (the TLS
check failed, the stream was cut short or stalled): the router then charges the crawl
nothing for that stream and counts a failure against the node. Any other close from the
validator (clean, or the site's fault, such as a body over the page cap) is charged."""


class StreamClose(_Frame):
    """Either way: the stream is over (the sender has dropped it; no answer is sent).

    From the node, after the last `StreamData`: the target closed (`error` empty), or the
    node closed it (`error` says why: its byte cap, a failed write). From the validator:
    done with it (`error` empty), or see `RELAY_FAULT`."""

    id: U64
    error: Message = ""


# ---- crawls (DESIGN.md, "Validator": the data half) ---------------------------------------
MAX_CRAWL_PAGES = 10_000
"""Pages in one crawl."""

Url = Annotated[str, Meta(min_length=9, max_length=2048, pattern=r"^https://[^\s/?#]+[^\s]*\Z")]


class CrawlSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a client buys: pages reached from `seeds` (https only: every record names the
    site's certificate), following links up to `max_depth` hops, at most `max_pages` pages,
    on the seeds' own hosts when `same_site`. `robots.txt` is always respected; the same
    host is fetched at most once per `politeness_ms`; a page (relay bytes both ways, TLS
    included) may be at most `max_page_bytes`. Whole numbers only: the spec goes into the
    dataset's manifest as canonical JSON."""

    seeds: Annotated[list[Url], Meta(min_length=1, max_length=64)]
    max_pages: Annotated[int, Meta(ge=1, le=MAX_CRAWL_PAGES)] = 50
    max_depth: Annotated[int, Meta(ge=0, le=32)] = 3
    same_site: bool = True
    politeness_ms: Annotated[int, Meta(ge=0, le=60_000)] = 500
    max_page_bytes: Annotated[int, Meta(ge=16 * 1024, le=64 * 1024 * 1024)] = 4 * 1024 * 1024


class Crawl(_Frame):
    """Client -> router: run `spec`, paying at most `max_cost` nanoTON from the data side of
    the channel. The voucher must cover what is charged, what is in flight and `max_cost`;
    the crawl is charged what it relayed (`units.data_price`) plus a fee per page delivered
    (`units.page_price`), never more than `max_cost`. Answered by `CrawlRecord`s (same id),
    then `CrawlDone` or an `Error`."""

    id: U64
    spec: CrawlSpec
    max_cost: Nano
    voucher: VoucherFrame


class CrawlTask(_Frame):
    """Router -> validator: run crawl `id` (the router's id; the same id again after a
    reconnect: the validator resumes from its own store)."""

    id: U64
    spec: CrawlSpec


class CrawlRecord(_Frame):
    """Validator -> router -> client: page `index` (0, 1, ... in the dataset's order) of
    crawl `id`, as the validator signed it. Sent again after a resumed crawl: the client
    keeps the first copy of each index."""

    id: U64
    index: Annotated[int, Meta(ge=0, lt=MAX_CRAWL_PAGES)]
    record: SignedRecord


class CrawlStop(IntEnum):
    """Why a crawl ended (`CrawlDone.stop`), defined once."""

    EXHAUSTED = 1  # nothing left to fetch within the depth and the same-site rule
    PAGE_LIMIT = 2  # `max_pages` records
    BUDGET = 3  # the router refused another page: `max_cost` is spent
    NO_NODE = 4  # no data node could relay (every one failed or none is connected)


class CrawlDone(_Frame):
    """Validator -> router -> client: the crawl is over. `manifest_digest` is the dataset
    manifest's digest over the records sent (`offchain.dataset.manifest_digest`, default
    shard size), signed by `validator`; the client builds the same dataset and checks it.
    The router fills in `cost` (what the crawl was charged) and `account`."""

    id: U64
    stop: CrawlStop
    records: Annotated[int, Meta(ge=0, le=MAX_CRAWL_PAGES)]
    failed: Count  # pages given up on (every node failed them, or the site did)
    duplicates: Count  # bodies seen before (by hash): not recorded twice
    refetched: Count  # pages fetched again through another node after a relay failure
    manifest_digest: Key32
    validator: Key32
    signature: Sig64
    cost: Nano = 0
    account: AccountState | None = None


# ---- epoch settlement ------------------------------------------------------------------------
MAX_LEDGER_ROWS = 10_000
"""Rows in one router ledger (per provider and model: far more than one router serves)."""


class LedgerRequest(_Frame):
    """Validator -> router: your usage ledger of router epoch `epoch` (clock // epoch_seconds).
    The router first redeems what it earned, so the chain holds what the ledger claims."""

    id: U64
    epoch: U64


class LedgerRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One row of a router's usage table (`offchain.settlement.UsageRow` without the epoch)."""

    provider: Addr
    model: Name
    units: U64 = 0
    requests: U64 = 0
    failures: U64 = 0
    latency_ms: U64 = 0
    earned: Nano = 0


class Ledger(_Frame):
    """Router -> validator: its usage ledger of `epoch`, signed by the router's node key over
    `ledger_digest(...)`. `router` is its wallet (its channels' router), `provider` its
    ROUTER Provider (the leaf its routing share goes to)."""

    id: U64
    epoch: U64
    router: Addr
    provider: Addr
    rows: Annotated[list[LedgerRow], Meta(max_length=MAX_LEDGER_ROWS)]
    signature: Sig64


class ReportSignature(_Frame):
    """Validator -> router -> the other validators: `key` signed epoch `epoch`'s report whose
    `EpochResult.digest()` is `digest` (`signature` over the report cell's hash, as the pool
    checks it)."""

    epoch: U64
    digest: Key32
    key: Key32
    signature: Sig64


Frame = (
    Challenge
    | Hello
    | Welcome
    | Offer
    | Load
    | ListModels
    | Models
    | ListWorkers
    | Workers
    | Embed
    | Work
    | WorkDone
    | Embedded
    | Dispute
    | DisputeSettled
    | RequestClose
    | CloseApproved
    | Reputation
    | Error
    | StreamOpen
    | StreamOpened
    | StreamRefused
    | StreamData
    | StreamClose
    | Crawl
    | CrawlTask
    | CrawlRecord
    | CrawlDone
    | LedgerRequest
    | Ledger
    | ReportSignature
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Frame)
_loose = msgspec.msgpack.Decoder()


def encode(frame: Frame) -> bytes:
    return _encoder.encode(frame)


def decode(data: bytes) -> Frame:
    """One frame from bytes, fully validated.

    Raises:
        InvalidMessage: not msgpack, an unknown tag, a missing or out-of-bounds field.
    """
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise InvalidMessage(f"bad frame: {err}") from err


def frame_id(data: bytes) -> int | None:
    """The request id of a frame that failed to decode, if one can be read, so that the
    error answer names the request it refuses."""
    try:
        obj = _loose.decode(data)
    except Exception:
        return None
    rid = obj.get("id") if isinstance(obj, dict) else None
    return rid if type(rid) is int and 0 <= rid < 2**63 else None  # not a bool


def wire_address(a: Address | str) -> str:
    """An address in the form frames carry it (`Addr`: raw, lower-case hex)."""
    return (a if isinstance(a, Address) else Address(a)).to_str(is_user_friendly=False)


def hello_digest(challenge: Challenge, *, role: str, owner: str, node_key: bytes) -> bytes:
    """What a peer signs: the router's challenge (all of it, version included) bound to its
    claimed identity and role."""
    h = hashlib.sha256(b"cocoon/hello/v1\x00")
    for part in (
        str(challenge.version).encode(),
        challenge.nonce,
        challenge.router.encode(),
        challenge.router_key,
        challenge.root.encode(),
        role.encode(),
        owner.encode(),
        node_key,
    ):
        h.update(len(part).to_bytes(2, "big") + part)
    return h.digest()


PLAIN = bytes(32)
"""`Receipt.client_key` of a plain (unsealed) request."""


def receipt_digest(*, request: int, model_hash: bytes, units: int, result_hash: bytes, client_key: bytes) -> bytes:
    """What a worker signs for each request it served: binding the answer's hash to the key
    it says it sealed the answer to, so an answer sealed elsewhere is provable fraud."""
    return hashlib.sha256(
        b"cocoon/receipt/v2\x00" + request.to_bytes(8, "big") + model_hash + units.to_bytes(8, "big") + result_hash
        + client_key
    ).digest()


_ledger_encoder = msgspec.msgpack.Encoder(order="deterministic")


def ledger_digest(*, epoch: int, router: str, provider: str, rows: list[LedgerRow]) -> bytes:
    """What a router signs for its ledger: the epoch, its wallet and ROUTER Provider, and the
    rows in (provider, model) order, whatever order they were sent in."""
    ordered = sorted(rows, key=lambda r: (r.provider, r.model))
    return hashlib.sha256(
        b"cocoon/ledger/v1\x00" + _ledger_encoder.encode((epoch, router, provider, ordered))
    ).digest()
