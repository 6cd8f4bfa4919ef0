"""Epoch settlement, without I/O: routers' usage ledgers in, a payout tree and report out.

    inputs = EpochInputs(epoch=pool.epoch + 1, pool=..., compute_pot=pool.compute_pot, ...)
    result = settle(inputs)            # refuses bad ledgers, splits, allocates, builds the tree
    result.canonical()                 # compare byte for byte with the other validators
    sign_report(result.report, keys)   # (offchain.protocol.epoch) only if they are identical
    publish(result, inputs, "epochs")  # epochs/N/{inputs,result,tree}.json
    verify_published("epochs/N")       # [] or the differences; `cocoon epoch verify N`

The arithmetic is the RewardPool's own (see `_core`): the split dust is the protocol's,
a role's pro-rata dust its carry, so every report `settle` builds is one the pool accepts.
"""

from offchain.settlement._core import (
    Allocation,
    EpochResult,
    RefusedLedger,
    ResultSummary,
    RoleLine,
    RouterCredit,
    check_ledger,
    check_report,
    empty_tree,
    settle,
)
from offchain.settlement._inputs import (
    CRAWL_MODEL,
    FULL_REPUTATION_PPM,
    RELAY_MODEL,
    ROLE_NAMES,
    Cumulative,
    EpochInputs,
    Redeemed,
    RouterLedger,
    SettlementError,
    UsageRow,
    canonical_inputs,
    decode_inputs,
    encode_inputs,
    inputs_digest,
    raw_address,
    reputation_ppm,
)
from offchain.settlement._ledger import ledger_of, sign_ledger
from offchain.settlement._publish import (
    AdoptedRoot,
    adopted_root,
    find_proof,
    publish,
    read_inputs,
    result_document,
    tree_document,
    verify_published,
)

__all__ = [
    "CRAWL_MODEL",
    "FULL_REPUTATION_PPM",
    "RELAY_MODEL",
    "ROLE_NAMES",
    "AdoptedRoot",
    "Allocation",
    "Cumulative",
    "EpochInputs",
    "EpochResult",
    "Redeemed",
    "RefusedLedger",
    "ResultSummary",
    "RoleLine",
    "RouterCredit",
    "RouterLedger",
    "SettlementError",
    "UsageRow",
    "adopted_root",
    "canonical_inputs",
    "check_ledger",
    "check_report",
    "decode_inputs",
    "empty_tree",
    "encode_inputs",
    "find_proof",
    "inputs_digest",
    "ledger_of",
    "publish",
    "raw_address",
    "read_inputs",
    "reputation_ppm",
    "result_document",
    "settle",
    "sign_ledger",
    "tree_document",
    "verify_published",
]
