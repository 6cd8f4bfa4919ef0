"""The validator's epoch settlement: at each router epoch's end, the router's signed ledger,
the pool's books and the chain's deposits in, a signed report posted and published out.

    settler = Settler(SettleConfig(epoch_seconds=3600, epochs_dir=Path("epochs")), chain=..., wallet=...,
                      root=..., key=node_key, router_key=..., store=SettleStore(path),
                      request_ledger=validator.request_ledger, send_signature=validator.send_signature)
    await settler.run()                 # forever: one `settle_epoch` per router epoch boundary

At every boundary (`catch_up`), oldest first, each usage epoch of the last
`catch_up_epochs` that is not done: not covered by an adopted report (the usage epochs of
the pool's adopted epochs, read from their published inputs) and not known to be empty
(its ledger names no work). Every honest validator computes the same list, so an epoch
blocked without a quorum is settled, as itself, once the quorum returns, and its revenue
(waiting in the pots: a report consumes only what its ledgers earned) pays its own work.

One usage epoch (`settle_epoch(usage_epoch)`), router epoch = int(clock) // epoch_seconds:

1. its `Ledger` from the router (it redeems what it earned before answering), checked
   against the router's node key (`ledger_of`); a ledger without rows: `empty`, done;
2. the pool's deposits since the last round (`RevenueDeposited` on the pool's account,
   followed by a watcher whose cursor lives in this store), each channel's router read once
   from the channel; a router's `redeemed` is everything its channels paid into the pool
   less what adopted epochs consumed on its account (`credits`);
3. the pool's books (get_pool_data / get_pool_roles / get_pool_config): the pots bound
   what the report consumes; the previous leaves from the published epoch `pool.epoch`
   (its tree must be the one the pool holds). A result that consumes nothing and grows no
   role is not posted (`waiting`: retried at the next boundary, while in the window);
4. `settle`, `sign_report` with this node key; with the pool's threshold 1 the report is
   posted from this validator's wallet; above 1, `ReportSignature`s go through the router to
   the other validators, a signature counts only for a byte-identical result (the same
   `digest()`), a validator whose digest differs is named in the log, and whoever reaches
   the quorum submits (a second submission is refused by the pool, harmlessly); the wait
   ends at `quorum_timeout` or the next boundary, whichever comes first, so that validators
   that missed a quorum try again in step; the result is kept in `unadopted/`;
5. once the pool adopted the report (its epoch and root), its `credits` are subtracted from
   their routers' deposits (once per epoch, in settle.db), then `publish` to `epochs_dir`.
   An epoch adopted without this validator (it was away, or missed the quorum) is credited
   from its published inputs before the next round, so every validator subtracts the same
   credits and computes the same bytes again.

Reputations weigh gpu and bandwidth work only with threshold 1 (this validator's books are
then the only word); with a quorum every validator settles unweighted, so that honest ones
compute the same bytes until reputations are exchanged too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from pytoniq_core import Address

from offchain.errors import CocoonError
from offchain.models import model_hash
from offchain.protocol.epoch import sign_report
from offchain.protocol.wire import Ledger, ReportSignature, wire_address
from offchain.settlement import (
    CRAWL_MODEL,
    RELAY_MODEL,
    EpochInputs,
    EpochResult,
    Redeemed,
    RouterLedger,
    SettlementError,
    ledger_of,
    publish,
    read_inputs,
    reputation_ppm,
    settle,
)
from offchain.ton.network import ChainContractProvider, ChainProvider
from offchain.ton.watcher import CursorStore, Watcher
from wrappers.channel import Channel
from wrappers.events import RevenueDeposited, default_registry
from wrappers.provider import Role
from wrappers.reward_pool import EPOCH_REPORT_FEE, RewardPool
from wrappers.root import Root

__all__ = ["SettleConfig", "SettleStore", "Settler"]

log = logging.getLogger("cocoon.validator.settle")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deposits (src TEXT PRIMARY KEY, compute INTEGER NOT NULL, data INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS channel_router (channel TEXT PRIMARY KEY, router TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS credited (router TEXT PRIMARY KEY, compute INTEGER NOT NULL, data INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS credited_epochs (epoch INTEGER PRIMARY KEY, usage_epoch INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS settled (
    usage_epoch INTEGER PRIMARY KEY, epoch INTEGER, status TEXT NOT NULL, detail TEXT NOT NULL DEFAULT ''
);
"""


class SettleStore(CursorStore):
    """settle.db: the pool watcher's cursor, every channel's deposits into the pool and its
    router, what adopted epochs credited to each router, and each usage epoch's outcome."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        self.db.executescript(_SCHEMA)

    def add_deposit(self, db: sqlite3.Connection, src: str, compute: int, data: int) -> None:
        db.execute(
            "INSERT INTO deposits (src, compute, data) VALUES (?, ?, ?) ON CONFLICT (src) DO UPDATE SET "
            "compute = compute + excluded.compute, data = data + excluded.data",
            (src, compute, data),
        )

    def unmapped_channels(self) -> list[str]:
        rows = self.db.execute(
            "SELECT src FROM deposits WHERE src NOT IN (SELECT channel FROM channel_router) ORDER BY src"
        ).fetchall()
        return [r[0] for r in rows]

    def map_channel(self, channel: str, router: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO channel_router (channel, router) VALUES (?, ?)", (channel, router))

    def redeemed(self) -> dict[str, Redeemed]:
        """Per router wallet: what its channels paid into the pool, less what was credited."""
        rows = self.db.execute(
            "SELECT m.router, SUM(d.compute), SUM(d.data) FROM deposits d JOIN channel_router m ON m.channel = d.src "
            "GROUP BY m.router"
        ).fetchall()
        credited = {r: (c, d) for r, c, d in self.db.execute("SELECT router, compute, data FROM credited")}
        out = {}
        for router, c, d in rows:
            cc, cd = credited.get(router, (0, 0))
            out[router] = Redeemed(compute=max(0, c - cc), data=max(0, d - cd))
        return out

    def credit_epoch(self, epoch: int, usage_epoch: int, credits: dict[str, tuple[int, int]]) -> bool:
        """Record adopted epoch `epoch` (of router epoch `usage_epoch`) and subtract what it
        consumed from its routers' deposits (router -> compute, data), once: False (nothing
        changed) if it was recorded before. One transaction."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if self.db.execute("SELECT 1 FROM credited_epochs WHERE epoch = ?", (epoch,)).fetchone():
                return False
            self.db.execute("INSERT INTO credited_epochs (epoch, usage_epoch) VALUES (?, ?)", (epoch, usage_epoch))
            for router, (compute, data) in credits.items():
                self.db.execute(
                    "INSERT INTO credited (router, compute, data) VALUES (?, ?, ?) ON CONFLICT (router) DO UPDATE "
                    "SET compute = compute + excluded.compute, data = data + excluded.data",
                    (router, compute, data),
                )
        return True

    def adopted_usage_epochs(self, since: int) -> set[int]:
        """The router epochs from `since` on that an adopted report settled."""
        rows = self.db.execute("SELECT usage_epoch FROM credited_epochs WHERE usage_epoch >= ?", (since,))
        return {int(r[0]) for r in rows}

    def empty_usage_epochs(self, since: int) -> set[int]:
        """The router epochs from `since` on whose ledger named no work (done for good)."""
        rows = self.db.execute("SELECT usage_epoch FROM settled WHERE usage_epoch >= ? AND status = 'empty'", (since,))
        return {int(r[0]) for r in rows}

    def credited_through(self) -> int:
        """The highest adopted epoch whose ledgers are credited (0: none)."""
        row = self.db.execute("SELECT MAX(epoch) FROM credited_epochs").fetchone()
        return int(row[0] or 0)

    def record(self, usage_epoch: int, epoch: int | None, status: str, detail: str = "") -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO settled (usage_epoch, epoch, status, detail) VALUES (?, ?, ?, ?)",
            (usage_epoch, epoch, status, detail),
        )

    def outcome(self, usage_epoch: int) -> tuple[int | None, str, str] | None:
        row = self.db.execute(
            "SELECT epoch, status, detail FROM settled WHERE usage_epoch = ?", (usage_epoch,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])


UNADOPTED_KEPT = 16  # the latest results without a quorum kept for operators (`unadopted/`)


@dataclass
class SettleConfig:
    epoch_seconds: int
    epochs_dir: Path
    grace: float = 0.5  # seconds after a boundary before asking for the ledger
    ledger_timeout: float = 30.0
    post_timeout: float = 60.0
    quorum_timeout: float = 60.0  # seconds to wait for the other validators' signatures
    catch_up_epochs: int = 64  # router epochs back that are settled if no report covers them
    post_value: int = EPOCH_REPORT_FEE


@dataclass
class _Round:
    """One report epoch's signatures: ours, and what the others sent (key -> digest, sig)."""

    digest: bytes | None = None  # our result's `digest()`, once it is in
    seen: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    named: set[bytes] = field(default_factory=set)  # validators logged as signing another result
    validators: set[int] = field(default_factory=set)  # Root's validator set (known with our result)

    def name_dissent(self, epoch: int, key: bytes, theirs: bytes) -> None:
        """Log (once per validator) that `key` signed a result other than ours."""
        ours = self.digest
        if ours is None or key in self.named or int.from_bytes(key, "big") not in self.validators:
            return
        if theirs != ours:
            self.named.add(key)
            log.warning("epoch %d: validator %s signed another result (digest %s, ours %s): not counted",
                        epoch, key.hex(), theirs.hex()[:16], ours.hex()[:16])


class Settler:
    def __init__(
        self,
        config: SettleConfig,
        *,
        chain: ChainProvider,
        wallet: Any,
        root: str,
        key: SigningKey,
        router_key: bytes,
        store: SettleStore,
        request_ledger: Callable[[int], Awaitable[Ledger]],
        send_signature: Callable[[ReportSignature], Awaitable[None]] | None = None,
        reputations: Callable[[], dict[str, float]] = dict,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.chain = chain
        self.wallet = wallet
        self.root = Root.create_from_address(Address(root))
        self.key = key
        self.public_key = bytes(key.verify_key)
        self.router_key = router_key
        self.store = store
        self.request_ledger = request_ledger
        self.send_signature = send_signature
        self.reputations = reputations
        self.clock = clock
        self._pool: RewardPool | None = None
        self._watcher: Watcher | None = None
        self._rounds: dict[int, _Round] = {}
        self._providers: dict[tuple[str, int], str] = {}
        self._settled: dict[int, tuple[EpochInputs, EpochResult]] = {}  # see `_published`

    def _open(self, contract: Any) -> ChainContractProvider:
        return ChainContractProvider(self.chain, contract.address)

    # ---- the loop -----------------------------------------------------------------------------
    def epoch(self) -> int:
        return int(self.clock()) // self.config.epoch_seconds

    async def run(self) -> None:
        """At every router epoch boundary, settle what is due (`catch_up`). Forever; cancel to stop."""
        while True:
            ended = self.epoch() - 1
            await self.catch_up(ended)
            # the next boundary after `ended`'s successor, counted from `ended` and not from the
            # clock: rounds that waited up to the boundary must not skip the epoch that just ended
            next_at = (ended + 2) * self.config.epoch_seconds + self.config.grace
            await asyncio.sleep(max(0.05, next_at - self.clock()))

    async def due(self, ended: int) -> list[int]:
        """The router epochs up to `ended` to settle, oldest first: those of the last
        `catch_up_epochs` that no adopted report covers and whose ledger is not known empty.
        Every validator computes the same list from the chain and the published epochs."""
        pool = await self.pool()
        data = await pool.get_pool_data(self._open(pool))
        self._credit_adopted(data.epoch)
        since = ended - self.config.catch_up_epochs + 1
        done = self.store.adopted_usage_epochs(since) | self.store.empty_usage_epochs(since)
        return [u for u in range(since, ended + 1) if u not in done]

    async def catch_up(self, ended: int) -> None:
        """Settle every due epoch (`due`), oldest first; one that fails is logged and tried
        again at the next boundary (the others still go)."""
        try:
            todo = await self.due(ended)
        except (SettlementError, CocoonError, ConnectionError, TimeoutError, OSError) as err:
            log.warning("epochs up to %d not settled: %s", ended, err)
            return
        for u in todo:
            if self.clock() >= (ended + 2) * self.config.epoch_seconds:
                return  # the next boundary came: start again from the oldest
            try:
                await self.settle_epoch(u)
            except (SettlementError, CocoonError, ConnectionError, TimeoutError, OSError) as err:
                log.warning("usage epoch %d not settled: %s", u, err)
                self._record(u, None, "failed", str(err))
            except Exception as err:  # the top of a task: logged, the next boundary comes
                log.exception("usage epoch %d not settled", u)
                self._record(u, None, "failed", repr(err))

    def _record(self, usage_epoch: int, epoch: int | None, status: str, detail: str = "") -> None:
        self.store.record(usage_epoch, epoch, status, detail[:1000])

    # ---- one epoch ----------------------------------------------------------------------------
    async def pool(self) -> RewardPool:
        if self._pool is None:
            params = await self.root.get_params(self._open(self.root))
            if params.reward_pool is None:
                raise SettlementError("Root names no reward pool")
            self._pool = RewardPool.create_from_address(params.reward_pool)
        return self._pool

    async def sync_deposits(self) -> None:
        """Every DepositRevenue the pool took since the last round, per channel; each new
        channel's router read from the channel."""
        pool = await self.pool()
        if self._watcher is None:
            addr = wire_address(pool.address)
            self._watcher = Watcher(self.chain, [addr], store=self.store, registry=default_registry(accounts=[addr]))

        def handle(events: list[Any], db: sqlite3.Connection) -> None:
            for e in events:
                if isinstance(e, RevenueDeposited) and e.src:
                    self.store.add_deposit(db, wire_address(e.src), e.compute, e.data)

        for tx in await self._watcher.poll():
            await self._watcher.handle(tx, handle)
        for channel in self.store.unmapped_channels():
            try:
                data = await Channel.create_from_address(Address(channel)).get_channel_data(
                    ChainContractProvider(self.chain, Address(channel))
                )
            except Exception as err:
                log.warning("channel %s paid into the pool, but its router is unknown: %s", channel, err)
                continue
            self.store.map_channel(channel, wire_address(data.router))

    async def _provider_of(self, owner: str, role: Role) -> str:
        k = (owner, int(role))
        if k not in self._providers:
            addr = await self.root.get_provider_address(self._open(self.root), Address(owner), role)
            self._providers[k] = wire_address(addr)
        return self._providers[k]

    def _published(self, epoch: int) -> tuple[EpochInputs, EpochResult]:
        """Adopted epoch `epoch`'s published inputs, settled again (the last few kept: every
        round needs the pool's current epoch, and settling a large tree is not free)."""
        if epoch not in self._settled:
            try:
                inputs = read_inputs(self.config.epochs_dir / str(epoch))
            except SettlementError as err:
                raise SettlementError(
                    f"epoch {epoch} was adopted, but its inputs are not in {self.config.epochs_dir}: {err}"
                ) from err
            self._settled[epoch] = (inputs, settle(inputs))
            for e in sorted(self._settled)[:-2]:
                del self._settled[e]
        return self._settled[epoch]

    async def _previous(self, pool_epoch: int, merkle_root: int) -> list[Any]:
        if pool_epoch == 0:
            return []
        folder = self.config.epochs_dir / str(pool_epoch)
        _, prev = self._published(pool_epoch)
        if int(prev.summary.merkle_root, 16) != merkle_root:
            self._settled.pop(pool_epoch, None)  # read it again once the folder is put right
            raise SettlementError(f"{folder} is not the tree the pool adopted for epoch {pool_epoch}")
        return prev.books()["previous"]

    def _credit_adopted(self, pool_epoch: int) -> None:
        """Credit every adopted epoch up to `pool_epoch` that this validator did not see
        adopted itself (it was away, or another quorum posted it), from the published inputs,
        so that every validator subtracts the same credits from the same deposits."""
        for e in range(self.store.credited_through() + 1, pool_epoch + 1):
            inputs, result = self._published(e)
            if self.store.credit_epoch(e, inputs.usage_epoch, _credits(result)):
                log.info("epoch %d (adopted while this validator was not settling it): ledgers credited", e)

    async def build_inputs(self, ledger: RouterLedger, threshold: int) -> EpochInputs | None:
        """The epoch's inputs from the chain and `ledger`; None if the ledger names no work."""
        await self.sync_deposits()
        pool = await self.pool()
        pp = self._open(pool)
        data = await pool.get_pool_data(pp)
        if not ledger.rows:
            return None
        roles = await pool.get_pool_roles(pp)
        config = await pool.get_pool_config(pp)
        previous = await self._previous(data.epoch, data.merkle_root)
        self._credit_adopted(data.epoch)  # before `redeemed`: what adopted epochs consumed is not backing
        validators = sorted({r.provider for r in ledger.rows if r.model == CRAWL_MODEL})
        validator_providers = {v: await self._provider_of(v, Role.VALIDATOR) for v in validators}
        models = sorted({r.model for r in ledger.rows if r.model not in (RELAY_MODEL, CRAWL_MODEL)})
        hashes = []
        for m in models:
            h = model_hash(m)
            if await self.root.get_is_model_allowed(self._open(self.root), int.from_bytes(h, "big")):
                hashes.append(h.hex())
        reputations: dict[str, int] = {}
        if threshold == 1:
            for p, score in self.reputations().items():
                with contextlib.suppress(ValueError):
                    reputations[wire_address(p)] = reputation_ppm(score)
        return EpochInputs(
            epoch=data.epoch + 1,
            pool=wire_address(pool.address),
            usage_epoch=ledger.epoch,
            compute_pot=data.compute_pot,
            data_pot=data.data_pot,
            compute_split=config.compute_split,
            data_split=config.data_split,
            role_totals=roles.totals,
            carries=roles.carries,
            previous=previous,
            ledgers=[ledger],
            redeemed=self.store.redeemed(),
            reputations=reputations,
            validator_providers=validator_providers,
            model_hashes=hashes,
        )

    async def settle_epoch(self, usage_epoch: int) -> EpochResult | None:
        """Settle router epoch `usage_epoch`; returns the adopted result, or None (nothing to
        settle, or not adopted: the log says why)."""
        frame = await asyncio.wait_for(self.request_ledger(usage_epoch), self.config.ledger_timeout)
        ledger = ledger_of(frame, self.router_key)
        pool = await self.pool()
        config = await pool.get_pool_config(self._open(pool))
        inputs = await self.build_inputs(ledger, config.threshold)
        if inputs is None:
            log.info("usage epoch %d: no work in the ledger, no report", usage_epoch)
            self._record(usage_epoch, None, "empty")
            return None
        result = settle(inputs)
        for r in result.refused:
            log.warning("epoch %d: ledger of router %s refused: %s", inputs.epoch, r.router, "; ".join(r.problems))
        s = result.summary
        grew = result.tree.root_total != sum(inputs.role_totals.as_tuple())
        if s.compute_consumed == 0 and s.data_consumed == 0 and not grew:
            log.info("usage epoch %d: nothing to consume or allocate yet (the revenue is not in the pots), "
                     "tried again at the next boundary", usage_epoch)
            self._record(usage_epoch, None, "waiting")
            return None
        _log_table(result)
        signatures = sign_report(result.report, [self.key])
        if config.threshold > 1:
            signatures = await self._quorum(result, signatures, config.threshold, set(config.validators))
            if signatures is None:
                self._record(usage_epoch, inputs.epoch, "no_quorum")
                self._keep_unadopted(result, inputs, usage_epoch)
                return None
        adopted = await self._post(result, signatures)
        if not adopted:
            self._record(usage_epoch, inputs.epoch, "refused")
            return None
        # the chain adopted it: the credit first (our books), then the files (others' view)
        self.store.credit_epoch(inputs.epoch, usage_epoch, _credits(result))
        self._record(usage_epoch, inputs.epoch, "adopted")
        try:
            publish(result, inputs, self.config.epochs_dir)
        except OSError as err:  # adopted all the same; the next epoch needs these files (it says so)
            log.error("epoch %d adopted, but publishing it to %s failed: %s", inputs.epoch, self.config.epochs_dir, err)
        log.info(
            "epoch %d adopted (usage epoch %d): root %s, total %d, protocol %d, published in %s",
            inputs.epoch, usage_epoch, result.summary.merkle_root[:16], result.tree.root_total,
            result.summary.protocol, self.config.epochs_dir / str(inputs.epoch),
        )
        return result

    def _keep_unadopted(self, result: EpochResult, inputs: EpochInputs, usage_epoch: int) -> None:
        """A result that reached no quorum, kept as a published epoch would be (under
        `unadopted/U/N/` beside this validator's store) so that an operator can compare it
        with another validator's: `cocoon epoch verify N --dir .../unadopted/U` re-checks it."""
        kept = self.store.path.parent / "unadopted"
        folder = kept / str(usage_epoch)
        try:
            publish(result, inputs, folder)
            old = sorted((p for p in kept.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
            for p in old[:-UNADOPTED_KEPT]:  # a long outage must not fill the disk
                shutil.rmtree(p, ignore_errors=True)
        except OSError as err:
            log.warning("epoch %d: could not keep the unadopted result in %s: %s", result.epoch, folder, err)
            return
        log.info("epoch %d: this validator's result is kept in %s", result.epoch, folder / str(result.epoch))

    async def _adopted(self, result: EpochResult) -> bool:
        pool = await self.pool()
        d = await pool.get_pool_data(self._open(pool))
        return d.epoch == result.epoch and f"{d.merkle_root:064x}" == result.summary.merkle_root

    async def _post(self, result: EpochResult, signatures: dict[int, bytes]) -> bool:
        """Post the report (unless the pool adopted it already) and wait for the pool."""
        if await self._adopted(result):
            return True
        pool = await self.pool()
        sent = await pool.send_post_epoch_report(
            self._open(pool), self.wallet, report=result.report, signatures=signatures, value=self.config.post_value
        )
        txs = await sent.wait_delivered(timeout=self.config.post_timeout)
        if await self._adopted(result):
            return True
        why = "never left the wallet" if not txs else f"exit code {txs[0].exit_code}"
        log.warning("epoch %d: the pool did not adopt the report (%s)", result.epoch, why)
        return False

    # ---- the quorum ---------------------------------------------------------------------------
    def on_signature(self, frame: ReportSignature) -> None:
        """Another validator's signature, relayed by the router (kept until our result is in)."""
        rnd = self._rounds.setdefault(frame.epoch, _Round())
        rnd.seen[frame.key] = (frame.digest, frame.signature)
        rnd.changed.set()
        rnd.name_dissent(frame.epoch, frame.key, frame.digest)  # also after our quorum: on record
        for e in [e for e in self._rounds if e < frame.epoch - 4]:
            self._rounds.pop(e, None)

    async def _quorum(
        self, result: EpochResult, mine: dict[int, bytes], threshold: int, validators: set[int]
    ) -> dict[int, bytes] | None:
        if self.send_signature is None:
            log.warning("epoch %d needs %d signatures and no router relays them", result.epoch, threshold)
            return None
        digest = result.digest()
        report_hash = result.report.to_cell().hash
        me = int.from_bytes(self.public_key, "big")
        rnd = self._rounds.setdefault(result.epoch, _Round())
        rnd.digest, rnd.validators = digest, validators
        await self.send_signature(
            ReportSignature(epoch=result.epoch, digest=digest, key=self.public_key, signature=mine[me])
        )
        for key, (d, _) in rnd.seen.items():  # what arrived before our result was in
            rnd.name_dissent(result.epoch, key, d)
        # never past the next boundary: there every validator settles the next router epoch,
        # and one still waiting here would sign it out of step with the others for good
        boundary = (self.epoch() + 1) * self.config.epoch_seconds
        deadline = min(self.clock() + self.config.quorum_timeout, boundary)
        while True:
            good = dict(mine)
            for key, (d, sig) in rnd.seen.items():
                k = int.from_bytes(key, "big")
                if k not in validators:
                    continue
                if d != digest:
                    rnd.name_dissent(result.epoch, key, d)
                    continue
                try:
                    VerifyKey(key).verify(report_hash, sig)
                except BadSignatureError:
                    log.warning("epoch %d: validator %s's signature does not verify", result.epoch, key.hex())
                    continue
                good[k] = sig
            if len(good) >= threshold:
                log.info("epoch %d: quorum of %d signatures (of %d needed)", result.epoch, len(good), threshold)
                return good
            if await self._adopted(result):
                return good  # another validator reached the quorum and posted
            left = deadline - self.clock()
            if left <= 0:
                log.warning(
                    "epoch %d: %d of %d signatures by the %s; no report", result.epoch, len(good), threshold,
                    "next boundary" if deadline == boundary else f"quorum timeout ({self.config.quorum_timeout:.0f} s)",
                )
                return None
            rnd.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rnd.changed.wait(), min(1.0, left))


def _credits(result: EpochResult) -> dict[str, tuple[int, int]]:
    """What an adopted epoch consumed on each router's account (`RouterCredit`s): its
    channels' deposits that no longer back a later ledger."""
    return {wire_address(c.router): (c.compute, c.data) for c in result.summary.credits}


def _log_table(result: EpochResult) -> None:
    log.info(
        "epoch %d: consumed compute %d + data %d, protocol %d",
        result.epoch, result.summary.compute_consumed, result.summary.data_consumed, result.summary.protocol,
    )
    log.info("%-10s %14s %12s %14s %14s %10s %5s", "role", "share", "carry in", "allocated", "carry out", "weight", "n")
    for line in result.roles:
        log.info(
            "%-10s %14d %12d %14d %14d %10d %5d",
            line.name, line.share, line.carry_in, line.allocated, line.dust, line.weight, line.providers,
        )
