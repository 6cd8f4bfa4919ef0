"""The whole money path on the sandbox, to the nanoTON.

A client deposits into a channel and signs 1,000 cumulative vouchers off-chain; the router
checks each, redeems three times; a 3-of-5 validator quorum posts an epoch report
allocating the revenue to 50 providers of all four roles by the split tables; every
provider claims; the client closes. Then: every provider got exactly its allocation, the
treasury its share, the client the unredeemed rest, and the pool owes nothing, so what
was paid out plus what remains equals what the client paid.
"""

from __future__ import annotations

from offchain.protocol.epoch import split_revenue
from offchain.protocol.merkle import Leaf, MerkleSumTree
from offchain.protocol.voucher import VoucherBook
from offchain.ton.blockchain import ton
from offchain.ton.transaction import find_tx
from tests.contracts.payments import PayEnv, provider_claimed, register_provider
from tests.contracts.test_reward_pool import SPLIT_C, SPLIT_D, report_for
from wrappers.channel import Channel, ChannelState
from wrappers.opcodes import Op
from wrappers.provider import Role

DEPOSIT = ton(100)
VOUCHERS = 1000
PROVIDERS_PER_ROLE = {Role.GPU: 20, Role.BANDWIDTH: 20, Role.ROUTER: 5, Role.VALIDATOR: 5}


def test_full_money_path(pay: PayEnv):
    ch, _ = pay.open_channel(DEPOSIT)
    data0 = pay.channel_data(ch)
    assert data0.state == ChannelState.OPEN and data0.deposit == DEPOSIT

    # 1,000 vouchers signed by the client, each checked by the router's book
    book = VoucherBook(ch.address, bytes(pay.client_key.verify_key), DEPOSIT)
    redeem_at = {333, 666, VOUCHERS}
    compute = data = 0
    redeemed = []
    for i in range(1, VOUCHERS + 1):
        compute += 40_000_000 + i  # an inference, priced per unit
        data += 15_000_000 + 2 * i  # a fetched page, priced per byte
        v = pay.voucher(ch, compute, data)
        assert book.accept(v) > 0
        if i in redeem_at:
            res = pay.redeem(ch, v)
            find_tx(res, from_=ch.address, to=pay.pool.address, op=Op.DEPOSIT_REVENUE, success=True)
            redeemed.append(v)
    assert len(redeemed) == 3
    pots = pay.pool_data()
    assert (pots.compute_pot, pots.data_pot) == (compute, data)

    # 50 providers of all four roles
    providers: list[tuple[int, object, object]] = []
    for role, n in PROVIDERS_PER_ROLE.items():
        for j in range(n):
            who = pay.bc.treasury(f"p-{role.name}-{j}")
            providers.append((role, who, register_provider(pay, who, role)))
    assert len(providers) == 50

    # the epoch: consumed = everything redeemed; allocations follow the split tables
    split = split_revenue(compute, data, SPLIT_C, SPLIT_D)
    per_role = {
        Role.GPU: split.gpu,
        Role.BANDWIDTH: split.bandwidth,
        Role.ROUTER: split.router,
        Role.VALIDATOR: split.validator,
    }
    leaves = []
    for role, n in PROVIDERS_PER_ROLE.items():
        members = [p for r, _, p in providers if r == role]
        share, rest = divmod(per_role[role], n)
        for k, p in enumerate(members):
            leaves.append(Leaf(p.address, role, share + (rest if k == 0 else 0)))
    tree = MerkleSumTree(leaves)
    assert tree.root_total == split.providers
    treasury_before = pay.bc.account(pay.treasury.address).balance
    res = pay.post_report(*report_for(pay, 1, compute, data, tree, signers=pay.validators[1:4]))
    fee_tx = find_tx(res, from_=pay.pool.address, to=pay.treasury.address, op=Op.RECEIVE_PROTOCOL_FEE)
    assert fee_tx.value >= split.protocol
    assert pay.bc.account(pay.treasury.address).balance - treasury_before == fee_tx.value - fee_tx.total_fees

    # every provider claims with its proof
    for i, (_role, who, p) in enumerate(providers):
        res = pay.claim(who, p, tree.proof(i))
        find_tx(res, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
        assert provider_claimed(pay, p) == leaves[i].total
    paid_to_providers = sum(provider_claimed(pay, p) for _, _, p in providers)
    assert paid_to_providers == split.providers

    # the client closes cooperatively at the last voucher's totals
    approval = pay.approval(ch, compute, data)
    body = Channel.cooperative_close_body(compute=compute, data=data, signature=approval)
    client_before = pay.bc.account(pay.client.address).balance
    res = pay.client.send(ch.address, ton("0.1"), body)
    refund = find_tx(res, from_=ch.address, to=pay.client.address, op=Op.RECEIVE_REFUND)
    final = pay.channel_data(ch)
    assert final.state == ChannelState.CLOSED and pay.bc.account(ch.address).balance == 0
    unredeemed = DEPOSIT - compute - data
    assert refund.value >= unredeemed  # plus the deposit fee the channel kept and the close value
    assert pay.bc.account(pay.client.address).balance - client_before > unredeemed

    # the ledger, to the nanoTON: providers + protocol + what the client got back == deposit
    pool = pay.pool_data()
    assert pool.owed == 0 and pool.claimed == split.providers and pool.carry == 0
    assert paid_to_providers + split.protocol + unredeemed == DEPOSIT
    assert pay.bc.account(pay.pool.address).balance >= 0
