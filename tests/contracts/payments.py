"""A chain with the whole payment stack deployed: Root (with Channel/RewardPool codes), the
RewardPool (configured by Root), a client and a router with their keys.

Used by test_channel.py, test_reward_pool.py and test_money_path.py through the `pay`
fixture (tests/contracts/conftest.py), restored from one session snapshot per test.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from nacl.signing import SigningKey
from pytoniq_core import Address, Cell

from offchain.protocol.epoch import build_report, sign_report
from offchain.protocol.merkle import MerkleProof, MerkleSumTree
from offchain.protocol.voucher import SignedVoucher, sign_close_approval, sign_voucher
from offchain.ton.blockchain import Blockchain, Treasury, ton
from offchain.ton.provider import SandboxProvider
from offchain.ton.transaction import SendResult, find_tx
from wrappers.channel import CHANNEL_DEPOSIT_FEE, REDEEM_FEE, Channel, ChannelConfig, ChannelData
from wrappers.messages import EpochReport
from wrappers.provider import CLAIM_VALUE, Provider
from wrappers.reward_pool import EPOCH_REPORT_FEE, PoolData, PoolRoles, RewardPool, RoleAmounts
from wrappers.root import Root

CLOSE_DELAY = 86400


def key(tag: str) -> SigningKey:
    return SigningKey(hashlib.sha256(f"cocoon-test-key:{tag}".encode()).digest())


def pub(k: SigningKey) -> int:
    return int.from_bytes(bytes(k.verify_key), "big")


@dataclass
class PayEnv:
    bc: Blockchain
    root: Root
    pool: RewardPool
    owner: Treasury
    treasury: Treasury
    client: Treasury
    router: Treasury
    client_key: SigningKey
    router_key: SigningKey
    validators: list[SigningKey]
    channel_code: Cell
    provider_code: Cell

    # ---- channels ---------------------------------------------------------------------
    def channel(self, client: Treasury | None = None, router: Treasury | None = None) -> Channel:
        client = client or self.client
        router = router or self.router
        cfg = ChannelConfig(
            root=self.root.address,
            client=client.address,
            router=router.address,
            client_key=pub(self.client_key),
            router_key=pub(self.router_key),
        )
        return Channel.create_from_config(cfg, self.channel_code)

    def open_channel(self, deposit: int, channel: Channel | None = None) -> tuple[Channel, SendResult]:
        ch = channel or self.channel()
        res = self.client.send(ch.address, deposit + CHANNEL_DEPOSIT_FEE, Channel.deposit_body(), init=ch.init)
        find_tx(res, to=ch.address, success=True)
        return ch, res

    def channel_data(self, ch: Channel) -> ChannelData:
        from wrappers.channel import _channel_data

        return _channel_data(self.bc.run_get_method(ch.address, "get_channel_data").stack)

    def voucher(self, ch: Channel, compute: int, data: int, signer: SigningKey | None = None) -> SignedVoucher:
        return sign_voucher(signer or self.client_key, ch.address, compute=compute, data=data)

    def redeem(
        self, ch: Channel, v: SignedVoucher, *, by: Treasury | None = None, value: int = REDEEM_FEE
    ) -> SendResult:
        body = Channel.redeem_voucher_body(compute=v.compute, data=v.data, signature=v.signature)
        return (by or self.router).send(ch.address, value, body)

    def approval(self, ch: Channel, compute: int, data: int, signer: SigningKey | None = None) -> bytes:
        return sign_close_approval(signer or self.router_key, ch.address, compute=compute, data=data)

    # ---- the pool -----------------------------------------------------------------------
    def pool_data(self) -> PoolData:
        s = self.bc.run_get_method(self.pool.address, "get_pool_data").stack
        from wrappers.provider import stack_address

        return PoolData(stack_address(s[0]), *s[1:9])  # type: ignore[arg-type]

    def pool_roles(self) -> PoolRoles:
        """The pool's per-role books (get_pool_roles: totals, then carries, in role order)."""
        s = [int(x) for x in self.bc.run_get_method(self.pool.address, "get_pool_roles").stack]
        return PoolRoles(RoleAmounts(*s[0:4]), RoleAmounts(*s[4:8]))

    def post_report(
        self,
        report: EpochReport,
        signatures: dict[int, bytes],
        *,
        by: Treasury | None = None,
        value: int = EPOCH_REPORT_FEE,
    ) -> SendResult:
        body = RewardPool.post_epoch_report_body(report=report, signatures=signatures)
        return (by or self.owner).send(self.pool.address, value, body)

    def adopt(self, tree: MerkleSumTree, *, epoch: int = 1, compute: int = 0, data: int = 0) -> SendResult:
        """Post the epoch report for `tree`, signed by 3 of the 5 validators; it must pass."""
        report = build_report(self.pool.address, epoch, compute_consumed=compute, data_consumed=data, tree=tree)
        res = self.post_report(report, sign_report(report, self.validators[:3]))
        assert all(t.success for t in res.transactions), res.tree()
        return res

    def claim(self, who: Treasury, provider: Provider, proof: MerkleProof, *, value: int = CLAIM_VALUE) -> SendResult:
        body = Provider.claim_reward_body(cumulative=proof.cumulative, path=proof.path, proof=proof.cell)
        return who.send(provider.address, value, body)

    def provider_p(self, address: Address) -> SandboxProvider:
        return self.bc.provider(address)


__all__ = ["CLOSE_DELAY", "PayEnv", "key", "pub", "ton"]


# ---- providers on the payment stack --------------------------------------------------------


def register_provider(pay: PayEnv, who: Treasury, role: int, stake: int | None = None) -> Provider:
    """Register `who` for `role` through Root (the Provider's terms name the pool)."""
    from tests.contracts.conftest import IMAGE_HASH, MIN_STAKE, NODE_KEY
    from wrappers.provider import PROVIDER_STORAGE_RESERVE, REGISTER_FEE, ProviderConfig, Role

    stake = MIN_STAKE if stake is None else stake
    body = Root.register_provider_body(
        role=role,
        stake=stake,
        node_key=NODE_KEY,
        endpoint="wss://node.example.org",
        image_hash=IMAGE_HASH if role == Role.GPU else None,
    )
    res = who.send(pay.root.address, stake + REGISTER_FEE + PROVIDER_STORAGE_RESERVE, body)
    p = Provider.create_from_config(ProviderConfig(pay.root.address, who.address, Role(role)), pay.provider_code)
    find_tx(res, to=p.address, success=True)
    return p


def provider_claimed(pay: PayEnv, p: Provider) -> int:
    from wrappers.provider import _provider_data

    return _provider_data(pay.bc.run_get_method(p.address, "get_provider_data").stack).claimed


def fund_pool(pay: PayEnv, compute: int, data: int) -> SendResult:
    """Revenue straight into the pots (as a channel's redeem would bring it)."""
    from wrappers.channel import POOL_DEPOSIT_FEE

    body = RewardPool.deposit_revenue_body(compute=compute, data=data)
    return pay.owner.send(pay.pool.address, compute + data + POOL_DEPOSIT_FEE, body)
