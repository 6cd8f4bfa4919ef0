"""The validator agent: mystery shopping for embeddings.

    async with Validator(config, chain=chain, wallet=wallet, probe_wallet=probe_wallet,
                         channel_key=key, store=store, client_store=path) as v:
        await v.serve_forever()

It is an ordinary client of the router: `CocoonClient` on its own Channel (its own probe
wallet and channel key), so its requests are sealed to the workers exactly as any client's
are, and the router picks the worker as for any request. At random times (`_core`) it sends
a round of probes (several at once, so that the router's load balancing spreads them over
the workers), re-runs the same allowlisted model locally on the same inputs, and compares.
`EmbeddingResult.worker` says which Provider answered.

Each probe's outcome updates that Provider's reputation (persisted in SQLite), which goes to
the router as a `Reputation` frame over a second session, of role "validator", that the
router admits only if this validator's node key is in Root's validator set. A worker caught
`fraud_failures` times in its last `fraud_window` probes gets a signed fraud record and a
slashing order signed by this node key; once the order holds Root's `threshold` signatures
it is relayed to Root (`RelaySlash`) from this validator's wallet. Root slashes the Provider,
and the router's directory drops it when it sees that.

Crawls (the data half): the router hands this validator `CrawlTask`s over the same
session; each runs as a `Crawler` (fetching through data nodes as the TLS client, records
signed and persisted in the crawl store before they are sent). A crawl interrupted by a
lost session or a restart resumes from the store when the router sends the task again.
Data nodes' reputation (`NodeBook`) is persisted and reported to the router like a worker's.

Epoch settlement (`settle = true`, `_settle.Settler`): at each router epoch boundary it asks
the router for the ended epoch's signed `Ledger` over this session, settles it against the
pool, and posts the report (exchanging `ReportSignature`s with the other validators through
the router when Root's threshold is above 1), then publishes the epoch to `epochs_dir`.

Left out: collecting other validators' signatures on slashing orders for a threshold above 1
(the order is then recorded `awaiting_quorum` and not relayed).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from nacl.signing import SigningKey
from pytoniq_core import Address
from websockets.exceptions import ConnectionClosed

from offchain.client import ClientConfig, CocoonClient, EmbeddingResult
from offchain.errors import CocoonError, PeerRejected, RequestFailed
from offchain.mesh import Limits, Peer, connect, join
from offchain.models import MINILM_NAME, Model, builtin_models, load_model
from offchain.protocol.wire import (
    CrawlTask,
    Error,
    ErrorCode,
    Ledger,
    LedgerRequest,
    ReportSignature,
    Reputation,
    wire_address,
)
from offchain.ton.network import ChainContractProvider, ChainProvider
from offchain.validator._core import (
    Evidence,
    FraudRecord,
    FraudRule,
    Quorum,
    ValidatorCore,
    WorkerRecord,
    fraud_record,
    inputs_hash,
    slash_order,
)
from offchain.validator._crawl import check_spec
from offchain.validator._crawl_store import CrawlStore
from offchain.validator._crawler import Crawler, CrawlerConfig, NodeBook
from offchain.validator._relay import RelayClient
from offchain.validator._settle import SettleConfig, Settler, SettleStore
from offchain.validator._store import ValidatorStore
from wrappers.errors import ExitCode
from wrappers.provider import SLASH_RELAY_FEE
from wrappers.root import Root

__all__ = ["Validator", "ValidatorConfig"]

log = logging.getLogger("cocoon.validator")


@dataclass
class ValidatorConfig:
    """What a validator needs besides its dependencies (`offchain.validator._main` reads them
    from TOML; see its docstring for the keys)."""

    root: str
    router_url: str
    router: str  # the router's wallet (the probe Channel's `router`)
    router_key: bytes  # the router's node key
    node_key: SigningKey = field(repr=False)  # in Root's validator set: signs orders, authenticates to the router
    model: str = MINILM_NAME
    deposit: int = 10**9  # nanoTON put in the probe channel when it is first opened
    probe_interval: float = 60.0  # mean seconds between probe rounds (exponential)
    probe_burst: int = 0  # probes sent at once per round; 0: one per worker serving the model (at most 8)
    probe_inputs: int = 2  # inputs per probe
    cosine_threshold: float = 0.99
    reputation_alpha: float = 0.3
    fraud_failures: int = 3
    fraud_window: int = 5
    slash_amount: int = 10**9  # nanoTON
    relay_value: int = SLASH_RELAY_FEE
    relay_timeout: float = 60.0
    model_threads: int = 1
    limits: Limits = field(default_factory=Limits)
    ca_file: str = ""  # the CAs crawled sites' certificates are checked against ("": the system's)
    crawl: CrawlerConfig = field(default_factory=CrawlerConfig)
    settle: bool = False  # run the epoch settlement (`_settle`): ledgers in, reports posted and published
    epoch_seconds: int = 3600  # the routers' epoch (their `epoch_seconds`)
    epochs_dir: str = "epochs"  # where settled epochs are published (epochs/N/...)


class Validator:
    """The validator agent. Construct, then `async with` (opens the probe channel, loads the
    model), then `serve_forever()` until `close()`."""

    def __init__(
        self,
        config: ValidatorConfig,
        *,
        chain: ChainProvider,
        wallet: Any,
        probe_wallet: Any,
        channel_key: SigningKey,
        store: ValidatorStore,
        client_store: Path | str,
        model: Model | None = None,
        core: ValidatorCore | None = None,
        crawl_store: CrawlStore | None = None,
        settle_store: SettleStore | None = None,
    ) -> None:
        self.config = config
        self.chain = chain
        self.wallet = wallet  # relays slashing orders; names this validator to the router
        self.store = store
        self.address = wire_address(wallet.address)
        self.public_key = bytes(config.node_key.verify_key)
        self.core = core or ValidatorCore(
            threshold=config.cosine_threshold,
            alpha=config.reputation_alpha,
            rule=FraudRule(config.fraud_failures, config.fraud_window),
        )
        self.client = CocoonClient(
            ClientConfig(
                router_url=config.router_url, root=config.root, router=config.router, router_key=config.router_key
            ),
            chain=chain,
            wallet=probe_wallet,
            channel_key=channel_key,
            store=client_store,
        )
        self.model = model
        self.root = Root.create_from_address(Address(config.root))
        self.channel = ""
        self._router_peer: Peer | None = None
        self._closing = asyncio.Event()
        self.rounds = 0
        self.crawl_store = crawl_store
        self.nodes = NodeBook(on_change=self._node_changed)
        for provider, score, fetches, failures in store.nodes():
            self.nodes.restore(provider, score, fetches, failures)
        self.tls = ssl.create_default_context(cafile=config.ca_file or None)
        self.crawls: dict[int, asyncio.Task[None]] = {}
        self._ledgers: dict[int, asyncio.Future[Ledger]] = {}
        self._next_ledger = int.from_bytes(hashlib.sha256(self.public_key).digest()[:3], "big") << 20
        self.settler: Settler | None = None
        if config.settle:
            if settle_store is None:
                raise ValueError("settle = true needs a settle store")
            self.settler = Settler(
                SettleConfig(epoch_seconds=config.epoch_seconds, epochs_dir=Path(config.epochs_dir)),
                chain=chain, wallet=wallet, root=config.root, key=config.node_key, router_key=config.router_key,
                store=settle_store, request_ledger=self.request_ledger, send_signature=self.send_signature,
                reputations=self._reputations,
            )

    # ---- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> Validator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
        peer, self._router_peer = self._router_peer, None
        if peer is not None:
            with contextlib.suppress(Exception):
                await peer.close()
        await self.client.close()

    async def start(self) -> None:
        """Restore the books, load the model, open (or reuse) the probe channel."""
        for provider, score, probes, failures, accused in self.store.workers():
            self.core.restore(
                provider,
                score=score,
                probes=probes,
                failures=failures,
                accused=accused,
                recent=self.store.recent(provider, self.core.rule.window),
            )
        if self.model is None:
            spec = builtin_models()[self.config.model]
            self.model = await asyncio.to_thread(load_model, spec, intra_op_threads=self.config.model_threads)
        vset = await self.root.get_validator_set(self._root_provider())
        if int.from_bytes(self.public_key, "big") not in vset.validators:
            log.warning(
                "this node key %s is not in Root's validator set: the router will refuse it and Root its orders",
                self.public_key.hex(),
            )
        self.channel = await self.client.open_channel(deposit=self.config.deposit)
        log.info("validator %s: probe channel %s open", self.public_key.hex()[:16], self.channel)

    async def serve_forever(self) -> None:
        """Probe and report until `close()`. Cancelling it is safe; one caller at a time."""
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self._router_loop()), tg.create_task(self._probe_loop())]
            if self.settler is not None:
                tasks.append(tg.create_task(self.settler.run()))
            await self._closing.wait()
            for t in tasks:
                t.cancel()

    async def close(self) -> None:
        """Make `serve_forever` stop (its tasks are cancelled); leaving `async with` then
        closes the router session and the probe client. Idempotent."""
        self._closing.set()

    def _root_provider(self) -> ChainContractProvider:
        return ChainContractProvider(self.chain, self.root.address)

    # ---- the router session -------------------------------------------------------------------
    async def _router_loop(self) -> None:
        delay = 0.5
        while True:
            try:
                peer = await connect(self.config.router_url, self.config.limits)
                try:
                    await join(
                        peer,
                        key=self.config.node_key,
                        role="validator",
                        owner=self.address,
                        agent="cocoon-validator/1",
                        expect_router_key=self.config.router_key,
                    )
                    self._router_peer = peer
                    delay = 0.5
                    log.info("reporting to the router at %s", self.config.router_url)
                    for rec in list(self.core.workers.values()):
                        if rec.probes:
                            await peer.send(rec.report())
                    for provider, score in self.nodes.scores.items():
                        await peer.send(self._node_report(provider, score))
                    relay = RelayClient(peer.send)
                    try:
                        while True:
                            frame = await peer.recv(timeout=10**9)
                            if relay.handle(frame):
                                continue
                            if isinstance(frame, CrawlTask):
                                self._start_crawl(frame, relay, peer)
                            elif isinstance(frame, Ledger):
                                waiter = self._ledgers.get(frame.id)
                                if waiter is not None and not waiter.done():
                                    waiter.set_result(frame)
                            elif isinstance(frame, ReportSignature):
                                if self.settler is not None:
                                    self.settler.on_signature(frame)
                            elif isinstance(frame, Error):
                                waiter = self._ledgers.get(frame.id) if frame.id is not None else None
                                if waiter is not None and not waiter.done():
                                    waiter.set_exception(RequestFailed(frame.code, frame.message, request_id=frame.id))
                                    continue
                                log.warning("the router says: %s %s", frame.code, frame.message)
                    finally:
                        relay.lost("the router session closed")
                        await self._stop_crawls()
                finally:
                    if self._router_peer is peer:
                        self._router_peer = None
                    with contextlib.suppress(Exception):
                        await peer.close()
            except RequestFailed as err:
                log.warning("the router refused this validator: %s", err)
            except (ConnectionClosed, OSError, TimeoutError, PeerRejected) as err:
                log.info("router session ended: %s", err or type(err).__name__)
            await asyncio.sleep(delay)
            delay = min(10.0, delay * 2)

    # ---- settlement over the router session ------------------------------------------------------
    async def request_ledger(self, epoch: int, timeout: float = 30.0) -> Ledger:
        """The router's signed ledger of its epoch `epoch` (waits for the session if it is down).

        Raises:
            TimeoutError: no session, or no answer, within `timeout`.
            RequestFailed: the router refused (the epoch has not ended).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._router_peer is None:
            if loop.time() > deadline:
                raise TimeoutError("no session with the router")
            await asyncio.sleep(0.2)
        self._next_ledger += 1
        rid = self._next_ledger
        waiter: asyncio.Future[Ledger] = loop.create_future()
        self._ledgers[rid] = waiter
        try:
            await self._router_peer.send(LedgerRequest(id=rid, epoch=epoch))
            return await asyncio.wait_for(waiter, max(0.1, deadline - loop.time()))
        finally:
            self._ledgers.pop(rid, None)

    async def send_signature(self, frame: ReportSignature) -> None:
        """To the other validators, through the router (dropped if the session is down)."""
        peer = self._router_peer
        if peer is not None:
            with contextlib.suppress(ConnectionClosed):
                await peer.send(frame)

    def _reputations(self) -> dict[str, float]:
        """This validator's reputation of every worker and data node it has books of."""
        out = {p: rec.score for p, rec in self.core.workers.items() if rec.probes}
        out.update(self.nodes.scores)
        return out

    # ---- crawls -----------------------------------------------------------------------------
    def _start_crawl(self, task: CrawlTask, relay: RelayClient, peer: Peer) -> None:
        running = self.crawls.get(task.id)
        if running is not None and not running.done():
            return  # sent again (a reconnect raced it): the one running goes on
        self.crawls[task.id] = asyncio.create_task(self._crawl(task, relay, peer))

    async def _crawl(self, task: CrawlTask, relay: RelayClient, peer: Peer) -> None:
        try:
            if self.crawl_store is None:
                raise ValueError("this validator runs no crawls (no crawl store)")
            check_spec(task.spec)  # refused with one sentence; the crawl runs the spec as sent (its manifest)
            crawler = Crawler(
                task.id, task.spec, relay=relay, store=self.crawl_store, key=self.config.node_key, tls=self.tls,
                send=peer.send, nodes=self.nodes, config=self.config.crawl,
            )
            await crawler.run()
        except ValueError as err:
            log.info("crawl %d refused: %s", task.id, err)
            with contextlib.suppress(ConnectionClosed):
                await peer.send(Error(id=task.id, code=int(ErrorCode.INVALID_INPUT), message=str(err)[:1000]))
        except (ConnectionClosed, asyncio.CancelledError):
            pass  # resumed when the router sends the task again
        except Exception as err:
            log.exception("crawl %d failed", task.id)
            with contextlib.suppress(ConnectionClosed):
                await peer.send(Error(id=task.id, code=int(ErrorCode.CRAWL_FAILED), message=str(err)[:1000]))
        finally:
            self.crawls.pop(task.id, None)

    async def _stop_crawls(self) -> None:
        tasks = list(self.crawls.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _node_report(self, provider: str, score: float) -> Reputation:
        return Reputation(
            provider=provider,
            score=min(1.0, max(0.0, score)),
            probes=self.nodes.fetches.get(provider, 0),
            failures=self.nodes.failures.get(provider, 0),
        )

    async def _node_changed(self, provider: str, score: float, fetches: int, failures: int) -> None:
        await self.store.write([self.store.op_node(provider, score, fetches, failures)])
        peer = self._router_peer
        if peer is not None:
            with contextlib.suppress(ConnectionClosed):
                await peer.send(self._node_report(provider, score))

    async def _report(self, rec: WorkerRecord) -> None:
        peer = self._router_peer
        if peer is None:
            return  # sent when the session is back
        with contextlib.suppress(ConnectionClosed):
            await peer.send(rec.report())

    # ---- probing --------------------------------------------------------------------------------
    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.core.next_delay(self.config.probe_interval))
            try:
                await self.probe_round()
            except Exception:  # the top of the agent's task: a failed round is logged, the next one comes
                log.exception("probe round failed")

    async def probe_round(self) -> int:
        """Send one round of probes at once and book each answer; returns how many were booked.
        Safe to cancel; one caller at a time."""
        # both asked each round: the SDK seals to the workers it last listed (one that joined
        # since must be among them to be probed) and caps the price at the cheapest
        # coefficient it last saw (which may have left since)
        await self.client.list_models()
        workers = await self.client.list_workers(self.config.model)
        burst = self.config.probe_burst or max(1, min(8, len(workers)))
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self._probe()) for _ in range(burst)]
        self.rounds += 1
        return sum(1 for t in tasks if t.result())

    async def _probe(self) -> bool:
        texts = self.core.probe_texts(self.config.probe_inputs)
        try:
            result = await self.client.embed(texts, model=self.config.model)
        except RequestFailed as err:
            log.info("probe not answered: %s", err)  # the SDK or the router refused the answer already
            return False
        except CocoonError as err:
            log.warning("probe failed: %s", err)
            return False
        assert self.model is not None
        expected = await asyncio.to_thread(self.model.embed, texts)
        await self._book(texts, result, expected)
        return True

    async def _book(self, texts: list[str], result: EmbeddingResult, expected: np.ndarray) -> None:
        verdict = self.core.compare(expected, result.vectors)
        evidence = Evidence(
            provider=result.worker,
            inputs_hash=inputs_hash(texts),
            answer_hash=hashlib.sha256(np.ascontiguousarray(result.vectors, dtype="<f4").tobytes()).digest(),
            receipt=result.receipt,
            worker_key=result.worker_key or bytes(32),
            min_cosine=verdict.min_cosine,
            at=int(time.time()),
        )
        rec, fraud = self.core.observe(evidence, verdict)
        await self.store.write([self.store.op_probe(evidence, verdict.passed), self.store.op_worker(rec)])
        log.info(
            "probe of %s %s (cosine %.4f): reputation %.3f, %d probes, %d failed",
            rec.provider,
            "passed" if verdict.passed else "FAILED",
            verdict.min_cosine,
            rec.score,
            rec.probes,
            rec.failures,
        )
        await self._report(rec)
        if fraud:
            await self._accuse(rec)

    # ---- fraud ---------------------------------------------------------------------------------
    async def _accuse(self, rec: WorkerRecord) -> None:
        now = int(time.time())
        record = fraud_record(
            rec.provider,
            rec.recent_failures,
            key=self.config.node_key,
            model=self.config.model,
            threshold=self.core.threshold,
            at=now,
        )
        await self.store.write([self.store.op_fraud(record, now, "signed")])
        log.warning(
            "fraud by %s: record %s (%d failed probes)", rec.provider, record.hash.hex(), len(rec.recent_failures)
        )
        await self.slash(record)

    async def slash(self, record: FraudRecord) -> bool:
        """Build and sign the order slashing `record.provider`, and relay it once it holds
        Root's threshold of signatures; returns whether Root accepted it. A nonce another
        order took meanwhile is replaced by the next one (up to three tries)."""
        rp = self._root_provider()
        vset = await self.root.get_validator_set(rp)
        for _attempt in range(3):
            data = await self.root.get_root_data(rp)
            order = slash_order(
                root=self.config.root,
                target=record.provider,
                amount=self.config.slash_amount,
                record=record,
                last_nonce=data.last_slash_nonce,
            )
            quorum = Quorum(order, validators=vset.validators, threshold=vset.threshold)
            quorum.sign(self.config.node_key)
            if not quorum.complete:
                await self.store.write(
                    [
                        self.store.op_fraud_status(
                            record.hash,
                            "awaiting_quorum",
                            nonce=order.nonce,
                            detail=f"{len(quorum.signatures)} of {vset.threshold} signatures",
                        )
                    ]
                )
                log.warning(
                    "the order against %s needs %d signatures; collecting others' is not built",
                    record.provider,
                    vset.threshold,
                )
                return False
            sent = await self.root.send_relay_slash(
                rp, self.wallet, value=self.config.relay_value, order=order, signatures=quorum.signatures
            )
            txs = await sent.wait_delivered(timeout=self.config.relay_timeout)
            if txs and txs[0].success:
                await self.store.write([self.store.op_fraud_status(record.hash, "relayed", nonce=order.nonce)])
                log.warning(
                    "slashing order against %s relayed (nonce %d, %d nanoTON)",
                    record.provider,
                    order.nonce,
                    order.amount,
                )
                return True
            code = txs[0].exit_code if txs else None
            detail = f"Root refused it with exit code {code}" if txs else "the RelaySlash never left the wallet"
            await self.store.write(
                [self.store.op_fraud_status(record.hash, "refused", nonce=order.nonce, detail=detail)]
            )
            log.warning("slashing order against %s: %s", record.provider, detail)
            if code != ExitCode.NONCE_USED:
                return False
        return False
