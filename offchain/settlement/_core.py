"""The deterministic settlement of one epoch: ledgers checked, revenue split, the tree built.

    result = settle(inputs)              # EpochResult: cumulative totals, tree, report, table
    result.canonical()                   # the bytes two validators compare before signing
    next_inputs = EpochInputs(epoch=inputs.epoch + 1, ..., **result.books())

What the report consumes is what the epoch's ledgers earned, not the whole pots: for each
router, its accepted ledger's earnings (gpu rows from the compute pot, relay and crawl rows
from the data pot); a router whose ledger is refused forfeits what its channels redeemed
and nothing backs (`redeemed`), which goes into the split all the same (to the other
routers' work, or the roles' carries). Each capped by its pot. Revenue whose work a later
ledger names (a cooperative close pays before the work's epoch ends; an epoch blocked
without a quorum) waits in the pots for that ledger, so every epoch pays its own work.
`EpochResult.credits` says per router what was consumed: the validator subtracts it from
the router's deposits.

The arithmetic is the RewardPool's (contracts/reward_pool.tolk, PostEpochReport):

1. The consumed revenue is split by the pool's tables with `split_revenue`: gpu from the
   compute pot, bandwidth from the data pot, router and validator from both, each rounded
   down per role and pot; that rounding dust is the protocol's (the pool pays it to the
   treasury with the report: nothing to do here but agree on the figure).
2. Each role may grow by its share plus its carry (what earlier epochs allocated to the role
   and left out of its subtree); whatever it does not grow by is its carry again
   (`roleCarry`). The pool has no way to hand a role's unallocated nanoTON to the protocol
   or to another role, so the dust of the pro-rata split inside a role stays with the role:
   the core offers each role `share + carry`, pays each provider
   floor(available * weight / total weight), and the rest is the role's new carry, which
   the next epoch offers the role again. A role without work this epoch carries it all.
3. Weights are integers: gpu compute units served x reputation (ppm), bandwidth data units
   relayed x reputation (ppm), routers the revenue they routed (`earned` of their ledger),
   validators pages crawled plus verifications.

A provider's leaf holds its cumulative total (previous + this epoch); a leaf is in the tree
when that total is above zero, so earlier earners persist and a provider that never earned
is absent. Leaves are ordered by role, then raw address.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
from pytoniq_core import Address

from offchain.models import model_hash
from offchain.protocol.epoch import BASIS_POINTS, RevenueSplit, build_report, split_revenue
from offchain.protocol.merkle import _EMPTY, MAX_TOTAL, Leaf, MerkleProof, MerkleSumTree, Role, _node_hash
from offchain.settlement._inputs import (
    CRAWL_MODEL,
    FULL_REPUTATION_PPM,
    RELAY_MODEL,
    ROLE_NAMES,
    Cumulative,
    EpochInputs,
    RouterLedger,
    SettlementError,
    UsageRow,
    canonical_inputs,
    inputs_digest,
    raw_address,
)
from wrappers.messages import ComputeSplit, DataSplit, EpochReport
from wrappers.reward_pool import RoleAmounts

__all__ = [
    "Allocation",
    "EpochResult",
    "RefusedLedger",
    "ResultSummary",
    "RoleLine",
    "RouterCredit",
    "check_ledger",
    "check_report",
    "empty_tree",
    "settle",
]

_USAGE_FIELDS = ("units", "requests", "failures", "latency_ms", "earned")
_COINS_LIMIT = MAX_TOTAL


class RoleLine(msgspec.Struct, frozen=True):
    """One role's epoch: `share` (its split of the consumed revenue) + `carry_in` (the
    pool's carry) = `available` = `allocated` (into its subtree) + `dust` (its new carry)."""

    role: int
    name: str
    share: int
    carry_in: int
    available: int
    weight: int
    allocated: int
    dust: int
    providers: int  # leaves of the role that grew this epoch


class Allocation(msgspec.Struct, frozen=True):
    """A leaf of the new tree: what the provider got this epoch and its cumulative total."""

    provider: str
    role: int
    amount: int
    cumulative: int


class RouterCredit(msgspec.Struct, frozen=True):
    """What the report consumed on account of one router's ledger (nanoTON per pot)."""

    router: str
    compute: int
    data: int


class RefusedLedger(msgspec.Struct, frozen=True):
    router: str
    provider: str
    problems: list[str]


class ResultSummary(msgspec.Struct, frozen=True):
    """What validators compare byte for byte (`EpochResult.canonical`)."""

    epoch: int
    pool: str
    inputs_digest: str  # hex sha256 of the canonical inputs
    compute_consumed: int
    data_consumed: int
    protocol: int  # the split's rounding dust and protocol share, paid by the pool at once
    merkle_root: str  # hex
    root_total: int
    report_hash: str  # hex: the EpochReport cell's hash, what validators sign
    roles: list[RoleLine]
    allocations: list[Allocation]  # the tree's leaves, in its order
    refused: list[RefusedLedger]
    credits: list[RouterCredit]  # per router (sorted): what was consumed on its account


class _EmptySumTree(MerkleSumTree):
    """A tree with no leaf (no one has ever earned): the root node over four empty role
    subtrees, sums 0. The pool takes it like any other (MerkleSumTree wants a leaf)."""

    def __init__(self) -> None:  # the parent's fields, for its methods
        self.leaves = []
        self._place = []
        self.role_levels = [[] for _ in Role.ALL]
        self._root_children = [(*_EMPTY, 0) for _ in Role.ALL]
        self.role_totals = (0, 0, 0, 0)
        self.root_hash, _depth, self.root_total = _node_hash(self._root_children)


def empty_tree() -> MerkleSumTree:
    return _EmptySumTree()


@dataclass(frozen=True)
class EpochResult:
    summary: ResultSummary
    split: RevenueSplit
    tree: MerkleSumTree
    report: EpochReport

    @property
    def epoch(self) -> int:
        return self.summary.epoch

    @property
    def allocations(self) -> list[Allocation]:
        return self.summary.allocations

    @property
    def roles(self) -> list[RoleLine]:
        return self.summary.roles

    @property
    def refused(self) -> list[RefusedLedger]:
        return self.summary.refused

    @property
    def cumulative(self) -> dict[tuple[str, int], int]:
        """(raw provider, role) -> new cumulative total, for every leaf."""
        return {(a.provider, a.role): a.cumulative for a in self.allocations}

    @property
    def role_totals(self) -> RoleAmounts:
        """The new tree's role sums: the pool's `roles.totals` once the report is adopted."""
        return RoleAmounts(*self.tree.role_totals)

    @property
    def carries(self) -> RoleAmounts:
        """Each role's new carry: the pool's `roles.carries` once the report is adopted."""
        return RoleAmounts(*(line.dust for line in self.roles))

    def books(self) -> dict[str, Any]:
        """`previous`, `role_totals` and `carries` for the next epoch's EpochInputs."""
        previous = [Cumulative(a.provider, a.role, a.cumulative) for a in self.allocations]
        return {"previous": previous, "role_totals": self.role_totals, "carries": self.carries}

    def canonical(self) -> bytes:
        """The result as canonical bytes (compact JSON): equal iff the results are equal."""
        return msgspec.json.encode(self.summary, order="deterministic")

    def digest(self) -> bytes:
        return hashlib.sha256(self.canonical()).digest()

    def proof(self, provider: Address | str, role: int) -> MerkleProof:
        a = provider if isinstance(provider, Address) else Address(provider)
        return self.tree.proof(self.tree.index_of(a, role))


# ---- ledgers ---------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _kind(model: str) -> int:
    if model == RELAY_MODEL:
        return Role.BANDWIDTH
    if model == CRAWL_MODEL:
        return Role.VALIDATOR
    return Role.GPU


def check_ledger(
    ledger: RouterLedger,
    redeemed_compute: int,
    redeemed_data: int,
    *,
    model_hashes: Collection[str] | None = None,
) -> list[str]:
    """What is wrong with a router's ledger, one sentence each; [] if nothing.

    Refused: a ledger whose gpu rows earned more than its channels redeemed on chain as
    compute in the epoch, or whose relay and crawl rows earned more than they redeemed as
    data; a malformed address; a row of another epoch than the ledger's, a negative or
    non-integer figure, a duplicate row, a gpu model outside `model_hashes` (hex sha256 of
    the names, when given); a provider named for work of two roles (a Provider has one).
    """
    if not isinstance(ledger, RouterLedger):
        return [f"not a router ledger: {type(ledger).__name__}"]
    problems: list[str] = []
    for what, value in (("router", ledger.router), ("router Provider", ledger.provider)):
        try:
            raw_address(value)
        except ValueError:
            problems.append(f"its {what} {value!r} is not an address")
    if not _is_int(ledger.epoch) or ledger.epoch < 0:
        problems.append(f"its epoch {ledger.epoch!r} is not a whole number")
    hashes = None if model_hashes is None else {h.lower() for h in model_hashes}
    seen: set[tuple[str, str]] = set()
    roles_of: dict[str, set[int]] = defaultdict(set)
    earned = {Role.GPU: 0, Role.BANDWIDTH: 0, Role.VALIDATOR: 0}
    rows = ledger.rows if isinstance(ledger.rows, list) else []
    if not isinstance(ledger.rows, list):
        problems.append("its rows are not a list")
    for i, row in enumerate(rows):
        if not isinstance(row, UsageRow):
            problems.append(f"row {i} is not a usage row")
            continue
        if not isinstance(row.model, str) or not row.model:
            problems.append(f"row {i}: model {row.model!r} is not a model name")
            continue
        try:
            provider = raw_address(row.provider)
        except ValueError:
            problems.append(f"row {i} ({row.model}): provider {row.provider!r} is not an address")
            continue
        where = f"row {i} ({provider}, {row.model})"
        if row.epoch != ledger.epoch:
            problems.append(f"{where}: epoch {row.epoch!r}, not the ledger's {ledger.epoch!r}")
        good = True
        for name in _USAGE_FIELDS:
            v = getattr(row, name)
            if not _is_int(v):
                problems.append(f"{where}: {name} {v!r} is not an integer")
                good = False
            elif v < 0:
                problems.append(f"{where}: {name} {v} is negative")
                good = False
        kind = _kind(row.model)
        if kind == Role.GPU and hashes is not None and model_hash(row.model).hex() not in hashes:
            problems.append(f"{where}: unknown model {row.model!r} (not in Root's model allowlist)")
        if (provider, row.model) in seen:
            problems.append(f"{where}: a second row for this provider and model")
        seen.add((provider, row.model))
        roles_of[provider].add(kind)
        if good:
            earned[kind] += row.earned
    for provider, kinds in sorted(roles_of.items()):
        if len(kinds) > 1:
            names = " and ".join(ROLE_NAMES[k] for k in sorted(kinds))
            problems.append(f"provider {provider} is named for {names} work (a Provider has one role)")
    compute, data = earned[Role.GPU], earned[Role.BANDWIDTH] + earned[Role.VALIDATOR]
    if compute > redeemed_compute:
        problems.append(
            f"its gpu rows earned {compute} nanoTON but its channels redeemed only {redeemed_compute} "
            "nanoTON of compute on chain in the epoch"
        )
    if data > redeemed_data:
        problems.append(
            f"its relay and crawl rows earned {data} nanoTON but its channels redeemed only {redeemed_data} "
            "nanoTON of data on chain in the epoch"
        )
    return problems


# ---- the inputs' own soundness ----------------------------------------------------------------


def _check_amount(value: Any, what: str, limit: int = _COINS_LIMIT) -> None:
    if not _is_int(value) or not 0 <= value <= limit:
        raise SettlementError(f"{what} must be a whole number in 0..{limit}, got {value!r}")


def _check_inputs(inp: EpochInputs) -> None:
    _check_amount(inp.epoch, "epoch", 2**32 - 1)
    if inp.epoch < 1:
        raise SettlementError("epoch must be at least 1 (the pool's first report is epoch 1)")
    _check_amount(inp.usage_epoch, "usage_epoch", 2**63 - 1)
    _check_amount(inp.compute_pot, "compute_pot")
    _check_amount(inp.data_pot, "data_pot")
    for name, table, roles in (
        ("compute_split", inp.compute_split, ("gpu", "router", "validator", "protocol")),
        ("data_split", inp.data_split, ("bandwidth", "router", "validator", "protocol")),
    ):
        if not isinstance(table, ComputeSplit | DataSplit):
            raise SettlementError(f"{name} is not a split table")
        parts = [getattr(table, r) for r in roles]
        for r, v in zip(roles, parts, strict=True):
            _check_amount(v, f"{name}.{r}", BASIS_POINTS)
        if sum(parts) != BASIS_POINTS:
            raise SettlementError(f"{name} sums to {sum(parts)} basis points, not {BASIS_POINTS} (as Root requires)")
    for name, books in (("role_totals", inp.role_totals), ("carries", inp.carries)):
        if not isinstance(books, RoleAmounts):
            raise SettlementError(f"{name} is not an amount per role")
        for r, v in zip(ROLE_NAMES, books.as_tuple(), strict=True):
            _check_amount(v, f"{name}.{r}")
    sums = [0, 0, 0, 0]
    seen: set[tuple[str, int]] = set()
    for c in inp.previous:
        if not _is_int(c.role) or c.role not in Role.ALL:
            raise SettlementError(f"previous cumulative total of {c.provider}: role {c.role!r} is not a provider role")
        _check_amount(c.total, f"previous cumulative total of {c.provider} ({ROLE_NAMES[c.role]})")
        if (c.provider, c.role) in seen:
            raise SettlementError(f"previous cumulative totals name {c.provider} ({ROLE_NAMES[c.role]}) twice")
        seen.add((c.provider, c.role))
        sums[c.role] += c.total
    for r in Role.ALL:
        if sums[r] != inp.role_totals.as_tuple()[r]:
            raise SettlementError(
                f"previous cumulative totals of the {ROLE_NAMES[r]} role sum to {sums[r]}, but the pool's "
                f"{ROLE_NAMES[r]} total is {inp.role_totals.as_tuple()[r]}"
            )
    for router, red in inp.redeemed.items():
        _check_amount(red.compute, f"redeemed compute of {router}")
        _check_amount(red.data, f"redeemed data of {router}")
    _check_amount(inp.default_reputation_ppm, "default_reputation_ppm", FULL_REPUTATION_PPM)
    for p, ppm in inp.reputations.items():
        _check_amount(ppm, f"reputation of {p} (ppm)", FULL_REPUTATION_PPM)
    for v, n in inp.verifications.items():
        _check_amount(n, f"verifications of {v}", 2**63 - 1)


# ---- the pool's acceptance, offline ---------------------------------------------------------


def check_report(
    report: EpochReport,
    *,
    role_totals: RoleAmounts,
    carries: RoleAmounts,
    compute_split: ComputeSplit,
    data_split: DataSplit,
) -> tuple[list[str], RoleAmounts]:
    """The RewardPool's PostEpochReport checks on the tree (signatures, pots and the epoch
    number aside), against its books before the report: (problems, the carries it would
    keep). The root node must be a Merkle-proof cell of `merkle_root` whose four sums add
    up to `root_total`; each role's sum may not fall nor grow by more than its share plus
    its carry."""
    node = report.root_node
    try:
        s = node.begin_parse()
        tag, h = s.load_uint(8), s.load_bytes(32)
        inner = node.refs[0]
        ns = inner.begin_parse()
        sums = [ns.load_uint(128) for _ in range(4)][::-1]  # stored last child first
    except Exception as err:
        return [f"the root node does not parse ({err})"], carries
    problems = []
    if node.type_ != 3 or tag != 3 or int.from_bytes(h, "big") != report.merkle_root:
        problems.append("the root node is not a Merkle-proof cell of the report's merkle_root")
    if inner.get_hash(0) != h:
        problems.append("the root node's Merkle-proof hash is not its content's")
    if sum(sums) != report.root_total:
        problems.append(f"the root node's sums add up to {sum(sums)}, not root_total {report.root_total}")
    split = split_revenue(report.compute_consumed, report.data_consumed, compute_split, data_split)
    new = []
    for r in Role.ALL:
        growth = sums[r] - role_totals.as_tuple()[r]
        allowance = split.of(r) + carries.as_tuple()[r]
        if not 0 <= growth <= allowance:
            problems.append(f"the {ROLE_NAMES[r]} total grows by {growth}, outside 0..{allowance} (BAD_ROLE_TOTAL)")
        new.append(allowance - growth)
    return problems, RoleAmounts(*new)


# ---- settle -------------------------------------------------------------------------------------


def _pro_rata(available: int, weights: dict[str, int]) -> dict[str, int]:
    total = sum(weights.values())
    if total == 0:
        return {}
    return {p: available * w // total for p, w in weights.items() if w > 0}


def _accepted_ledgers(inp: EpochInputs) -> tuple[list[RouterLedger], list[RefusedLedger]]:
    routers: dict[str, int] = defaultdict(int)
    providers: dict[str, int] = defaultdict(int)
    for g in inp.ledgers:
        routers[g.router] += 1
        providers[g.provider] += 1
    accepted, refused = [], []
    for g in inp.ledgers:
        problems: list[str] = []
        if routers[g.router] > 1:
            problems.append(f"router {g.router} sent {routers[g.router]} ledgers for the epoch")
        if providers[g.provider] > 1:
            problems.append(f"{providers[g.provider]} ledgers name router Provider {g.provider}")
        if g.epoch != inp.usage_epoch:
            problems.append(f"a ledger of usage epoch {g.epoch!r}, not {inp.usage_epoch}")
        red = inp.redeemed.get(g.router)
        problems += check_ledger(
            g, red.compute if red else 0, red.data if red else 0, model_hashes=inp.model_hashes
        )
        if problems:
            refused.append(RefusedLedger(str(g.router), str(g.provider), problems))
        else:
            accepted.append(g)
    return accepted, refused


def _weights(inp: EpochInputs, ledgers: Iterable[RouterLedger]) -> list[dict[str, int]]:
    work: list[dict[str, int]] = [defaultdict(int) for _ in Role.ALL]
    for g in ledgers:
        for row in g.rows:
            kind = _kind(row.model)
            provider = row.provider
            if kind == Role.VALIDATOR:
                provider = inp.validator_providers.get(provider, provider)
            work[kind][provider] += row.units
        work[Role.ROUTER][g.provider] += sum(row.earned for row in g.rows)
    for v, n in inp.verifications.items():
        work[Role.VALIDATOR][inp.validator_providers.get(v, v)] += n
    for r in (Role.GPU, Role.BANDWIDTH):
        for p in work[r]:
            work[r][p] *= inp.reputations.get(p, inp.default_reputation_ppm)
    return [{p: w for p, w in sorted(ws.items()) if w > 0} for ws in work]


def _consumption(
    inp: EpochInputs, accepted: list[RouterLedger], refused: list[RefusedLedger]
) -> tuple[int, int, list[RouterCredit]]:
    """(compute consumed, data consumed, per-router credits): an accepted ledger's earnings,
    a refused router's unbacked redeemed revenue; the totals capped by the pots (consistent
    books never need the cap: the pots hold at least every router's redeemed revenue)."""
    credits: dict[str, list[int]] = {}
    for g in accepted:
        c = credits.setdefault(g.router, [0, 0])
        for row in g.rows:
            c[0 if _kind(row.model) == Role.GPU else 1] += row.earned
    for r in refused:
        if r.router in credits:  # pragma: no cover -- a router's ledgers are all refused or one accepted
            continue
        red = inp.redeemed.get(r.router)
        credits[r.router] = [red.compute, red.data] if red else [0, 0]
    out = [RouterCredit(k, c, d) for k, (c, d) in sorted(credits.items()) if c or d]
    compute = min(inp.compute_pot, sum(x.compute for x in out))
    data = min(inp.data_pot, sum(x.data for x in out))
    return compute, data, out


def settle(inputs: EpochInputs) -> EpochResult:
    """Settle one epoch: refuse bad ledgers, split, allocate pro rata, build the tree and
    the report. The same inputs (in any order) give the same result, byte for byte.

    Raises:
        SettlementError: the inputs themselves are not sound (see `_check_inputs`): a split
            table not summing to 10,000, previous totals that are not the pool's, ...
    """
    inp = canonical_inputs(inputs)
    _check_inputs(inp)
    accepted, refused = _accepted_ledgers(inp)
    weights = _weights(inp, accepted)
    compute_consumed, data_consumed, credits = _consumption(inp, accepted, refused)
    split = split_revenue(compute_consumed, data_consumed, inp.compute_split, inp.data_split)

    cumulative: dict[tuple[int, str], int] = {(c.role, c.provider): c.total for c in inp.previous}
    amounts: dict[tuple[int, str], int] = {}
    lines = []
    for r in Role.ALL:
        carry_in = inp.carries.as_tuple()[r]
        available = split.of(r) + carry_in
        paid = _pro_rata(available, weights[r])
        for p, amount in paid.items():
            amounts[(r, p)] = amount
            cumulative[(r, p)] = cumulative.get((r, p), 0) + amount
        allocated = sum(paid.values())
        lines.append(
            RoleLine(
                role=r,
                name=ROLE_NAMES[r],
                share=split.of(r),
                carry_in=carry_in,
                available=available,
                weight=sum(weights[r].values()),
                allocated=allocated,
                dust=available - allocated,
                providers=sum(1 for a in paid.values() if a > 0),
            )
        )
    keys = sorted(k for k, total in cumulative.items() if total > 0)
    leaves = [Leaf(Address(p), r, cumulative[(r, p)]) for r, p in keys]
    tree = MerkleSumTree(leaves) if leaves else empty_tree()
    report = build_report(
        Address(inp.pool), inp.epoch, compute_consumed=compute_consumed, data_consumed=data_consumed, tree=tree
    )
    problems, carries = check_report(
        report,
        role_totals=inp.role_totals,
        carries=inp.carries,
        compute_split=inp.compute_split,
        data_split=inp.data_split,
    )
    if problems or carries.as_tuple() != tuple(line.dust for line in lines):  # pragma: no cover -- a bug here
        raise AssertionError(f"the settlement built a report the pool would refuse: {problems}")
    summary = ResultSummary(
        epoch=inp.epoch,
        pool=inp.pool,
        inputs_digest=inputs_digest(inp).hex(),
        compute_consumed=compute_consumed,
        data_consumed=data_consumed,
        protocol=split.protocol,
        merkle_root=tree.root_hash.hex(),
        root_total=tree.root_total,
        report_hash=report.to_cell().hash.hex(),
        roles=lines,
        allocations=[Allocation(p, r, amounts.get((r, p), 0), cumulative[(r, p)]) for r, p in keys],
        refused=refused,
        credits=credits,
    )
    return EpochResult(summary=summary, split=split, tree=tree, report=report)
