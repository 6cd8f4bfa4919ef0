"""The router's data path: data node sessions, crawls, and the streams relayed between a
validator and the data nodes.

    data = DataPath(router)
    await data.node_session(peer, hello)          # role "datanode": until it disconnects
    await data.crawl(peer, account, frame)        # a client's Crawl, until its CrawlDone
    await data.validator_frame(link, frame)       # stream and crawl frames from a validator

A client's `Crawl` reserves its `max_cost` on the channel (the voucher covering it is on disk
before the crawl starts) and goes to a connected validator as a `CrawlTask`. The validator
fetches each page as the TLS client over a stream: it sends `StreamOpen(task, avoid)`, the
router picks a data node (`choose_node`), opens the stream there under its own id, and moves
`StreamData` both ways, counting every byte itself (the node's count is not trusted). The
crawl's `CrawlBooks` decide what each stream and page costs and refuse a stream the budget
cannot cover. Records go to the client as they come; `CrawlDone` settles the channel (the
charge and the usage rows per node and validator, on disk) and then reaches the client.

A validator that disconnects loses its streams; its crawls wait for a validator (the same
one after a restart resumes from its own store) and are sent again. A client that goes away
stops its crawl: no new stream is admitted, and what was relayed until then is charged when
the validator ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from websockets.exceptions import ConnectionClosed

from offchain.errors import RequestFailed
from offchain.mesh import Peer
from offchain.protocol.units import data_units
from offchain.protocol.voucher import SignedVoucher
from offchain.protocol.wire import (
    RELAY_FAULT,
    Crawl,
    CrawlDone,
    CrawlRecord,
    CrawlTask,
    Error,
    ErrorCode,
    Frame,
    Hello,
    StreamClose,
    StreamData,
    StreamOpen,
    StreamOpened,
    StreamRefusal,
    StreamRefused,
)
from offchain.router._core import Account, Reservation
from offchain.router._data import CrawlBooks, NodeState, choose_node
from wrappers.provider import Role

if TYPE_CHECKING:
    from offchain.router._server import Router

__all__ = ["DataPath", "ValidatorLink"]

log = logging.getLogger("cocoon.router")

_NEVER = 10.0**9  # a session's recv has no idle limit: websocket pings tell a dead peer


@dataclass(eq=False)
class ValidatorLink:
    """A validator's session, as the data path uses it."""

    session: str
    peer: Peer
    owner: str  # its wallet (usage rows name it)
    node_key: bytes
    jobs: set[int] = field(default_factory=set)


@dataclass(eq=False)
class _Job:
    id: int
    spec: Any
    account: Account
    reservation: Reservation
    books: CrawlBooks
    client: Peer | None
    client_id: int
    validator: ValidatorLink | None = None
    stopped: bool = False  # the client went away: no new stream
    result: CrawlDone | Error | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    last_node: dict[str, str] = field(default_factory=dict)  # host -> the node of its last fetch
    node_bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    node_streams: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    node_failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    node_earned: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass(eq=False)
class _Relayed:
    rid: int  # the router's id (towards the node)
    vid: int  # the validator's id
    job: _Job
    link: ValidatorLink
    node: NodeState
    host: str
    opened: bool = False


class DataPath:
    """See the module doc. Lives on the router's event loop; holds no lock."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.nodes: dict[str, NodeState] = {}
        self._node_peers: dict[str, Peer] = {}
        self.validators: dict[str, ValidatorLink] = {}
        self.jobs: dict[int, _Job] = {}
        self._streams: dict[int, _Relayed] = {}  # router id -> stream
        self._by_vid: dict[tuple[str, int], _Relayed] = {}
        self._next_stream = int.from_bytes(os.urandom(4), "big") << 16

    # ---- data nodes ------------------------------------------------------------------------
    async def node_session(self, peer: Peer, hello: Hello) -> None:
        r = self.router
        view, session = await r.admit_provider(peer, hello, Role.BANDWIDTH)
        node = NodeState(session, view.address, hello.node_key, reputation=r._reputation.get(view.address, 1.0))
        self.nodes[session] = node
        self._node_peers[session] = peer
        peer.log.info("data node %s joined", view.address)
        try:
            while True:
                frame = await peer.recv(timeout=_NEVER)
                if isinstance(frame, StreamOpened | StreamRefused | StreamData | StreamClose):
                    await self._from_node(node, frame)
                elif isinstance(frame, Error):
                    peer.log.info("data node says: %s %s", frame.code, frame.message)
                else:
                    await peer.send_error(
                        getattr(frame, "id", None),
                        ErrorCode.UNEXPECTED_FRAME,
                        f"a data node does not send {type(frame).__name__}",
                    )
        finally:
            self.nodes.pop(session, None)
            self._node_peers.pop(session, None)
            for s in [s for s in self._streams.values() if s.node is node]:
                await self._to_validator(s, StreamClose(id=s.vid, error="the data node disconnected"))
                self._end(s, ok=False)

    async def provider_changed(self, provider: str, view: Any) -> None:
        """The chain's view of Provider `provider` changed: drop its data node sessions if it
        may no longer serve (inactive, under the minimum stake, or another node key)."""
        for session, node in list(self.nodes.items()):
            if node.provider != provider:
                continue
            if view is None or not view.eligible:
                code, why = ErrorCode.PROVIDER_INACTIVE, "the Provider is no longer active with the minimum stake"
            elif view.node_key != node.node_key:
                code, why = ErrorCode.NOT_A_PROVIDER, "the Provider now holds another node key"
            else:
                continue
            peer = self._node_peers.get(session)
            log.info("dropping data node %s: %s", provider, why)
            if peer is not None:
                await peer.send_error(None, code, why)
                await peer.close(1008, why[:100])

    def set_reputation(self, provider: str, score: float) -> bool:
        hit = False
        for n in self.nodes.values():
            if n.provider == provider:
                n.reputation = score
                hit = True
        return hit

    async def _from_node(self, node: NodeState, frame: Frame) -> None:
        s = self._streams.get(frame.id)  # type: ignore[union-attr]
        if s is None or s.node is not node:
            return  # a stream already ended here (its close crossed the node's frame)
        if isinstance(frame, StreamOpened):
            s.opened = True
            s.job.last_node[s.host] = node.provider
            await self._to_validator(s, StreamOpened(id=s.vid, address=frame.address, node=node.provider))
        elif isinstance(frame, StreamData):
            if not s.job.books.add_bytes(s.rid, len(frame.data)):
                await self._cap(s)
                return
            await self._to_validator(s, StreamData(id=s.vid, data=frame.data))
        elif isinstance(frame, StreamRefused):
            await self._to_validator(s, StreamRefused(id=s.vid, reason=frame.reason, message=frame.message))
            self._end(s, ok=False, failure=frame.reason in (StreamRefusal.CONNECT_FAILED,))
        elif isinstance(frame, StreamClose):
            await self._to_validator(s, StreamClose(id=s.vid, error=frame.error))
            self._end(s, ok=not frame.error, failure=False)  # the target's end or the node's cap

    async def _cap(self, s: _Relayed) -> None:
        why = f"the page passed the crawl's max_page_bytes ({s.job.books.max_page_bytes})"
        await self._to_node(s, StreamClose(id=s.rid, error=why))
        await self._to_validator(s, StreamClose(id=s.vid, error=why))
        self._end(s, ok=False, failure=False)

    async def _to_validator(self, s: _Relayed, frame: Frame) -> None:
        with contextlib.suppress(ConnectionClosed):
            await s.link.peer.send(frame)

    async def _to_node(self, s: _Relayed, frame: Frame) -> None:
        peer = self._node_peers.get(s.node.session)
        if peer is not None:
            with contextlib.suppress(ConnectionClosed):
                await peer.send(frame)

    def _end(self, s: _Relayed, *, ok: bool, failure: bool = True) -> None:
        """Forget stream `s`; charge it to its crawl if it ended cleanly."""
        if self._streams.pop(s.rid, None) is None:
            return
        self._by_vid.pop((s.link.session, s.vid), None)
        nbytes = s.job.books.stream_bytes(s.rid)
        cost = s.job.books.close(s.rid, ok=ok)
        node = s.node
        node.open_streams -= 1
        node.streams += 1
        node.relayed += nbytes
        if ok:
            s.job.node_bytes[node.provider] += nbytes
            s.job.node_streams[node.provider] += 1
            s.job.node_earned[node.provider] += cost
        elif failure:
            node.failures += 1
            s.job.node_failures[node.provider] += 1

    # ---- validators ------------------------------------------------------------------------
    async def validator_joined(self, link: ValidatorLink) -> None:
        self.validators[link.session] = link
        for job in list(self.jobs.values()):
            if job.validator is None and job.result is None:
                await self._dispatch(job)

    async def validator_left(self, link: ValidatorLink) -> None:
        self.validators.pop(link.session, None)
        for s in [s for s in self._streams.values() if s.link is link]:
            await self._to_node(s, StreamClose(id=s.rid, error="the validator disconnected"))
            self._end(s, ok=False, failure=False)
        for task in list(link.jobs):
            job = self.jobs.get(task)
            if job is None:
                continue
            job.validator = None
            if job.stopped:
                await self._settle(job, Error(id=job.id, code=ErrorCode.CRAWL_FAILED, message="the validator left"))
            else:
                await self._dispatch(job)  # another validator, if one is connected; else it waits

    async def _dispatch(self, job: _Job) -> None:
        free = sorted(self.validators.values(), key=lambda v: (len(v.jobs), v.session))
        if not free:
            log.info("crawl %d waits for a validator", job.id)
            return
        link = free[0]
        job.validator = link
        link.jobs.add(job.id)
        try:
            await link.peer.send(CrawlTask(id=job.id, spec=job.spec))
        except ConnectionClosed:
            link.jobs.discard(job.id)
            job.validator = None

    async def validator_frame(self, link: ValidatorLink, frame: Frame) -> bool:
        """Act on a data-path frame from a validator; False if it is not one."""
        if isinstance(frame, StreamOpen):
            await self._open(link, frame)
        elif isinstance(frame, StreamData):
            s = self._by_vid.get((link.session, frame.id))
            if s is None:
                return True  # ended here already
            if not s.job.books.add_bytes(s.rid, len(frame.data)):
                await self._cap(s)
            else:
                await self._to_node(s, StreamData(id=s.rid, data=frame.data))
        elif isinstance(frame, StreamClose):
            s = self._by_vid.get((link.session, frame.id))
            if s is not None:
                await self._to_node(s, StreamClose(id=s.rid, error=frame.error))
                # the validator reads every byte: a relay fault it reports (a failed TLS check)
                # is the node's failure and costs the crawl nothing; any other close is charged
                fault = frame.error.startswith(RELAY_FAULT)
                self._end(s, ok=not fault, failure=fault)
        elif isinstance(frame, CrawlRecord):
            job = self._job_of(link, frame.id)
            if job is not None and job.client is not None and not job.stopped:
                job.books.page()
                with contextlib.suppress(ConnectionClosed):
                    await job.client.send(CrawlRecord(id=job.client_id, index=frame.index, record=frame.record))
        elif isinstance(frame, CrawlDone):
            job = self._job_of(link, frame.id)
            if job is not None:
                await self._settle(job, frame)
        elif isinstance(frame, Error) and frame.id is not None and (job := self._job_of(link, frame.id)) is not None:
            await self._settle(job, frame)
        else:
            return False
        return True

    def _job_of(self, link: ValidatorLink, task: int) -> _Job | None:
        job = self.jobs.get(task)
        return job if job is not None and job.validator is link else None

    async def _open(self, link: ValidatorLink, req: StreamOpen) -> None:
        async def refuse(reason: StreamRefusal, message: str) -> None:
            with contextlib.suppress(ConnectionClosed):
                await link.peer.send(StreamRefused(id=req.id, reason=reason, message=message))

        job = self._job_of(link, req.task)
        if job is None:
            await refuse(StreamRefusal.NOT_YOURS, f"no crawl {req.task} is this validator's")
            return
        if (link.session, req.id) in self._by_vid:
            await refuse(StreamRefusal.DUPLICATE, f"stream {req.id} is open")
            return
        if job.stopped or self.router._shutting_down:
            await refuse(StreamRefusal.BUDGET, "the crawl was stopped")
            return
        self._next_stream += 1
        rid = self._next_stream
        if not job.books.open(rid):
            await refuse(StreamRefusal.BUDGET, f"the crawl's budget ({job.books.max_cost} nanoTON) is spent")
            return
        node = choose_node(self.nodes.values(), avoid=req.avoid, last_for_host=job.last_node.get(req.host))
        peer = self._node_peers.get(node.session) if node is not None else None
        if node is None or peer is None:
            job.books.close(rid, ok=False)
            await refuse(StreamRefusal.NO_NODE, f"no data node outside {len(req.avoid)} avoided can relay now")
            return
        s = _Relayed(rid=rid, vid=req.id, job=job, link=link, node=node, host=req.host)
        self._streams[rid] = s
        self._by_vid[(link.session, req.id)] = s
        node.open_streams += 1
        try:
            await peer.send(StreamOpen(id=rid, host=req.host, port=req.port))
        except ConnectionClosed:
            await refuse(StreamRefusal.NO_NODE, "the chosen data node disconnected")
            self._end(s, ok=False)

    # ---- clients ---------------------------------------------------------------------------
    async def crawl(self, peer: Peer, account: Account, req: Crawl) -> None:
        """Serve a client's `Crawl` until its `CrawlDone` (or an `Error`) is sent."""
        try:
            job = await self._admit(peer, account, req)
        except RequestFailed as err:
            await peer.send_error(req.id, ErrorCode(err.code), err.detail)
            return
        try:
            await job.finished.wait()
        finally:
            if job.result is None:  # the client went away (its session's tasks are cancelled)
                job.client, job.stopped = None, True
                if job.validator is None:
                    await self._settle(job, Error(id=job.id, code=ErrorCode.CRAWL_FAILED, message="client left"))
        result = job.result
        with contextlib.suppress(ConnectionClosed):
            if isinstance(result, CrawlDone):
                await peer.send(msgspec.structs.replace(result, id=req.id))
            elif isinstance(result, Error):
                await peer.send_error(req.id, ErrorCode(result.code) if result.code in ErrorCode._value2member_map_
                                      else ErrorCode.CRAWL_FAILED, result.message)

    async def _admit(self, peer: Peer, account: Account, req: Crawl) -> _Job:
        r = self.router
        if r._shutting_down:
            raise RequestFailed(ErrorCode.SHUTTING_DOWN, "the router is shutting down")
        if not self.validators:
            raise RequestFailed(ErrorCode.NO_VALIDATOR, "no validator is connected to run a crawl")
        if r.directory.root.address and not account.deposit:
            raise RequestFailed(ErrorCode.NO_CHANNEL, "the channel has no deposit")
        books = CrawlBooks(
            max_cost=req.max_cost,
            max_page_bytes=req.spec.max_page_bytes,
            data_unit_price=r.directory.root.data_unit_price,
        )
        if not books.can_open():
            raise RequestFailed(
                ErrorCode.VOUCHER_UNDERPAID,
                f"max_cost {req.max_cost} does not cover one page ({books.stream_reserve} nanoTON at "
                f"max_page_bytes {req.spec.max_page_bytes})",
            )
        voucher = SignedVoucher(account.channel, req.voucher.compute, req.voucher.data, req.voucher.signature)
        reservation, new = account.admit(voucher, compute=0, data=req.max_cost)
        try:
            if new:
                await r.store.write([r.store.op_voucher(voucher)])  # on disk before any byte is relayed
        except BaseException:
            account.release(reservation)
            raise
        task = int.from_bytes(os.urandom(7), "big")
        job = _Job(task, req.spec, account, reservation, books, peer, req.id)
        self.jobs[task] = job
        log.info("crawl %d for %s: %d seed(s), up to %d pages, max cost %d",
                 task, account.address, len(req.spec.seeds), req.spec.max_pages, req.max_cost)
        await self._dispatch(job)
        return job

    async def _settle(self, job: _Job, result: CrawlDone | Error) -> None:
        """End `job`: its charge and usage on disk, then its result to the waiting client."""
        if job.result is not None:
            return
        r = self.router
        link = job.validator
        for s in [s for s in self._streams.values() if s.job is job]:
            await self._to_node(s, StreamClose(id=s.rid, error="the crawl ended"))
            self._end(s, ok=False, failure=False)
        cost = job.books.finish()
        acc = job.account
        moved = acc.settle(job.reservation, compute=0, data=cost)
        epoch = r.epoch()
        ops = [r.store.op_charge(acc.address, acc.charged_compute, acc.charged_data)]
        for provider, nbytes in job.node_bytes.items():
            ops.append(r.store.op_usage(
                epoch=epoch, provider=provider, model="relay", units=data_units(nbytes),
                requests=job.node_streams[provider], failures=job.node_failures.get(provider, 0),
                earned=job.node_earned[provider],
            ))
        for provider, failures in job.node_failures.items():
            if provider not in job.node_bytes:
                ops.append(r.store.op_usage(epoch=epoch, provider=provider, model="relay", failures=failures))
        if link is not None and job.books.pages:
            ops.append(r.store.op_usage(
                epoch=epoch, provider=link.owner, model="crawl", units=job.books.pages, requests=1,
                earned=job.books.pages * job.books.page_fee,
            ))
        if moved and acc.redeemable is not None:
            ops.append(r.store.op_prune(acc.address, acc.redeemable))
        await r.store.write(ops)  # the charge is on disk before the client sees the result
        if isinstance(result, CrawlDone):
            result = msgspec.structs.replace(result, cost=cost, account=r._state(acc))
        job.result = result
        if link is not None:
            link.jobs.discard(job.id)
        self.jobs.pop(job.id, None)
        job.finished.set()
        log.info("crawl %d ended (%s): %d page fee(s), %d bytes relayed, cost %d", job.id,
                 result.stop.name if isinstance(result, CrawlDone) else f"error {result.code}",
                 job.books.pages, job.books.relayed, cost)
        if acc.unredeemed >= r.config.redeem_threshold:
            r._redeem_now.set()

