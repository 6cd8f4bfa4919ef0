"""Epoch reports: the split of consumed revenue, the payout tree, and validator signatures.

The RewardPool accepts a report only with `threshold` distinct validator signatures over
the hash of the `EpochReport` cell, and only if each role's total (the tree root's sum for
that role subtree, read off the report's `root_node`) grows by at most what the epoch
allocated to that role plus what earlier epochs left it. `split_revenue` is the same
integer arithmetic as the contract's (floor per role and pot: gpu from compute, bandwidth
from data, router and validator from both; all dust to the protocol), so validators and
anyone re-checking a published tree reach the same per-role amounts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from pytoniq_core import Address

from offchain.errors import InvalidSignature
from offchain.protocol.merkle import MerkleSumTree
from wrappers.messages import ComputeSplit, DataSplit, EpochReport

__all__ = ["BASIS_POINTS", "RevenueSplit", "build_report", "sign_report", "split_revenue", "verify_report_signatures"]

BASIS_POINTS = 10_000


@dataclass(frozen=True)
class RevenueSplit:
    """Who gets what of one epoch's consumed revenue, in nanoTON."""

    gpu: int
    bandwidth: int
    router: int
    validator: int
    protocol: int

    @property
    def providers(self) -> int:
        """What the tree may grow by: everything but the protocol's part."""
        return self.gpu + self.bandwidth + self.router + self.validator

    def of(self, role: int) -> int:
        """What the role's subtree may grow by (`role` as `Role` numbers it)."""
        return (self.gpu, self.bandwidth, self.router, self.validator)[role]


def split_revenue(compute: int, data: int, compute_split: ComputeSplit, data_split: DataSplit) -> RevenueSplit:
    def part(amount: int, bps: int) -> int:
        return amount * bps // BASIS_POINTS

    gpu = part(compute, compute_split.gpu)
    c_router = part(compute, compute_split.router)
    c_validator = part(compute, compute_split.validator)
    bandwidth = part(data, data_split.bandwidth)
    d_router = part(data, data_split.router)
    d_validator = part(data, data_split.validator)
    protocol = (compute - gpu - c_router - c_validator) + (data - bandwidth - d_router - d_validator)
    return RevenueSplit(gpu, bandwidth, c_router + d_router, c_validator + d_validator, protocol)


def build_report(
    pool: Address, epoch: int, *, compute_consumed: int, data_consumed: int, tree: MerkleSumTree
) -> EpochReport:
    return EpochReport(
        pool=pool,
        epoch=epoch,
        compute_consumed=compute_consumed,
        data_consumed=data_consumed,
        merkle_root=int.from_bytes(tree.root_hash, "big"),
        root_total=tree.root_total,
        root_node=tree.root_node_proof(),
    )


def sign_report(report: EpochReport, keys: Iterable[SigningKey]) -> dict[int, bytes]:
    """Signatures keyed by the validator's public key (as the pool's map expects)."""
    digest = report.to_cell().hash
    return {int.from_bytes(bytes(k.verify_key), "big"): k.sign(digest).signature for k in keys}


def verify_report_signatures(report: EpochReport, signatures: Mapping[int, bytes], validators: Iterable[int]) -> int:
    """Count valid signatures from the validator set; raise on a foreign key or a bad signature."""
    allowed = set(validators)
    digest = report.to_cell().hash
    for key, sig in signatures.items():
        if key not in allowed:
            raise InvalidSignature(f"signature from a key outside the validator set: {key:064x}")
        try:
            VerifyKey(key.to_bytes(32, "big")).verify(digest, sig)
        except BadSignatureError as err:
            raise InvalidSignature(f"bad signature from validator {key:064x}") from err
    return len(signatures)
