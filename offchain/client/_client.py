"""The client SDK: pay a router through a Channel, get embeddings.

    async with CocoonClient(config, chain=chain, wallet=wallet, channel_key=key, store=path) as client:
        await client.open_channel(deposit=ton(5))           # deploys or reuses the channel
        result = await client.embed(["a text"], model="all-MiniLM-L6-v2")
        result.vectors, result.units, result.cost
        await client.close_cooperative()

Money: every request carries a cumulative voucher covering what the router has charged,
what is in flight, and this request's maximum (its units at the maximum coefficient). The
newest voucher is committed to SQLite before it is sent, so a restarted client never signs
a lower total than one it gave away, and never pays twice: it resumes from the router's
books (sent in Welcome) and its own newest voucher, whichever is higher. A voucher above
what was charged is credit that later requests spend without a new signature.

Units are counted with the model's own tokenizer (offchain.models), so the voucher matches
what the worker will sign for; for a model this SDK does not know, an upper bound (one unit
per character plus two, capped at the model's token limit) is used: never under-declared.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from nacl.exceptions import BadSignatureError
from nacl.public import Box, PrivateKey
from nacl.signing import SigningKey, VerifyKey
from pytoniq_core import Address
from websockets.exceptions import ConnectionClosed

from offchain.attestation import MultiVerifier, attest_worker
from offchain.dataset import Dataset, DatasetWriter, anchor_manifest
from offchain.dataset._format import ValidatorSignature
from offchain.errors import (
    AttestationError,
    CocoonError,
    ConfigError,
    ContractRefused,
    InvalidMessage,
    PeerError,
    PeerRejected,
    RequestFailed,
    StorageError,
)
from offchain.mesh import Limits, Peer, connect, join
from offchain.models import Tokenizer, WordCounter, builtin_models
from offchain.protocol.sealing import open_answer, seal_request_boxes
from offchain.protocol.units import compute_price, data_price, page_price
from offchain.protocol.voucher import SignedVoucher, sign_voucher
from offchain.protocol.wire import (
    PLAIN,
    AccountState,
    CloseApproved,
    Crawl,
    CrawlDone,
    CrawlRecord,
    CrawlSpec,
    Dispute,
    DisputeSettled,
    Embed,
    Embedded,
    Error,
    ErrorCode,
    ListModels,
    ListWorkers,
    ModelInfo,
    Models,
    Receipt,
    RequestClose,
    Sealed,
    SealedInput,
    VoucherFrame,
    Welcome,
    WorkerInfo,
    Workers,
    receipt_digest,
    wire_address,
)
from offchain.sqlite_store import Op, SqliteStore
from offchain.ton.network import ChainContractProvider, ChainProvider
from wrappers.channel import CHANNEL_DEPOSIT_FEE, Channel, ChannelConfig, ChannelState
from wrappers.root import Root

__all__ = ["ClientConfig", "CocoonClient", "EmbeddingResult"]

log = logging.getLogger("cocoon.client")


def _check_landed(txs: list[Any], what: str, address: Address) -> None:
    """Raise ContractRefused unless the channel's transaction for our message succeeded."""
    if not txs or not txs[0].success:
        raise ContractRefused(what, wire_address(address), txs[0].exit_code if txs else None)


def _log_failed_save(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("saving the client's books failed (the router's books restore them): %s", fut.exception())


WORKERS_TTL = 30.0
"""Seconds a model's list of workers is sealed to before it is asked again (workers that join
get traffic within this, and ones that left are dropped from it at once on NO_WORKER)."""


@dataclass
class ClientConfig:
    router_url: str
    root: str
    router: str  # the router's wallet address (the Channel's `router`)
    router_key: bytes  # the router's node key (the Channel's `routerKey`)
    max_coefficient: int | None = None  # default: the cheapest worker's, from the router's model list
    request_timeout: float = 60.0
    limits: Limits | None = None
    seal: bool = True  # False sends plain inputs the router can read: a benchmark's baseline only
    max_recipients: int = 8  # workers a sealed request is sealed to (the router picks, and retries, among them)


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: np.ndarray  # float32 (n, dim), L2-normalised
    units: int
    cost: int  # nanoTON charged
    model: str
    worker: str  # the serving worker's Provider
    worker_key: bytes = b""  # its node key, which signed `receipt`
    receipt: Receipt | None = None  # the worker's signed receipt: evidence, should the answer be wrong


_SCHEMA = """
CREATE TABLE IF NOT EXISTS channel (
    address TEXT PRIMARY KEY, compute INTEGER NOT NULL, data INTEGER NOT NULL, signature BLOB NOT NULL,
    charged_compute INTEGER NOT NULL, charged_data INTEGER NOT NULL
);
"""


class _State(SqliteStore):
    """The client's books: the newest voucher given away, and the router's charge.

    Saves go through the group commit: concurrent requests share one fsync, and the event
    loop never waits on the disk itself."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA, what="the client's store")

    def load(self, channel: str) -> tuple[SignedVoucher | None, int, int]:
        rows = self.query(
            "SELECT compute, data, signature, charged_compute, charged_data FROM channel WHERE address = ?", (channel,)
        )
        if not rows:
            return None, 0, 0
        row = rows[0]
        v = SignedVoucher(Address(channel), row[0], row[1], bytes(row[2])) if row[2] else None
        return v, row[3], row[4]

    @staticmethod
    def op_save(channel: str, v: SignedVoucher | None, charged_compute: int, charged_data: int) -> Op:
        return (
            "INSERT INTO channel (address, compute, data, signature, charged_compute, charged_data) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT (address) DO UPDATE SET compute=excluded.compute, "
            "data=excluded.data, signature=excluded.signature, charged_compute=excluded.charged_compute, "
            "charged_data=excluded.charged_data",
            (
                channel,
                v.compute if v else 0,
                v.data if v else 0,
                v.signature if v else b"",
                charged_compute,
                charged_data,
            ),
        )


class CocoonClient:
    """A developer's handle on the network (see the module doc). Safe for concurrent `embed`
    calls from many tasks of one event loop."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        chain: ChainProvider,
        wallet: Any,
        channel_key: SigningKey,
        store: Path | str,
    ) -> None:
        self.config = config
        self.chain = chain
        self.wallet = wallet
        self.key = channel_key
        self.client = wire_address(wallet.address)
        self._state = _State(store)
        self._channel: Channel | None = None
        self.latest: SignedVoucher | None = None
        self.charged_compute = 0
        self.charged_data = 0
        self.reserved = 0
        self.reserved_data = 0
        self.deposit = 0
        self.unit_price = 0
        self.data_unit_price = 0
        self.last_crawl: CrawlDone | None = None
        self._streams: dict[int, asyncio.Queue[Any]] = {}  # request id -> its frames (a crawl's records)
        self._peer: Peer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._outbox: asyncio.Queue[tuple[Any, asyncio.Future[None] | None, Any]] = asyncio.Queue()
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()  # voucher arithmetic and connection setup
        self._models: dict[str, ModelInfo] = {}
        self._workers: dict[str, list[WorkerInfo]] = {}  # model -> workers whose attestation we checked
        self._verifier = MultiVerifier(allow_dev=False)
        self._workers_at: dict[str, float] = {}  # when each model's workers were listed
        self._images: dict[bytes, bool] = {}  # Root's image allowlist, as asked
        self._dev: tuple[float, bool] | None = None  # (when asked, Root allows dev attestation)
        self._counters: dict[str, Any] = {}

    async def __aenter__(self) -> CocoonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- the channel ------------------------------------------------------------------------
    async def channel(self) -> Channel:
        """This client's Channel to the router (its address from Root's Channel code)."""
        if self._channel is None:
            root = Root.create_from_address(Address(self.config.root))
            codes = await root.get_child_codes(ChainContractProvider(self.chain, root.address))
            cfg = ChannelConfig(
                Address(self.config.root),
                Address(self.client),
                Address(self.config.router),
                int.from_bytes(bytes(self.key.verify_key), "big"),
                int.from_bytes(self.config.router_key, "big"),
            )
            self._channel = Channel.create_from_config(cfg, codes.channel)
        return self._channel

    async def open_channel(self, *, deposit: int, timeout: float = 60.0) -> str:
        """Deploy the channel with `deposit` nanoTON credited, or reuse it if it is open; wait
        until Root's terms opened it. Returns its address (raw form)."""
        ch = await self.channel()
        cp = ChainContractProvider(self.chain, ch.address, ch.init)
        state = await self.chain.get_account(ch.address)
        if state.status == "active":
            data = await ch.get_channel_data(cp)
            if data.state == ChannelState.OPEN:
                return wire_address(ch.address)
            if data.state == ChannelState.CLOSED or data.state == ChannelState.CLOSING:
                raise ConfigError(f"channel {ch.address.to_str()} is closed or closing; a new channel needs a new key")
        else:
            sent = await ch.send_deposit(cp, self.wallet, value=deposit + CHANNEL_DEPOSIT_FEE)
            await sent.wait_delivered(timeout=timeout)
        await self._wait_open(ch, cp, timeout)
        return wire_address(ch.address)

    async def _wait_open(self, ch: Channel, cp: ChainContractProvider, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if (await self.chain.get_account(ch.address)).status == "active" and (
                await ch.get_channel_data(cp)
            ).state == ChannelState.OPEN:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise ConfigError(f"channel {ch.address.to_str()} did not open within {timeout:g}s")
            await asyncio.sleep(0.2)

    async def top_up(self, amount: int) -> None:
        ch = await self.channel()
        sent = await ch.send_deposit(
            ChainContractProvider(self.chain, ch.address, ch.init), self.wallet, value=amount + CHANNEL_DEPOSIT_FEE
        )
        await sent.wait_delivered()

    # ---- the connection ------------------------------------------------------------------------
    async def connect(self) -> None:
        """Connect (or reconnect) and resume the books from the router's. Idempotent."""
        async with self._lock:
            if self._peer is not None:
                return
            ch = await self.channel()
            address = wire_address(ch.address)
            self.latest, self.charged_compute, self.charged_data = self._state.load(address)
            peer = await connect(self.config.router_url, self.config.limits)
            try:
                _, welcome = await join(
                    peer,
                    key=self.key,
                    role="client",
                    owner=self.client,
                    agent="cocoon-client/1",
                    expect_router_key=self.config.router_key,
                )
            except BaseException:
                await peer.close()
                raise
            self._resume(welcome)
            self._peer = peer
            self._outbox = asyncio.Queue()
            loop = asyncio.get_running_loop()
            self._sender = loop.create_task(self._send(peer, self._outbox))
            self._reader = loop.create_task(self._read(peer, self._sender))

    def _resume(self, welcome: Welcome) -> None:
        self.unit_price = welcome.compute_unit_price
        self.data_unit_price = welcome.data_unit_price
        acc = welcome.account
        if acc is None:
            raise PeerRejected("the router sent no account for this channel")
        self.deposit = acc.deposit
        self._adopt(acc)

    def _adopt(self, acc: AccountState) -> None:
        """Take the router's books where they are ahead of ours (a voucher we signed, checked
        to be ours; its charge, never above what we signed)."""
        if acc.voucher_signature and (
            self.latest is None or acc.voucher_compute + acc.voucher_data > self.latest.total
        ):
            v = SignedVoucher(Address(acc.channel), acc.voucher_compute, acc.voucher_data, acc.voucher_signature)
            try:
                VerifyKey(bytes(self.key.verify_key)).verify(v.message_hash(), v.signature)
                self.latest = v
            except BadSignatureError:
                log.warning("the router holds a voucher we did not sign; ignored")
        cap_c = self.latest.compute if self.latest else 0
        cap_d = self.latest.data if self.latest else 0
        self.charged_compute = max(self.charged_compute, min(acc.charged_compute, cap_c))
        self.charged_data = max(self.charged_data, min(acc.charged_data, cap_d))
        self.deposit = acc.deposit

    async def _read(self, peer: Peer, sender: asyncio.Task[None]) -> None:
        try:
            while True:
                frame = await peer.recv(timeout=10**9)
                rid = getattr(frame, "id", None)
                stream = self._streams.get(rid) if rid is not None else None
                if stream is not None:
                    stream.put_nowait(frame)
                    continue
                fut = self._waiting.pop(rid, None) if rid is not None else None
                if fut is not None and not fut.done():
                    fut.set_result(frame)
                elif isinstance(frame, Error):
                    log.warning("router error: %s %s", frame.code, frame.message)
        except (ConnectionClosed, TimeoutError, OSError):
            pass
        finally:
            sender.cancel()  # the connection's sender goes with it
            if self._peer is peer:
                self._peer = None
            for fut in list(self._waiting.values()):
                if not fut.done():
                    fut.set_exception(ConnectionClosed(None, None))
            self._waiting.clear()
            for stream in self._streams.values():
                stream.put_nowait(ConnectionClosed(None, None))

    def _post(self, frame: Any, rid: int, saved: asyncio.Future[None] | None = None) -> asyncio.Future[Any]:
        """Queue `frame` for the connection's sender and return the future of its answer.

        Frames leave in the order they are posted, each after the commit it depends on
        (`saved`: its voucher's save): vouchers reach the router in the order they were
        signed (a later one never overtakes an earlier one, which would make it stale), and
        none leaves before it is on disk. Synchronous, so callers post under their lock.
        """
        peer = self._peer
        if peer is None:
            raise ConnectionClosed(None, None)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        self._outbox.put_nowait((frame, saved, fut))
        return fut

    async def _await(self, fut: asyncio.Future[Any], rid: int) -> Any:
        try:
            answer = await asyncio.wait_for(fut, self.config.request_timeout)
        finally:
            self._waiting.pop(rid, None)
        if isinstance(answer, Error):
            raise RequestFailed(answer.code, answer.message, request_id=rid)
        return answer

    async def _call(self, frame: Any, rid: int) -> Any:
        return await self._await(self._post(frame, rid), rid)

    async def _send(self, peer: Peer, outbox: asyncio.Queue[tuple[Any, asyncio.Future[None] | None, Any]]) -> None:
        """The connection's only sender (see `_post`). Ends when the connection does."""
        try:
            while True:
                frame, saved, answer = await outbox.get()
                if saved is not None:
                    try:
                        await asyncio.shield(saved)
                    except StorageError as err:
                        if not answer.done():
                            answer.set_exception(err)
                        continue
                await peer.send(frame)
        except (ConnectionClosed, OSError):
            pass

    def _cover(
        self, channel: Address, *, compute: int = 0, data: int = 0
    ) -> tuple[SignedVoucher, asyncio.Future[None] | None]:
        """The voucher a request sends: the newest one if it covers (`compute`, `data`), else a
        new one raised to cover them (the other side unchanged), with the future of its save
        (it must not leave before that). Call under `_lock`.

        Raises:
            RequestFailed: VOUCHER_OVER_DEPOSIT (top up, or ask for less).
        """
        v = self.latest
        if v is not None and v.compute >= compute and v.data >= data:
            return v, None
        c, d = max(compute, v.compute if v else 0), max(data, v.data if v else 0)
        if c + d > self.deposit:
            raise RequestFailed(
                ErrorCode.VOUCHER_OVER_DEPOSIT,
                f"this request needs {c + d} nanoTON in vouchers; the channel holds {self.deposit}: top up",
            )
        v = sign_voucher(self.key, channel, compute=c, data=d)
        saved = self._state.submit(
            [self._state.op_save(wire_address(channel), v, self.charged_compute, self.charged_data)]
        )
        self.latest = v
        return v, saved

    # ---- models and units ------------------------------------------------------------------------
    async def list_models(self) -> list[ModelInfo]:
        """The models the router's connected workers serve now (reconnects once if needed).

        Raises:
            PeerError: the router cannot be reached.
        """
        for attempt in range(2):
            try:
                await self.connect()
                rid = next(self._ids)
                answer: Models = await self._call(ListModels(id=rid), rid)
                self._models = {m.name: m for m in answer.models}
                return answer.models
            except (ConnectionClosed, OSError, TimeoutError) as err:
                if attempt:
                    raise PeerError(f"the router at {self.config.router_url} cannot be reached: {err}") from err
        raise AssertionError("unreachable")

    def count_units(self, inputs: list[Any], model: str) -> int:
        counter = self._counters.get(model)
        if counter is None:
            spec = builtin_models().get(model)
            if spec is not None:
                counter = (
                    Tokenizer(spec.tokenizer_path, max_tokens=spec.max_tokens)
                    if spec.tokenizer_path
                    else WordCounter(max_tokens=spec.max_tokens)
                )
            self._counters[model] = counter
        if counter is not None:
            return sum(counter.count(inputs))
        cap = self._models[model].max_tokens if model in self._models else 8192
        return sum(min(cap, (len(x) if isinstance(x, list) else len(x) + 2)) for x in inputs)

    # ---- embeddings --------------------------------------------------------------------------------
    async def embed(self, inputs: list[str] | list[list[int]], *, model: str) -> EmbeddingResult:
        """Embed `inputs`, paying through the channel. Reconnects once if the connection drops,
        and seals again for the router's current workers once if those it sealed to are gone.

        Raises:
            RequestFailed: the router or worker refused (typed code), e.g. VOUCHER_OVER_DEPOSIT
                when the channel needs a top-up.
        """
        if not inputs:
            raise RequestFailed(ErrorCode.INVALID_INPUT, "no input")
        for attempt in range(2):
            try:
                await self.connect()
                if model not in self._models:
                    await self.list_models()
                return await self._embed_once(inputs, model)
            except (ConnectionClosed, OSError) as err:
                if attempt:
                    raise PeerError(f"the router at {self.config.router_url} cannot be reached: {err}") from err
                log.info("router connection dropped; reconnecting")
            except RequestFailed as err:
                # the workers we sealed to are gone (e.g. restarted with new keys): ask again, once
                if attempt or err.code != ErrorCode.NO_WORKER:
                    raise
                # the workers we sealed to, or the cheapest one our price cap came from, are gone:
                # ask the router again (models and workers), once
                log.info("no worker fits the request any more; asking the router for its models and workers again")
                self._models.pop(model, None)
                self._workers.pop(model, None)
        raise AssertionError("unreachable")

    async def list_workers(self, model: str) -> list[WorkerInfo]:
        """The workers serving `model` whose attestation `verify_worker` accepts (cached until a
        request finds none of them fit)."""
        rid = next(self._ids)
        answer: Workers = await self._call(ListWorkers(id=rid, model=model), rid)
        accepted = []
        for w in answer.workers:
            try:
                await self.check_worker(w)
            except AttestationError as err:
                log.warning("worker %s refused: %s", w.provider, err)
                continue
            accepted.append(w)
        self._workers[model] = accepted
        self._workers_at[model] = time.monotonic()
        return accepted

    async def check_worker(self, w: WorkerInfo) -> None:
        """Verify `w`'s attestation ourselves, against Root's own allowlist and dev policy (read
        from the chain, not from the router): its evidence binds its node key and the key we
        seal to, and measures an image Root allows.

        Raises:
            AttestationError: it does not hold (a subclass says why).
        """
        now = time.time()
        if self._dev is None or now - self._dev[0] > 60:
            root = Root.create_from_address(Address(self.config.root))
            params = await root.get_params(ChainContractProvider(self.chain, root.address))
            self._dev = (now, params.dev_attestation)
        self._verifier.allow_dev = self._dev[1]
        await attest_worker(
            self._verifier,
            w.evidence,
            node_key=w.node_key,
            encryption_key=w.encryption_key,
            now=int(now),
            image_allowed=self._image_allowed,
        )

    async def _image_allowed(self, measurement: bytes) -> bool:
        if measurement not in self._images:
            root = Root.create_from_address(Address(self.config.root))
            self._images[measurement] = await root.get_is_image_allowed(
                ChainContractProvider(self.chain, root.address), int.from_bytes(measurement, "big")
            )
        return self._images[measurement]

    async def _candidates(self, model: str, coefficient: int) -> list[WorkerInfo]:
        for fresh in (False, True):
            stale = time.monotonic() - self._workers_at.get(model, 0.0) > WORKERS_TTL
            if fresh or stale or model not in self._workers:
                await self.list_workers(model)
            fit = [w for w in self._workers[model] if w.coefficient <= coefficient]
            if fit:
                return fit[: self.config.max_recipients]
        raise RequestFailed(ErrorCode.NO_WORKER, f"no attested worker serves {model!r} at coefficient <= {coefficient}")

    async def _embed_once(self, inputs: list[Any], model: str) -> EmbeddingResult:
        info = self._models.get(model)
        if info is None:
            raise RequestFailed(ErrorCode.UNKNOWN_MODEL, f"the router has no worker for {model!r}")
        units = self.count_units(inputs, model)
        coefficient = self.config.max_coefficient or info.min_coefficient
        price = compute_price(units, self.unit_price, coefficient)
        channel = await self.channel()
        texts = inputs if isinstance(inputs[0], str) else []
        tokens = [] if texts else inputs
        sealed: Sealed | None = None
        ephemeral: PrivateKey | None = None
        boxes: dict[bytes, Box] = {}
        candidates: list[WorkerInfo] = []
        if self.config.seal:
            candidates = await self._candidates(model, coefficient)
            sealed, ephemeral, boxes = seal_request_boxes(
                SealedInput(texts=texts, tokens=tokens), [w.encryption_key for w in candidates]
            )
            texts, tokens = [], []
        async with self._lock:
            v, saved = self._cover(channel.address, compute=self.charged_compute + self.reserved + price)
            rid = next(self._ids)
            frame = Embed(
                id=rid,
                model=model,
                units=units,
                max_coefficient=coefficient,
                voucher=VoucherFrame(compute=v.compute, data=v.data, signature=v.signature),
                texts=texts,
                tokens=tokens,
                sealed=sealed,
            )
            pending = self._post(frame, rid, saved)  # leaves after `saved` is on disk, in signing order
            self.reserved += price
        try:
            answer: Embedded = await self._await(pending, rid)
        except RequestFailed as err:
            if err.code == ErrorCode.NO_WORKER:
                self._workers.pop(model, None)  # the next request asks the router again
            raise
        finally:
            self.reserved -= price
        self._adopt(answer.account)  # the router's books, whatever we make of its answer
        # the router's charge, for the books: not awaited (the router's Welcome restores it
        # after a crash, and the voucher it depends on is already on disk)
        self._state.submit(
            [self._state.op_save(wire_address(channel.address), self.latest, self.charged_compute, self.charged_data)]
        ).add_done_callback(_log_failed_save)
        self._check_receipt(answer, units, sealed.client_key if sealed is not None else PLAIN)
        blob = answer.vectors
        if sealed is not None and ephemeral is not None:
            worker = next((w for w in candidates if w.node_key == answer.worker_key), None)
            if worker is None:
                raise RequestFailed(ErrorCode.RESULT_REJECTED, "the answer comes from a worker it was not sealed to")
            try:
                blob = open_answer(answer.vectors, ephemeral, worker.encryption_key, box=boxes[worker.encryption_key])
            except InvalidMessage as err:
                refunded = await self._dispute(answer, ephemeral)
                raise RequestFailed(ErrorCode.RESULT_REJECTED, f"{err}; disputed, {refunded} nanoTON refunded") from err
        vectors = np.frombuffer(blob, dtype="<f4").reshape(-1, answer.dim)
        return EmbeddingResult(
            vectors=vectors,
            units=answer.units,
            cost=answer.cost,
            model=answer.model,
            worker=answer.worker,
            worker_key=answer.worker_key,
            receipt=answer.receipt,
        )

    async def _dispute(self, answer: Embedded, ephemeral: PrivateKey) -> int:
        """Prove to the router that `answer` does not open (revealing this request's single-use
        key) and take back its charge; returns what was refunded (0 if the router refused)."""
        rid = next(self._ids)
        try:
            settled: DisputeSettled = await self._call(
                Dispute(id=rid, receipt=answer.receipt, answer=answer.vectors, ephemeral=bytes(ephemeral)), rid
            )
        except RequestFailed as err:
            log.warning("the router refused the dispute: %s", err)
            return 0
        self._adopt_refund(settled.account)
        return settled.refunded

    def _adopt_refund(self, acc: AccountState) -> None:
        """After a refund the router's charge went down: take it (our books only ever took the
        higher of the two)."""
        self.charged_compute = min(acc.charged_compute, self.latest.compute if self.latest else 0)
        self.charged_data = min(acc.charged_data, self.latest.data if self.latest else 0)

    def _check_receipt(self, answer: Embedded, units: int, client_key: bytes) -> None:
        r = answer.receipt
        if r.result_hash != hashlib.sha256(answer.vectors).digest() or r.units != answer.units or r.units > units:
            raise RequestFailed(ErrorCode.RESULT_REJECTED, "the worker's receipt does not match the answer")
        if r.client_key != client_key:
            raise RequestFailed(ErrorCode.RESULT_REJECTED, "the worker's receipt names another request key")
        try:
            VerifyKey(answer.worker_key).verify(
                receipt_digest(
                    request=r.request,
                    model_hash=r.model_hash,
                    units=r.units,
                    result_hash=r.result_hash,
                    client_key=r.client_key,
                ),
                r.signature,
            )
        except BadSignatureError as err:
            raise RequestFailed(ErrorCode.RESULT_REJECTED, "the worker's receipt signature is invalid") from err
        if answer.cost > compute_price(answer.units, self.unit_price, answer.coefficient):
            raise RequestFailed(ErrorCode.INTERNAL, "the router charged more than the worker's price")

    # ---- crawls ----------------------------------------------------------------------------------------
    def crawl_budget(self, spec: CrawlSpec, concurrency: int = 4) -> int:
        """A `max_cost` that lets `spec` run to its page limit: every page, each host's
        robots.txt and some redirects or refetches at the page cap's price (the router holds
        that much per open stream, and charges only what is relayed)."""
        hosts = len({u.split("/")[2] for u in spec.seeds})
        streams = spec.max_pages + 2 * hosts + concurrency + spec.max_pages // 4
        return streams * (page_price(self.data_unit_price) + data_price(spec.max_page_bytes, self.data_unit_price))

    async def crawl(
        self,
        spec: CrawlSpec | dict[str, Any],
        directory: str | Path | None = None,
        *,
        max_cost: int | None = None,
        timeout: float = 3600.0,
        anchor: bool = True,
    ) -> Dataset:
        """Buy a crawl: pages fetched by a validator through data nodes, each with a signed
        provenance record, written to `directory` as a verified dataset (default: a new folder
        `.cocoon/datasets/crawl-<time>` under the working directory), paid from the data
        side of the channel (at most `max_cost` nanoTON; default `crawl_budget(spec)`).

        Each record's signature is checked as it arrives; at the end the validator's
        signature over the manifest must verify over the records received, and the validator
        must be in Root's validator set. The crawl's outcome (stop reason, counts, cost) is in
        `last_crawl`. With `anchor` (the default) the manifest's digest is then put on chain
        (one AnchorDataset message to Root from this client's wallet, ~0.003 TON) and the
        anchoring transaction is written into the manifest, so `cocoon dataset verify DIR
        --network ...` can check it.

        Raises:
            RequestFailed: the router or validator refused or failed the crawl (its code), or
                the result did not verify (RESULT_REJECTED).
            ValueError: `spec` is malformed (a dict with unknown or out-of-bounds fields).
        """
        if not isinstance(spec, CrawlSpec):
            try:
                spec = msgspec.convert(spec, CrawlSpec)
            except msgspec.ValidationError as err:
                raise ValueError(f"malformed crawl spec: {err}") from err
        await self.connect()
        if directory is None:
            directory = Path(".cocoon/datasets") / time.strftime("crawl-%Y%m%d-%H%M%S")
            while directory.exists():
                directory = directory.with_name(directory.name + "-1")
        budget = self.crawl_budget(spec) if max_cost is None else max_cost
        writer = DatasetWriter(directory, msgspec.to_builtins(spec))
        channel = await self.channel()
        async with self._lock:
            v, saved = self._cover(channel.address, data=self.charged_data + self.reserved_data + budget)
            rid = next(self._ids)
            queue: asyncio.Queue[Any] = asyncio.Queue()
            self._streams[rid] = queue
            frame = Crawl(
                id=rid, spec=spec, max_cost=budget,
                voucher=VoucherFrame(compute=v.compute, data=v.data, signature=v.signature),
            )
            sent = self._post(frame, rid, saved)
            self._waiting.pop(rid, None)  # answers come through the queue; `sent` fails only if the save did
            sent.add_done_callback(lambda f: queue.put_nowait(f.exception()) if f.exception() else None)
            self.reserved_data += budget
        try:
            async with asyncio.timeout(timeout):
                done = await self._crawl_frames(queue, writer)
        finally:
            self.reserved_data -= budget
            self._streams.pop(rid, None)
        if done.account is not None:
            self._adopt(done.account)
        self._state.submit(
            [self._state.op_save(wire_address(channel.address), self.latest, self.charged_compute, self.charged_data)]
        ).add_done_callback(_log_failed_save)
        if done.cost > budget:
            raise RequestFailed(ErrorCode.INTERNAL, f"the router charged {done.cost}, over max_cost {budget}")
        if not await self._is_validator(done.validator):
            raise RequestFailed(ErrorCode.RESULT_REJECTED, "the crawl's validator is not in Root's validator set")
        try:
            await asyncio.to_thread(
                writer.finish,
                signatures=[ValidatorSignature(validator=done.validator.hex(), signature=done.signature.hex())],
            )
        except ValueError as err:
            raise RequestFailed(ErrorCode.RESULT_REJECTED, str(err)) from err
        self.last_crawl = done
        if anchor:
            await anchor_manifest(self.wallet, self.config.root, directory)
        return Dataset.open(directory)

    async def _crawl_frames(self, queue: asyncio.Queue[Any], writer: DatasetWriter) -> CrawlDone:
        validator: bytes | None = None
        while True:
            frame = await queue.get()
            if isinstance(frame, BaseException):
                raise frame
            if isinstance(frame, Error):
                raise RequestFailed(frame.code, frame.message)
            if isinstance(frame, CrawlRecord):
                if frame.index < len(writer):
                    continue  # sent again by a resumed crawl: the first copy stays
                if frame.index > len(writer):
                    raise RequestFailed(ErrorCode.RESULT_REJECTED, f"record {frame.index} came before {len(writer)}")
                key = frame.record.record.validator_key
                if validator is not None and key != validator:
                    raise RequestFailed(ErrorCode.RESULT_REJECTED, "records of one crawl signed by two validators")
                validator = key
                try:
                    writer.add(frame.record)  # checks the record's signature
                except CocoonError as err:
                    raise RequestFailed(ErrorCode.RESULT_REJECTED, f"record {frame.index}: {err}") from err
            elif isinstance(frame, CrawlDone):
                if frame.records != len(writer):
                    raise RequestFailed(
                        ErrorCode.RESULT_REJECTED, f"the crawl says {frame.records} records; {len(writer)} came"
                    )
                if validator is not None and frame.validator != validator:
                    raise RequestFailed(ErrorCode.RESULT_REJECTED, "the manifest is signed by another validator")
                return frame

    async def _is_validator(self, key: bytes) -> bool:
        root = Root.create_from_address(Address(self.config.root))
        vset = await root.get_validator_set(ChainContractProvider(self.chain, root.address))
        return int.from_bytes(key, "big") in vset.validators

    # ---- closing ---------------------------------------------------------------------------------------
    async def close_cooperative(self, *, timeout: float = 60.0) -> CloseApproved:
        """Ask the router to sign the final totals and close the channel at once with them."""
        await self.connect()
        rid = next(self._ids)
        approval: CloseApproved = await self._call(RequestClose(id=rid), rid)
        ch = await self.channel()
        sent = await ch.send_cooperative_close(
            ChainContractProvider(self.chain, ch.address),
            self.wallet,
            compute=approval.compute,
            data=approval.data,
            signature=approval.signature,
        )
        _check_landed(await sent.wait_delivered(timeout=timeout), "CooperativeClose", ch.address)
        return approval

    async def start_close(self) -> None:
        """Unilateral close, step 1: the router keeps Root's close delay to redeem."""
        ch = await self.channel()
        sent = await ch.send_start_close(ChainContractProvider(self.chain, ch.address), self.wallet)
        _check_landed(await sent.wait_delivered(), "StartClose", ch.address)

    async def finish_close(self) -> None:
        """Unilateral close, step 2 (after the delay): the rest of the deposit comes back."""
        ch = await self.channel()
        sent = await ch.send_finish_close(ChainContractProvider(self.chain, ch.address), self.wallet)
        _check_landed(await sent.wait_delivered(), "FinishClose", ch.address)

    async def disconnect(self) -> None:
        peer, self._peer = self._peer, None
        if peer is not None:
            await peer.close()
        for task in (self._reader, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._reader = self._sender = None

    async def close(self) -> None:
        await self.disconnect()
        self._state.close()
