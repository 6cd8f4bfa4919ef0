"""The router agent: websocket server for clients and workers, metering, redeeming.

    async with Router(config, chain=chain, directory=directory, store=store, wallet=sender) as router:
        await router.serve_forever()

Who may connect is decided by the directory (the chain's view): a worker's node key must be
its gpu Provider's, active and staked at least the role's minimum; a client's key must be
the client key of an open Channel between its wallet and this router. A provider that
unstakes or is slashed is dropped when the directory sees it (one watcher poll).

Each client request: admit its voucher (`Account.admit`), persist the voucher if new, pick a
worker (`choose_worker`), forward, await the worker's signed receipt, charge the worker's
price for the units it signed for (persisted with the usage row), answer. A worker that
fails, disconnects or times out gets the request retried once on another worker; a request
that fails twice is answered WORKER_FAILED and costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.public import PrivateKey
from nacl.signing import SigningKey, VerifyKey
from pytoniq_core import Address
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from offchain.attestation import MultiVerifier, attest_worker
from offchain.errors import AttestationError, CocoonError, InvalidMessage, PeerRejected, RequestFailed
from offchain.mesh import Limits, Peer, accept_peer
from offchain.protocol.sealing import open_answer
from offchain.protocol.units import compute_price
from offchain.protocol.voucher import SignedVoucher, sign_close_approval
from offchain.protocol.wire import (
    PLAIN,
    AccountState,
    CloseApproved,
    Crawl,
    Dispute,
    DisputeSettled,
    Embed,
    Embedded,
    Error,
    ErrorCode,
    Hello,
    LedgerRequest,
    ListModels,
    ListWorkers,
    Load,
    ModelInfo,
    ModelOffer,
    Models,
    Offer,
    ReportSignature,
    Reputation,
    RequestClose,
    Welcome,
    Work,
    WorkDone,
    WorkerInfo,
    Workers,
    receipt_digest,
    wire_address,
)
from offchain.router._core import Account, Reservation, WorkerState, choose_worker
from offchain.router._datapath import DataPath, ValidatorLink
from offchain.router._store import RouterStore
from offchain.ton.network import ChainContractProvider
from wrappers.channel import ChannelState
from wrappers.provider import Role
from wrappers.root import Root

__all__ = ["Router", "RouterConfig"]

log = logging.getLogger("cocoon.router")


@dataclass
class RouterConfig:
    """What a router needs besides its dependencies (`offchain.router._main` reads them from TOML)."""

    root: str
    node_key: SigningKey = field(repr=False)
    host: str = "127.0.0.1"
    port: int = 0
    limits: Limits = field(default_factory=Limits)
    request_timeout: float = 30.0
    redeem_threshold: int = 10**9 // 10  # nanoTON earned and not redeemed that triggers a redeem
    redeem_interval: float = 60.0  # seconds between timer redeems of anything earned
    redeem_timeout: float = 60.0
    epoch_seconds: int = 3600
    redeem_on_shutdown: bool = True


_DISPUTABLE = 10_000
"""How many recent sealed answers the router can still refund on a dispute."""


@dataclass
class _Served:
    """A sealed answer the router charged for: what checking a dispute of it needs."""

    channel: str
    cost: int
    node_key: bytes
    encryption_key: bytes
    provider: str
    model: str
    units: int
    disputed: bool = False


@dataclass
class _Pending:
    """A request sent to a worker, waiting for its answer."""

    future: asyncio.Future[WorkDone | Error]
    worker: WorkerState
    sent_at: float


class Router:
    """The router agent. Construct, then `async with` (starts listening and the redeemer)."""

    def __init__(
        self,
        config: RouterConfig,
        *,
        directory: Any,
        store: RouterStore,
        wallet: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.directory = directory
        self.store = store
        self.wallet = wallet  # a Sender (WalletSender): redeems go out from it
        self.clock = clock
        self.address = wire_address(wallet.address)
        self.node_key = config.node_key
        self.router_key = bytes(config.node_key.verify_key)
        self.workers: dict[str, WorkerState] = {}
        self._reputation: dict[str, float] = {}  # Provider -> the score validators last reported
        self._offers: dict[str, ModelOffer] = {}  # model name -> its latest offer (hash, dim, limits)
        self._served: OrderedDict[int, _Served] = OrderedDict()  # work id -> a recent sealed answer
        self.verifier = MultiVerifier(allow_dev=False)  # allow_dev follows Root at each check
        self._worker_peers: dict[str, Peer] = {}
        self._client_peers: dict[str, set[Peer]] = {}  # channel -> sessions
        self.accounts: dict[str, Account] = {}
        self._pending: dict[int, _Pending] = {}
        self._next_work = int.from_bytes(os.urandom(4), "big") << 20
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._redeem_now = asyncio.Event()
        self._shutting_down = False
        self._redeeming: dict[str, tuple[int, int]] = {}
        self._closing_channels: set[str] = set()  # channels closing: redeem whatever was earned, any amount
        self.port: int | None = None
        self.data = DataPath(self)
        self._validator_peers: dict[str, Peer] = {}  # session -> a validator's session (ReportSignature relay)
        self._router_provider: str | None = None  # this router's ROUTER Provider (its ledgers name it)
        directory.subscribe(self._on_change)

    # ---- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> Router:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._server = await serve(self._handle, self.config.host, self.config.port, **self.config.limits.ws_options())  # type: ignore[arg-type]
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        await self._load_accounts()
        self._spawn(self._redeem_loop())
        log.info("router listening on %s:%s as %s", self.config.host, self.port, self.address)

    async def _load_accounts(self) -> None:
        """Accounts that hold vouchers, from the store: a restarted router redeems them whether
        or not their clients return."""
        for channel, client, client_key in self.store.held_accounts():
            view = await self.directory.channel(client, self.address, client_key, self.router_key)
            if view is None or view.address != channel:
                log.warning("held account %s is not this router's channel on chain; skipped", channel)
                continue
            acc = await self._account(view, client, client_key)
            if view.state in (ChannelState.CLOSING,):
                self._closing_channels.add(acc.address)
                self._redeem_now.set()

    @property
    def url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    async def serve_forever(self) -> None:
        """Serve until `close()` or cancellation."""
        assert self._server is not None, "start() first"
        await self._server.wait_closed()

    async def close(self) -> None:
        """Stop accepting, drop sessions, redeem what was earned (config), stop tasks."""
        if self._shutting_down:
            return
        self._shutting_down = True
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        if self.config.redeem_on_shutdown:
            await self.redeem_all(min_amount=1)
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    # ---- sessions ------------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        peer = Peer(ws, self.config.limits)
        try:
            hello = await accept_peer(
                peer, router=self.address, router_key=self.router_key, root=self.directory.root.address
            )
            if hello.role == "worker":
                await self._worker_session(peer, hello)
            elif hello.role == "client":
                await self._client_session(peer, hello)
            elif hello.role == "validator":
                await self._validator_session(peer, hello)
            elif hello.role == "datanode":
                await self.data.node_session(peer, hello)
            else:
                await peer.send_error(None, ErrorCode.UNEXPECTED_FRAME, f"role {hello.role} is not served here")
        except (PeerRejected, ConnectionClosed, TimeoutError) as err:
            peer.log.info("session ended: %s", err or type(err).__name__)
        except Exception:
            log.exception("session with %s failed", peer.name)
            with contextlib.suppress(Exception):
                await peer.send_error(None, ErrorCode.INTERNAL, "internal error")
        finally:
            with contextlib.suppress(Exception):
                await peer.close()

    async def _reject(self, peer: Peer, code: ErrorCode, message: str) -> None:
        await peer.send_error(None, code, message)
        raise PeerRejected(message)

    # ---- workers -------------------------------------------------------------------------------
    async def admit_provider(self, peer: Peer, hello: Hello, role: Role) -> tuple[Any, str]:
        """A provider's session start: its node key must be its `role` Provider's, active and
        staked at least the role's minimum (else it is told why and refused); then Welcome.
        Returns the Provider's view and the session id."""
        view = await self.directory.provider(hello.owner, role)
        if view is None:
            await self._reject(
                peer, ErrorCode.NOT_A_PROVIDER, f"no {role.name.lower()} Provider registered for {hello.owner}"
            )
        if view.node_key != hello.node_key:
            await self._reject(peer, ErrorCode.NOT_A_PROVIDER, "the node key is not the one the Provider holds")
        if not view.eligible:
            await self._reject(
                peer,
                ErrorCode.PROVIDER_INACTIVE,
                f"Provider {view.address} is not active with at least {view.min_stake} nanoTON staked",
            )
        session = os.urandom(8).hex()
        await peer.send(
            Welcome(
                session=session,
                compute_unit_price=self.directory.root.compute_unit_price,
                data_unit_price=self.directory.root.data_unit_price,
            )
        )
        return view, session

    async def _worker_session(self, peer: Peer, hello: Hello) -> None:
        view, session = await self.admit_provider(peer, hello, Role.GPU)
        offer = await peer.recv(timeout=self.config.limits.handshake_timeout)
        if not isinstance(offer, Offer):
            await self._reject(peer, ErrorCode.UNEXPECTED_FRAME, f"expected Offer, got {type(offer).__name__}")
        state = WorkerState(
            session=session,
            provider=view.address,
            node_key=hello.node_key,
            models={},
            coefficient=offer.coefficient,
            capacity=offer.capacity,
            encryption_key=offer.encryption_key,
            evidence=offer.evidence,
            reputation=self._reputation.get(view.address, 1.0),
        )
        await self._attest(peer, hello.node_key, offer)
        await self._apply_offer(peer, state, offer)
        self.workers[session] = state
        self._worker_peers[session] = peer
        peer.log.info(
            "worker %s joined: models %s, coefficient %d", view.address, sorted(state.models), state.coefficient
        )
        try:
            while True:
                frame = await peer.recv()
                if isinstance(frame, WorkDone | Error):
                    p = self._pending.get(frame.id) if frame.id is not None else None
                    if p is not None and p.worker is state and not p.future.done():
                        p.future.set_result(frame)
                elif isinstance(frame, Load):
                    state.queued = frame.queued
                elif isinstance(frame, Offer):
                    await self._attest(peer, state.node_key, frame)
                    state.coefficient, state.capacity = frame.coefficient, frame.capacity
                    state.encryption_key, state.evidence = frame.encryption_key, frame.evidence
                    await self._apply_offer(peer, state, frame)
                else:
                    await peer.send_error(
                        getattr(frame, "id", None),
                        ErrorCode.UNEXPECTED_FRAME,
                        f"a worker does not send {type(frame).__name__}",
                    )
        finally:
            self.workers.pop(session, None)
            self._worker_peers.pop(session, None)
            for p in self._pending.values():
                if p.worker is state and not p.future.done():
                    p.future.set_result(Error(id=None, code=ErrorCode.WORKER_FAILED, message="the worker disconnected"))

    async def _attest(self, peer: Peer, node_key: bytes, offer: Offer) -> None:
        """Refuse a worker whose evidence does not bind its keys to an image Root allows (the
        dev kind only where Root allows dev attestation). Clients check the same themselves."""
        self.verifier.allow_dev = self.directory.root.dev_attestation
        try:
            attested = await attest_worker(
                self.verifier,
                offer.evidence,
                node_key=node_key,
                encryption_key=offer.encryption_key,
                now=int(self.clock()),
                image_allowed=self.directory.is_image_allowed,
            )
        except AttestationError as err:
            await self._reject(peer, ErrorCode.ATTESTATION_FAILED, f"attestation refused: {err}")
            return
        peer.log.info("worker attested: %s image %s", attested.kind, attested.measurement.hex()[:16])

    async def _apply_offer(self, peer: Peer, state: WorkerState, offer: Offer) -> None:
        models: dict[str, bytes] = {}
        for m in offer.models:
            if await self.directory.is_model_allowed(m.hash):
                models[m.name] = m.hash
                self._offers[m.name] = m
            else:
                await peer.send_error(
                    None, ErrorCode.MODEL_NOT_ALLOWED, f"model {m.name} ({m.hash.hex()}) is not in Root's allowlist"
                )
        state.models = models

    # ---- validators ----------------------------------------------------------------------------
    async def _validator_session(self, peer: Peer, hello: Hello) -> None:
        """A validator's session: its node key must be in Root's validator set (read from the
        chain at each session start: sessions are rare and the set changes only by the owner's
        SetValidators); then each `Reputation` it sends becomes that Provider's reputation
        (a worker's or a data node's), now and whenever it joins later; crawl and stream
        frames go to the data path, which hands this validator crawls to run."""
        root = Root.create_from_address(Address(self.directory.root.address))
        vset = await root.get_validator_set(ChainContractProvider(self.directory.chain, root.address))
        if int.from_bytes(hello.node_key, "big") not in vset.validators:
            await self._reject(peer, ErrorCode.NOT_A_PROVIDER, "the node key is not in Root's validator set")
        session = os.urandom(8).hex()
        await peer.send(
            Welcome(
                session=session,
                compute_unit_price=self.directory.root.compute_unit_price,
                data_unit_price=self.directory.root.data_unit_price,
            )
        )
        peer.log.info("validator %s joined", hello.node_key.hex()[:16])
        link = ValidatorLink(session, peer, hello.owner, hello.node_key)
        await self.data.validator_joined(link)
        self._validator_peers[session] = peer
        try:
            while True:
                frame = await peer.recv(timeout=10.0**9)  # websocket pings tell a dead validator
                if isinstance(frame, LedgerRequest):
                    self._spawn(self._send_ledger(peer, frame))
                elif isinstance(frame, ReportSignature):
                    for other, p in list(self._validator_peers.items()):
                        if other != session:
                            with contextlib.suppress(ConnectionClosed):
                                await p.send(frame)
                elif isinstance(frame, Reputation):
                    score = max(0.01, frame.score)
                    self._reputation[frame.provider] = score
                    for w in self.workers.values():
                        if w.provider == frame.provider:
                            w.reputation = score
                    self.data.set_reputation(frame.provider, score)
                    peer.log.info(
                        "reputation of %s set to %.3f by a validator (%d probes, %d failed)",
                        frame.provider, score, frame.probes, frame.failures,
                    )
                elif not await self.data.validator_frame(link, frame):
                    await peer.send_error(
                        getattr(frame, "id", None),
                        ErrorCode.UNEXPECTED_FRAME,
                        f"a validator does not send {type(frame).__name__}",
                    )
        finally:
            self._validator_peers.pop(session, None)
            await self.data.validator_left(link)

    async def router_provider(self) -> str:
        """This router's ROUTER Provider address (Root's, registered or not): its ledgers name it."""
        if self._router_provider is None:
            root = Root.create_from_address(Address(self.directory.root.address))
            addr = await root.get_provider_address(
                ChainContractProvider(self.directory.chain, root.address), Address(self.address), Role.ROUTER
            )
            self._router_provider = wire_address(addr)
        return self._router_provider

    async def _send_ledger(self, peer: Peer, req: LedgerRequest) -> None:
        """A validator asks for an ended epoch's ledger: redeem what was earned first (the
        ledger may not claim more than the chain holds), then the signed rows of the store."""
        from offchain.settlement import sign_ledger

        try:
            if req.epoch >= self.epoch():
                await peer.send_error(req.id, ErrorCode.INVALID_INPUT, f"epoch {req.epoch} has not ended")
                return
            await self.redeem_all(min_amount=1)
            frame = sign_ledger(
                self.node_key, req.id, epoch=req.epoch, router=self.address, provider=await self.router_provider(),
                rows=self.store.usage(req.epoch),
            )
            await peer.send(frame)
            peer.log.info("ledger of epoch %d sent: %d rows", req.epoch, len(frame.rows))
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("the ledger of epoch %d failed", req.epoch)
            with contextlib.suppress(Exception):
                await peer.send_error(req.id, ErrorCode.INTERNAL, "the ledger could not be built")

    # ---- clients -------------------------------------------------------------------------------
    async def _client_session(self, peer: Peer, hello: Hello) -> None:
        view = await self.directory.channel(hello.owner, self.address, hello.node_key, self.router_key)
        if view is None or not view.open:
            await self._reject(
                peer,
                ErrorCode.NO_CHANNEL,
                "no open Channel between this client and this router (deposit first, wait for it to open)",
            )
        account = await self._account(view, hello.owner, hello.node_key)
        await peer.send(
            Welcome(
                session=os.urandom(8).hex(),
                compute_unit_price=self.directory.root.compute_unit_price,
                data_unit_price=self.directory.root.data_unit_price,
                account=self._state(account),
            )
        )
        self._client_peers.setdefault(account.address, set()).add(peer)
        in_flight: dict[int, asyncio.Task[None]] = {}
        try:
            async with asyncio.TaskGroup() as tg:
                while True:
                    # idle only counts while nothing is in flight (a crawl may run for long)
                    frame = await peer.recv(timeout=10.0**9 if in_flight else None)
                    if isinstance(frame, Embed):
                        if frame.id in in_flight:
                            await peer.send_error(frame.id, ErrorCode.DUPLICATE_REQUEST, "this request id is in flight")
                        elif len(in_flight) >= self.config.limits.max_in_flight:
                            await peer.send_error(
                                frame.id,
                                ErrorCode.TOO_MANY_REQUESTS,
                                f"at most {self.config.limits.max_in_flight} requests in flight",
                            )
                        else:
                            t = tg.create_task(self._embed(peer, account, frame))
                            in_flight[frame.id] = t
                            t.add_done_callback(lambda _t, i=frame.id: in_flight.pop(i, None))
                    elif isinstance(frame, Crawl):
                        if frame.id in in_flight:
                            await peer.send_error(frame.id, ErrorCode.DUPLICATE_REQUEST, "this request id is in flight")
                        else:
                            t = tg.create_task(self.data.crawl(peer, account, frame))
                            in_flight[frame.id] = t
                            t.add_done_callback(lambda _t, i=frame.id: in_flight.pop(i, None))
                    elif isinstance(frame, ListModels):
                        await peer.send(Models(id=frame.id, models=self.models()))
                    elif isinstance(frame, ListWorkers):
                        await peer.send(Workers(id=frame.id, model=frame.model, workers=self.workers_for(frame.model)))
                    elif isinstance(frame, RequestClose):
                        await self._approve_close(peer, account, frame)
                    elif isinstance(frame, Dispute):
                        await self._dispute(peer, account, frame)
                    else:
                        await peer.send_error(
                            getattr(frame, "id", None),
                            ErrorCode.UNEXPECTED_FRAME,
                            f"a client does not send {type(frame).__name__}",
                        )
        except* ConnectionClosed:
            pass
        finally:
            self._client_peers.get(account.address, set()).discard(peer)

    async def _account(self, view: Any, client: str, client_key: bytes) -> Account:
        acc = self.accounts.get(view.address)
        if acc is None:
            charged = self.store.account(view.address)
            if charged is None:
                await self.store.write([self.store.op_account(view.address, client, client_key)])
                charged = (0, 0)
            acc = Account(
                channel=Address(view.address),
                client_key=client_key,
                deposit=view.deposit,
                charged_compute=charged[0],
                charged_data=charged[1],
                redeemed_compute=view.redeemed_compute,
                redeemed_data=view.redeemed_data,
            )
            held = self.store.vouchers(view.address)
            if held:
                acc.latest = held[-1]
                acc.pending = held
                acc.advance()
            self.accounts[view.address] = acc
        return acc

    def _state(self, a: Account) -> AccountState:
        v = a.latest
        return AccountState(
            channel=a.address,
            deposit=a.deposit,
            charged_compute=a.charged_compute,
            charged_data=a.charged_data,
            voucher_compute=v.compute if v else 0,
            voucher_data=v.data if v else 0,
            voucher_signature=v.signature if v else b"",
        )

    @property
    def client_sessions(self) -> int:
        """Client connections open now (a channel may have several)."""
        return sum(len(peers) for peers in self._client_peers.values())

    def workers_for(self, model: str) -> list[WorkerInfo]:
        """The connected workers serving `model`, with the attestations a client checks itself."""
        return [
            WorkerInfo(
                provider=w.provider,
                node_key=w.node_key,
                encryption_key=w.encryption_key,
                coefficient=w.coefficient,
                evidence=w.evidence,
            )
            for w in self.workers.values()
            if model in w.models
        ][:256]

    def models(self) -> list[ModelInfo]:
        """The models connected workers serve now, with their cheapest coefficient."""
        out: dict[str, ModelInfo] = {}
        offers = self._offers
        for w in self.workers.values():
            for name in w.models:
                o = offers[name]
                prev = out.get(name)
                out[name] = ModelInfo(
                    name=name,
                    hash=o.hash,
                    dim=o.dim,
                    max_tokens=o.max_tokens,
                    workers=(prev.workers if prev else 0) + 1,
                    min_coefficient=min(prev.min_coefficient, w.coefficient) if prev else w.coefficient,
                )
        return sorted(out.values(), key=lambda m: m.name)

    async def _embed(self, peer: Peer, account: Account, req: Embed) -> None:
        try:
            answer = await self._serve_embed(account, req)
        except RequestFailed as err:
            await peer.send_error(req.id, ErrorCode(err.code), err.detail)
            return
        with contextlib.suppress(ConnectionClosed):
            await peer.send(answer)

    async def _serve_embed(self, account: Account, req: Embed) -> Embedded:
        if (bool(req.texts) + bool(req.tokens) + (req.sealed is not None)) != 1:
            raise RequestFailed(ErrorCode.INVALID_INPUT, "give exactly one of sealed, texts or tokens, not empty")
        if self._shutting_down:
            raise RequestFailed(ErrorCode.SHUTTING_DOWN, "the router is shutting down")
        if not any(req.model in w.models for w in self.workers.values()):
            raise RequestFailed(ErrorCode.UNKNOWN_MODEL, f"no connected worker serves {req.model!r}")
        if self.directory.root.address and not account.deposit:
            raise RequestFailed(ErrorCode.NO_CHANNEL, "the channel has no deposit")
        unit_price = self.directory.root.compute_unit_price
        max_price = compute_price(req.units, unit_price, req.max_coefficient)
        voucher = SignedVoucher(account.channel, req.voucher.compute, req.voucher.data, req.voucher.signature)
        reservation, new = account.admit(voucher, compute=max_price)
        try:
            if new:
                await self.store.write([self.store.op_voucher(voucher)])  # persisted before any work is done
            done, worker, seconds = await self._run_on_worker(req, reservation, unit_price)
        except BaseException:
            account.release(reservation)
            raise
        cost = worker.price(done.receipt.units, unit_price)
        moved = account.settle(reservation, compute=cost)
        ops = [
            self.store.op_charge(account.address, account.charged_compute, account.charged_data),
            self.store.op_usage(
                epoch=self.epoch(),
                provider=worker.provider,
                model=req.model,
                units=done.receipt.units,
                requests=1,
                latency_ms=round(seconds * 1000),
                earned=cost,
            ),
        ]
        if moved and account.redeemable is not None:
            ops.append(self.store.op_prune(account.address, account.redeemable))
        await self.store.write(ops)  # the charge is on disk before the client sees the result
        if req.sealed is not None:  # what a dispute of this answer needs, for a while
            self._served[done.receipt.request] = _Served(
                account.address,
                cost,
                worker.node_key,
                worker.encryption_key,
                worker.provider,
                req.model,
                done.receipt.units,
            )
            while len(self._served) > _DISPUTABLE:
                self._served.popitem(last=False)
        if account.unredeemed >= self.config.redeem_threshold:
            self._redeem_now.set()
        return Embedded(
            id=req.id,
            model=req.model,
            dim=done.dim,
            vectors=done.vectors,
            units=done.receipt.units,
            cost=cost,
            coefficient=worker.coefficient,
            worker=worker.provider,
            worker_key=worker.node_key,
            receipt=done.receipt,
            account=self._state(account),
        )

    async def _run_on_worker(
        self, req: Embed, reservation: Reservation, unit_price: int
    ) -> tuple[WorkDone, WorkerState, float]:
        tried: set[str] = set()
        last = "no worker"
        keys = frozenset(r.worker for r in req.sealed.recipients) if req.sealed is not None else None
        client_key = req.sealed.client_key if req.sealed is not None else PLAIN
        for _attempt in range(2):  # the first worker, then one retry elsewhere (among the recipients)
            worker = choose_worker(
                self.workers.values(),
                model=req.model,
                max_coefficient=req.max_coefficient,
                exclude=frozenset(tried),
                keys=keys,
            )
            if worker is None:
                if not tried:
                    raise RequestFailed(
                        ErrorCode.NO_WORKER,
                        f"no worker for {req.model!r} has room at coefficient <= {req.max_coefficient}",
                    )
                break
            if worker.price(req.units, unit_price) > reservation.compute:
                break  # cannot happen while coefficient <= max_coefficient; kept as the money guard
            tried.add(worker.session)
            result = await self._send_work(worker, req)
            if isinstance(result, tuple):
                done, seconds = result
                expected = hashlib.sha256(done.vectors).digest()
                r = done.receipt
                if (
                    r.units <= req.units
                    and r.result_hash == expected
                    and r.model_hash == worker.models.get(req.model)
                    and r.client_key == client_key
                    and _signed_by(worker.node_key, r)
                ):
                    worker.observe(ok=True, seconds=seconds)
                    return done, worker, seconds
                last = "the worker's receipt does not match its answer"
                worker.observe(ok=False)
            else:
                err = result
                if err.code in (ErrorCode.UNITS_MISMATCH, ErrorCode.INPUT_TOO_LARGE, ErrorCode.INVALID_INPUT):
                    raise RequestFailed(err.code, err.message)  # the request's fault: no retry
                last = err.message or ErrorCode(err.code).name
                worker.observe(ok=False)
            await self.store.write(
                [self.store.op_usage(epoch=self.epoch(), provider=worker.provider, model=req.model, failures=1)]
            )
        raise RequestFailed(ErrorCode.WORKER_FAILED, f"the request failed on {len(tried)} worker(s): {last}")

    async def _send_work(self, worker: WorkerState, req: Embed) -> tuple[WorkDone, float] | Error:
        self._next_work += 1
        wid = self._next_work
        fut: asyncio.Future[WorkDone | Error] = asyncio.get_running_loop().create_future()
        started = time.monotonic()
        self._pending[wid] = _Pending(fut, worker, started)
        worker.in_flight += 1
        try:
            peer = self._worker_peers.get(worker.session)
            if peer is None:
                return Error(id=wid, code=ErrorCode.WORKER_FAILED, message="the worker disconnected")
            try:
                await peer.send(
                    Work(
                        id=wid, model=req.model, units=req.units, texts=req.texts, tokens=req.tokens, sealed=req.sealed
                    )
                )
                answer = await asyncio.wait_for(fut, self.config.request_timeout)
            except ConnectionClosed:
                return Error(id=wid, code=ErrorCode.WORKER_FAILED, message="the worker disconnected")
            except TimeoutError:
                return Error(id=wid, code=ErrorCode.TIMEOUT, message=f"no answer in {self.config.request_timeout:g}s")
            if isinstance(answer, WorkDone) and answer.receipt.request != wid:
                return Error(id=wid, code=ErrorCode.WORKER_FAILED, message="receipt for another request")
            return (answer, time.monotonic() - started) if isinstance(answer, WorkDone) else answer
        finally:
            worker.in_flight -= 1
            self._pending.pop(wid, None)

    async def _dispute(self, peer: Peer, account: Account, d: Dispute) -> None:
        """Refund an answer proven not to open with the key its worker's receipt names."""
        served = self._served.get(d.receipt.request)
        why = ""
        if served is None or served.channel != account.address:
            why = "no recent answer of this channel has that receipt (disputes are kept for the last answers only)"
        elif served.disputed:
            why = "this answer was disputed already"
        elif not _signed_by(served.node_key, d.receipt) or hashlib.sha256(d.answer).digest() != d.receipt.result_hash:
            why = "the receipt is not the worker's for this answer"
        elif bytes(PrivateKey(d.ephemeral).public_key) != d.receipt.client_key:
            why = "the secret is not the request's key"
        else:
            try:
                open_answer(d.answer, PrivateKey(d.ephemeral), served.encryption_key)
                why = "the answer opens with the request's key: it was sealed to the client"
            except InvalidMessage:
                pass
        if why:
            await peer.send_error(d.id, ErrorCode.DISPUTE_REFUSED, why)
            return
        assert served is not None
        served.disputed = True
        refund = min(served.cost, account.charged_compute)
        account.refund(refund)
        log.warning(
            "worker %s sealed an answer to the wrong key (request %d): refunded %d to %s",
            served.provider,
            d.receipt.request,
            refund,
            account.address,
        )
        for w in self.workers.values():
            if w.node_key == served.node_key:
                w.observe(ok=False)
        await self.store.write(
            [
                self.store.op_charge(account.address, account.charged_compute, account.charged_data),
                self.store.op_usage(
                    epoch=self.epoch(),
                    provider=served.provider,
                    model=served.model,
                    units=-served.units,
                    requests=-1,
                    failures=1,
                    earned=-refund,
                ),
            ]
        )
        await peer.send(DisputeSettled(id=d.id, refunded=refund, account=self._state(account)))

    async def _approve_close(self, peer: Peer, account: Account, req: RequestClose) -> None:
        if account.in_flight:
            await peer.send_error(req.id, ErrorCode.BUSY, "requests are in flight on this channel; close after them")
            return
        sig = sign_close_approval(
            self.node_key, account.channel, compute=account.charged_compute, data=account.charged_data
        )
        await peer.send(
            CloseApproved(id=req.id, compute=account.charged_compute, data=account.charged_data, signature=sig)
        )

    def epoch(self) -> int:
        return int(self.clock()) // self.config.epoch_seconds

    # ---- the chain's view changed ---------------------------------------------------------------
    async def _on_change(self, change: Any) -> None:
        if change.kind == "provider":
            view = change.view
            await self.data.provider_changed(change.address, view)
            for session, w in list(self.workers.items()):
                if w.provider != change.address:
                    continue
                if view is None or not view.eligible:
                    code, why = ErrorCode.PROVIDER_INACTIVE, "the Provider is no longer active with the minimum stake"
                elif view.node_key != w.node_key:
                    code, why = ErrorCode.NOT_A_PROVIDER, "the Provider now holds another node key"
                else:
                    continue
                log.info("dropping worker %s: %s", w.provider, why)
                peer = self._worker_peers.get(session)
                if peer is not None:
                    await peer.send_error(None, code, why)
                    await peer.close(1008, why[:100])
        elif change.kind == "channel":
            acc = self.accounts.get(change.address)
            view = change.view
            if acc is not None and view is not None:
                acc.deposit = view.deposit
                acc.redeemed_compute, acc.redeemed_data = view.redeemed_compute, view.redeemed_data
                if view.state == ChannelState.CLOSING:
                    self._closing_channels.add(acc.address)  # the close delay is the last chance to redeem
                    self._redeem_now.set()
                elif view.state == ChannelState.CLOSED:
                    self._closing_channels.discard(acc.address)

    # ---- redeeming --------------------------------------------------------------------------------
    async def _redeem_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._redeem_now.wait(), self.config.redeem_interval)
            timer = not self._redeem_now.is_set()
            self._redeem_now.clear()
            try:
                await self.redeem_all(min_amount=1, only=set(self._closing_channels))  # closing: any amount, first
                await self.redeem_all(min_amount=1 if timer else self.config.redeem_threshold)
            except Exception:
                log.exception("redeem round failed; retried on the next one")

    async def redeem_all(self, *, min_amount: int = 1, only: set[str] | None = None) -> int:
        """Redeem every channel's (or `only` these channels') earned voucher worth at least
        `min_amount`; returns how many landed.

        A failed redeem is logged and retried later; the voucher stays in the store."""
        landed = 0
        for acc in list(self.accounts.values()):
            if only is not None and acc.address not in only:
                continue
            if acc.unredeemed >= min_amount and acc.address not in self._redeeming:
                try:
                    landed += await self._redeem(acc)
                except CocoonError as err:
                    log.warning("redeem of %s failed: %s", acc.address, err)
        return landed

    async def _redeem(self, acc: Account) -> int:
        from wrappers.channel import REDEEM_FEE, Channel

        v = acc.redeemable
        assert v is not None
        self._redeeming[acc.address] = (v.compute, v.data)
        try:
            body = Channel.redeem_voucher_body(compute=v.compute, data=v.data, signature=v.signature)
            sent = await self.wallet.send(to=acc.channel, value=REDEEM_FEE, body=body)
            txs = await sent.wait_delivered(timeout=self.config.redeem_timeout)
            ok = bool(txs) and txs[0].success
            if ok:
                detail = ""
            elif not txs:
                detail = "the RedeemVoucher never left the router's wallet (its balance is below the redeem fee?)"
            else:
                detail = f"the channel refused it with exit code {txs[0].exit_code}"
            status = "ok" if ok else "refused"
            await self.store.write([self.store.op_redeem(acc.address, v.compute, v.data, self.clock(), status, detail)])
            if ok:
                acc.redeemed_compute = max(acc.redeemed_compute, v.compute)
                acc.redeemed_data = max(acc.redeemed_data, v.data)
                log.info("redeemed %s up to (%d, %d)", acc.address, v.compute, v.data)
                return 1
            # the voucher stays; the next round retries, and the directory's view of the channel
            # (its redeemed totals, its state) corrects ours if the chain moved meanwhile
            log.warning("redeem of %s up to (%d, %d) refused: %s", acc.address, v.compute, v.data, detail)
            return 0
        finally:
            self._redeeming.pop(acc.address, None)


def _signed_by(node_key: bytes, r: Any) -> bool:
    """Whether the worker with `node_key` signed receipt `r` (the router bills by it)."""
    digest = receipt_digest(
        request=r.request, model_hash=r.model_hash, units=r.units, result_hash=r.result_hash, client_key=r.client_key
    )
    try:
        VerifyKey(node_key).verify(digest, r.signature)
    except BadSignatureError:
        return False
    return True
