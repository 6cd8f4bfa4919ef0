"""Channel: deploy with a first deposit (terms from Root), top-ups, voucher redemption to
the RewardPool, the unilateral and cooperative closes, Root's answers to RequestChannelTerms,
the bounce paths; plus a property test over random deposit/voucher/redeem/close sequences."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytoniq_core import Address, begin_cell

from offchain.ton.blockchain import Treasury, ton
from offchain.ton.build import code_cell
from offchain.ton.messages import message_relaxed
from offchain.ton.transaction import SendResult, find_tx, raw
from tests.contracts.conftest import assert_conserved, body_of
from tests.contracts.payments import CLOSE_DELAY, PayEnv, pub
from wrappers.channel import (
    CHANNEL_DEPOSIT_FEE,
    CHANNEL_TERMS_FEE,
    POOL_DEPOSIT_FEE,
    REDEEM_FEE,
    Channel,
    ChannelConfig,
    ChannelState,
)
from wrappers.errors import ExitCode
from wrappers.messages import ChannelTerms, DepositRevenue, RequestChannelTerms
from wrappers.opcodes import Op
from wrappers.reward_pool import RewardPool, RewardPoolConfig
from wrappers.root import Root, RootConfig

# Telegram's Cocoon (Tolk build, same gas convention): client top-up and proxy-signed charge
GAS_GOAL_TOP_UP = 18_178
GAS_GOAL_REDEEM = 11_858
DEPOSIT = ton(10)
CLOSE_VALUE = ton("0.05")  # what the wrapper attaches to the close messages


# ---- helpers -------------------------------------------------------------------------------


def balances(pay: PayEnv, *who: Address | Treasury | Channel | Root | RewardPool) -> dict[str, int]:
    out = {}
    for w in who:
        a = raw(w if isinstance(w, Address) else w.address)
        assert a is not None
        out[a] = pay.bc.account(a).balance
    return out


def balance(pay: PayEnv, who: Address | Treasury | Channel | Root | RewardPool) -> int:
    return pay.bc.account(who if isinstance(who, Address) else who.address).balance


def everyone(pay: PayEnv, ch: Channel, *more) -> dict[str, int]:
    return balances(pay, pay.client, pay.router, ch, pay.root, pay.pool, *more)


def rejected(res: SendResult, to: Address, code: int) -> None:
    """`to` refused the message with `code` and its value went back to the sender."""
    tx = find_tx(res, to=to, exit_code=code)
    back = find_tx(res, from_=to, bounced=True)
    assert back.dst == tx.src and back.value > 0


def merged(*results: SendResult) -> SendResult:
    """Several traces as one, for a conservation check over a whole sequence."""
    return SendResult([t for r in results for t in r.transactions], [], [])


def pots(pay: PayEnv) -> tuple[int, int]:
    p = pay.pool_data()
    return p.compute_pot, p.data_pot


def start_close(pay: PayEnv, ch: Channel, by: Treasury | None = None) -> SendResult:
    return (by or pay.client).send(ch.address, CLOSE_VALUE, Channel.start_close_body())


def finish_close(pay: PayEnv, ch: Channel, by: Treasury | None = None) -> SendResult:
    return (by or pay.client).send(ch.address, CLOSE_VALUE, Channel.finish_close_body())


def coop_close(pay: PayEnv, ch: Channel, compute: int, data: int, signature: bytes | None = None) -> SendResult:
    sig = signature if signature is not None else pay.approval(ch, compute, data)
    body = Channel.cooperative_close_body(compute=compute, data=data, signature=sig)
    return pay.client.send(ch.address, CLOSE_VALUE, body)


def deposit(pay: PayEnv, ch: Channel, value: int, by: Treasury | None = None) -> SendResult:
    return (by or pay.client).send(ch.address, value, Channel.deposit_body())


def config_of(pay: PayEnv, *, root: Address | None = None, client: Treasury | None = None) -> ChannelConfig:
    return ChannelConfig(
        root=root or pay.root.address,
        client=(client or pay.client).address,
        router=pay.router.address,
        client_key=pub(pay.client_key),
        router_key=pub(pay.router_key),
    )


def channel_under(pay: PayEnv, root: Address) -> Channel:
    """The client's channel with the router whose parties name `root` (a stand-in Root)."""
    return Channel.create_from_config(config_of(pay, root=root), pay.channel_code)


def open_under_fake_root(pay: PayEnv, pool: Address, amount: int = DEPOSIT) -> tuple[Channel, Treasury]:
    """A channel whose 'Root' is a plain wallet, configured by hand with `pool` as its pool."""
    fake = pay.bc.treasury("fake-root")
    ch = channel_under(pay, fake.address)
    res = pay.client.send(ch.address, amount + CHANNEL_DEPOSIT_FEE, Channel.deposit_body(), init=ch.init)
    find_tx(res, from_=ch.address, to=fake.address, op=Op.REQUEST_CHANNEL_TERMS, success=True)
    assert pay.channel_data(ch).state == ChannelState.UNCONFIGURED
    terms = ChannelTerms(query_id=0, close_delay=CLOSE_DELAY, reward_pool=pool).to_cell()
    res = pay.bc.send_internal(src=fake.address, to=ch.address, value=ton("0.01"), body=terms)
    find_tx(res, to=ch.address, op=Op.CHANNEL_TERMS, success=True)
    assert pay.channel_data(ch).state == ChannelState.OPEN
    return ch, fake


def root_without_pool(pay: PayEnv) -> Root:
    """A second Root with the same child codes but no reward pool."""
    config = RootConfig(
        owner=pay.owner.address,
        treasury=pay.treasury.address,
        provider_code=pay.provider_code,
        channel_code=pay.channel_code,
        reward_pool_code=code_cell("RewardPool"),
        validators=[pub(k) for k in pay.validators],
        threshold=3,
        close_delay=3600,
    )
    root = Root.create_from_config(config, code_cell("Root"))
    res = pay.owner.send(root.address, ton(1), None, init=root.init)
    assert pay.bc.account(root.address).status == "active", res.tree()
    return root


# ---- deploy and deposits ------------------------------------------------------------------------


@pytest.mark.gas
def test_open_deploys_and_takes_terms_from_root(pay: PayEnv, gas_snapshot) -> None:
    ch = pay.channel()
    before = everyone(pay, ch)
    ch, res = pay.open_channel(DEPOSIT)
    assert_conserved(pay, res, before)
    find_tx(res, from_=pay.client.address, to=ch.address, op=Op.DEPOSIT, deployed=True, success=True)
    ask = find_tx(res, from_=ch.address, to=pay.root.address, op=Op.REQUEST_CHANNEL_TERMS, success=True)
    terms = find_tx(res, from_=pay.root.address, to=ch.address, op=Op.CHANNEL_TERMS, success=True)
    assert ask.value == CHANNEL_TERMS_FEE
    assert terms.value > terms.total_fees  # Root forwards what its gas left: enough to process
    gas_snapshot.record("channel.open", res)
    d = pay.channel_data(ch)
    assert d.state == ChannelState.OPEN
    assert (d.deposit, d.redeemed_compute, d.redeemed_data, d.close_at) == (DEPOSIT, 0, 0, 0)
    assert (d.close_delay, d.reward_pool) == (CLOSE_DELAY, pay.pool.address)
    assert (d.root, d.client, d.router) == (pay.root.address, pay.client.address, pay.router.address)
    assert (d.client_key, d.router_key) == (pub(pay.client_key), pub(pay.router_key))
    # the deposit fee pays the deploy and Root's answer; what is left of it stays for the client
    assert DEPOSIT < balance(pay, ch) < DEPOSIT + CHANNEL_DEPOSIT_FEE


async def test_wrapper_reads_the_same_state(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    p = pay.bc.provider(ch.address)
    res = await ch.send_deposit(p, pay.client.sender(), value=ton(1) + CHANNEL_DEPOSIT_FEE, query_id=7)
    find_tx(res, to=ch.address, op=Op.DEPOSIT, success=True)
    data = await ch.get_channel_data(p)
    assert data == pay.channel_data(ch)
    assert data.deposit == DEPOSIT + ton(1) and data.unredeemed == data.deposit and data.redeemed == 0
    assert Channel.create_from_address(ch.address).address == ch.address


def test_open_with_the_minimum_deposit_processes_every_message(pay: PayEnv) -> None:
    """Cocoon's stranded stakes: its notifications carried 1 nanoTON and were skipped. Here the
    least accepted deposit (1 nanoTON above the fee) still gets its terms from Root."""
    ch = pay.channel()
    before = everyone(pay, ch)
    res = pay.client.send(ch.address, CHANNEL_DEPOSIT_FEE + 1, Channel.deposit_body(), init=ch.init)
    assert_conserved(pay, res, before)
    assert all(t.success for t in res.transactions), res.tree()
    find_tx(res, from_=ch.address, to=pay.root.address, op=Op.REQUEST_CHANNEL_TERMS, success=True)
    find_tx(res, from_=pay.root.address, to=ch.address, op=Op.CHANNEL_TERMS, success=True)
    d = pay.channel_data(ch)
    assert (d.state, d.deposit) == (ChannelState.OPEN, 1)
    assert balance(pay, ch) >= 1
    # and that 1 nanoTON can be redeemed to the pool
    res = pay.redeem(ch, pay.voucher(ch, 1, 0))
    assert all(t.success for t in res.transactions), res.tree()
    assert pots(pay) == (1, 0)


def test_open_with_too_little_value_bounces_and_keeps_nothing(pay: PayEnv) -> None:
    ch = pay.channel()
    before = everyone(pay, ch)
    res = pay.client.send(ch.address, CHANNEL_DEPOSIT_FEE, Channel.deposit_body(), init=ch.init)
    assert_conserved(pay, res, before)  # the client lost only the fees of this trace
    rejected(res, ch.address, ExitCode.NOT_ENOUGH_VALUE)
    # the StateInit may stay installed, but empty: nothing asked of Root, nothing kept
    assert balance(pay, ch) == 0
    assert (pay.channel_data(ch).state, pay.channel_data(ch).deposit) == (ChannelState.UNCONFIGURED, 0)
    ch, _ = pay.open_channel(DEPOSIT)  # a proper first deposit still opens it
    assert pay.channel_data(ch).state == ChannelState.OPEN


@pytest.mark.gas
def test_top_up_while_open_adds_to_the_deposit(pay: PayEnv, gas_snapshot) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    pay.redeem(ch, pay.voucher(ch, ton(1), ton(1)))
    before = everyone(pay, ch)
    ch_before = balance(pay, ch)
    res = deposit(pay, ch, ton(5) + CHANNEL_DEPOSIT_FEE)
    assert_conserved(pay, res, before)
    top = find_tx(res, from_=pay.client.address, to=ch.address, op=Op.DEPOSIT, success=True)
    assert not top.out_messages  # Root is asked only once, at deploy
    gas_snapshot.record("channel.top_up", res)
    assert res.gas() <= GAS_GOAL_TOP_UP // 2
    d = pay.channel_data(ch)
    assert (d.state, d.deposit, d.redeemed) == (ChannelState.OPEN, DEPOSIT + ton(5), ton(2))
    assert balance(pay, ch) - ch_before == ton(5) + CHANNEL_DEPOSIT_FEE - top.total_fees


def test_top_up_with_too_little_value_is_rejected(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    before = balance(pay, ch)
    res = deposit(pay, ch, CHANNEL_DEPOSIT_FEE)
    rejected(res, ch.address, ExitCode.NOT_ENOUGH_VALUE)
    assert pay.channel_data(ch).deposit == DEPOSIT
    assert balance(pay, ch) == before


def test_deposit_from_someone_else_is_bounced(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    mallory = pay.bc.treasury("mallory")
    before = everyone(pay, ch, mallory)
    res = deposit(pay, ch, ton(3), by=mallory)
    assert_conserved(pay, res, before)
    rejected(res, ch.address, ExitCode.NOT_CLIENT)
    assert pay.channel_data(ch).deposit == DEPOSIT
    assert before[raw(mallory.address)] - balance(pay, mallory) < ton("0.01")  # the 3 TON came back
    # nor can anyone else deploy the client's channel
    other = pay.channel(client=pay.bc.treasury("other-client"))
    res = mallory.send(other.address, ton(3), Channel.deposit_body(), init=other.init)
    rejected(res, other.address, ExitCode.NOT_CLIENT)
    assert balance(pay, other) == 0 and pay.channel_data(other).deposit == 0


def test_deposit_after_close_is_rejected_and_returned(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    start_close(pay, ch)
    res = deposit(pay, ch, ton(3))  # closing
    rejected(res, ch.address, ExitCode.CHANNEL_NOT_OPEN)
    assert pay.channel_data(ch).deposit == DEPOSIT
    pay.bc.advance(CLOSE_DELAY)
    find_tx(finish_close(pay, ch), to=ch.address, success=True)
    before = balances(pay, pay.client, ch)
    res = deposit(pay, ch, ton(3))  # closed
    assert_conserved(pay, res, before)
    rejected(res, ch.address, ExitCode.CHANNEL_NOT_OPEN)
    assert pay.channel_data(ch).deposit == DEPOSIT
    assert before[raw(pay.client.address)] - balance(pay, pay.client) < ton("0.01")


def test_unknown_op_is_rejected_and_empty_body_accepted(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    res = pay.client.send(ch.address, ton("0.1"), None)  # a plain transfer tops up nothing
    find_tx(res, to=ch.address, success=True)
    assert pay.channel_data(ch).deposit == DEPOSIT
    res = pay.client.send(ch.address, ton("0.1"), begin_cell().store_uint(0xDEAD, 32).end_cell())
    rejected(res, ch.address, ExitCode.UNKNOWN_OP)


# ---- redeem ------------------------------------------------------------------------------


@pytest.mark.gas
def test_redeem_sends_exactly_the_difference_to_the_pool(pay: PayEnv, gas_snapshot) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    pay.redeem(ch, pay.voucher(ch, ton(1), ton("0.5")))
    before = everyone(pay, ch)
    ch_before, pots_before = balance(pay, ch), pots(pay)
    res = pay.redeem(ch, pay.voucher(ch, ton(3), ton(2)))
    assert_conserved(pay, res, before)
    rev = find_tx(res, from_=ch.address, to=pay.pool.address, op=Op.DEPOSIT_REVENUE, success=True)
    body = DepositRevenue.from_cell(body_of(rev))
    assert (body.compute, body.data) == (ton(2), ton("1.5"))
    assert rev.value == ton("3.5") + POOL_DEPOSIT_FEE
    assert pots(pay) == (pots_before[0] + ton(2), pots_before[1] + ton("1.5"))
    # the router's value comes back less gas; nothing else goes to the router
    excess = find_tx(res, from_=ch.address, to=pay.router.address, op=Op.RETURN_EXCESS, success=True)
    assert [t for t in res.transactions if t.dst == raw(pay.router.address) and t.src is not None] == [excess]
    assert ton("0.01") < excess.value < REDEEM_FEE - POOL_DEPOSIT_FEE
    assert 0 < before[raw(pay.router.address)] - balance(pay, pay.router) < REDEEM_FEE
    # the channel pays out exactly the redeemed difference: the router's value paid the rest
    assert ch_before - balance(pay, ch) == ton("3.5")
    d = pay.channel_data(ch)
    assert (d.redeemed_compute, d.redeemed_data, d.deposit) == (ton(3), ton(2), DEPOSIT)
    gas_snapshot.record("channel.redeem", res)
    assert res.gas() <= GAS_GOAL_REDEEM


def test_redeem_many_times_keeps_the_unredeemed_part_covered(pay: PayEnv) -> None:
    """Each redeem used to take the pool's fee from the client's money: after a few, the last
    voucher (the whole deposit) could not be paid and the client's refund shrank."""
    ch, _ = pay.open_channel(ton(1))
    kept = balance(pay, ch) - ton(1)
    for i in range(1, 11):
        res = pay.redeem(ch, pay.voucher(ch, ton("0.1") * i, 0))
        assert all(t.success for t in res.transactions), res.tree()
        assert balance(pay, ch) - pay.channel_data(ch).unredeemed == kept
    assert pay.channel_data(ch).unredeemed == 0 and pots(pay) == (ton(1), 0)


def test_redeem_older_voucher_or_replay_is_stale(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    old = pay.voucher(ch, ton(1), ton(1))
    new = pay.voucher(ch, ton(2), ton(2))
    pay.redeem(ch, old)
    find_tx(pay.redeem(ch, new), to=pay.pool.address, success=True)
    pots_before, ch_before = pots(pay), balance(pay, ch)
    for v in (
        new,  # replay
        old,  # older
        pay.voucher(ch, ton(1), ton(4)),  # compute decreases while data grows
        pay.voucher(ch, ton(4), ton(1)),  # data decreases while compute grows
    ):
        res = pay.redeem(ch, v)
        rejected(res, ch.address, ExitCode.STALE_VOUCHER)
    d = pay.channel_data(ch)
    assert (d.redeemed_compute, d.redeemed_data) == (ton(2), ton(2))
    assert pots(pay) == pots_before and balance(pay, ch) == ch_before


def test_redeem_voucher_for_another_channel_or_key_is_rejected(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    other = pay.channel(client=pay.bc.treasury("other-client"))
    forged = [
        pay.voucher(other, ton(1), 0),  # signed by the client, for another channel
        pay.voucher(ch, ton(1), 0, signer=pay.router_key),  # the wrong key
    ]
    for v in forged:
        res = pay.redeem(ch, v)
        rejected(res, ch.address, ExitCode.BAD_VOUCHER_SIGNATURE)
    good = pay.voucher(ch, ton(1), 0)
    tampered = pay.voucher(ch, ton(2), 0)
    body = Channel.redeem_voucher_body(compute=tampered.compute, data=0, signature=good.signature)
    rejected(pay.router.send(ch.address, REDEEM_FEE, body), ch.address, ExitCode.BAD_VOUCHER_SIGNATURE)
    assert pay.channel_data(ch).redeemed == 0 and pots(pay) == (0, 0)


def test_redeem_by_anyone_but_the_router_is_rejected(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    v = pay.voucher(ch, ton(1), 0)
    for who in (pay.client, pay.bc.treasury("mallory")):
        rejected(pay.redeem(ch, v, by=who), ch.address, ExitCode.NOT_ROUTER)
    assert pay.channel_data(ch).redeemed == 0


def test_redeem_with_too_little_value_is_rejected(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    res = pay.redeem(ch, pay.voucher(ch, ton(1), 0), value=REDEEM_FEE - 1)
    rejected(res, ch.address, ExitCode.NOT_ENOUGH_VALUE)
    assert pay.channel_data(ch).redeemed == 0


def test_redeem_above_the_deposit_is_rejected(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    for compute, data in ((DEPOSIT + 1, 0), (0, DEPOSIT + 1), (DEPOSIT, 1)):
        res = pay.redeem(ch, pay.voucher(ch, compute, data))
        rejected(res, ch.address, ExitCode.VOUCHER_EXCEEDS_DEPOSIT)
    assert pay.channel_data(ch).redeemed == 0
    # a top-up raises the ceiling; the whole deposit can be redeemed
    deposit(pay, ch, ton(1) + CHANNEL_DEPOSIT_FEE)
    res = pay.redeem(ch, pay.voucher(ch, DEPOSIT, ton(1)))
    find_tx(res, to=pay.pool.address, op=Op.DEPOSIT_REVENUE, success=True)
    assert pots(pay) == (DEPOSIT, ton(1)) and pay.channel_data(ch).unredeemed == 0


def test_redeem_on_unconfigured_or_closed_channel_is_rejected(pay: PayEnv) -> None:
    # a channel whose Root never answers stays unconfigured
    fake = pay.bc.treasury("fake-root")
    ch = channel_under(pay, fake.address)
    pay.client.send(ch.address, DEPOSIT + CHANNEL_DEPOSIT_FEE, Channel.deposit_body(), init=ch.init)
    assert pay.channel_data(ch).state == ChannelState.UNCONFIGURED
    rejected(pay.redeem(ch, pay.voucher(ch, ton(1), 0)), ch.address, ExitCode.CHANNEL_NOT_OPEN)
    # and a closed one
    ch, _ = pay.open_channel(DEPOSIT)
    find_tx(coop_close(pay, ch, ton(1), 0), to=ch.address, success=True)
    rejected(pay.redeem(ch, pay.voucher(ch, ton(2), 0)), ch.address, ExitCode.CHANNEL_NOT_OPEN)
    assert pay.channel_data(ch).redeemed == ton(1) and pots(pay) == (ton(1), 0)


# ---- unilateral close ------------------------------------------------------------------------


@pytest.mark.gas
async def test_start_close_sets_closing_until_the_delay(pay: PayEnv, gas_snapshot) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    rejected(start_close(pay, ch, by=pay.router), ch.address, ExitCode.NOT_CLIENT)
    before = everyone(pay, ch)
    res = await ch.send_start_close(pay.bc.provider(ch.address), pay.client.sender())
    assert_conserved(pay, res, before)
    find_tx(res, from_=pay.client.address, to=ch.address, op=Op.START_CLOSE, success=True)
    gas_snapshot.record("channel.start_close", res)
    d = pay.channel_data(ch)
    assert (d.state, d.close_at) == (ChannelState.CLOSING, pay.bc.now + CLOSE_DELAY)
    assert balance(pay, ch) >= DEPOSIT  # nothing paid out yet


def test_router_may_redeem_during_the_close_delay(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    pay.redeem(ch, pay.voucher(ch, ton(1), 0))
    start_close(pay, ch)
    pay.bc.advance(CLOSE_DELAY - 1)
    res = pay.redeem(ch, pay.voucher(ch, ton(2), ton(1)))
    find_tx(res, from_=ch.address, to=pay.pool.address, op=Op.DEPOSIT_REVENUE, success=True)
    d = pay.channel_data(ch)
    assert (d.state, d.redeemed_compute, d.redeemed_data) == (ChannelState.CLOSING, ton(2), ton(1))
    assert pots(pay) == (ton(2), ton(1))


def test_finish_close_before_the_delay_is_rejected(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    start_close(pay, ch)
    close_at = pay.channel_data(ch).close_at
    pay.bc.advance(CLOSE_DELAY - 1)
    assert pay.bc.now == close_at - 1
    rejected(finish_close(pay, ch), ch.address, ExitCode.CLOSE_DELAY_NOT_OVER)
    rejected(finish_close(pay, ch, by=pay.router), ch.address, ExitCode.NOT_CLIENT)
    assert pay.channel_data(ch).state == ChannelState.CLOSING
    pay.bc.advance(1)
    find_tx(finish_close(pay, ch), to=ch.address, op=Op.FINISH_CLOSE, success=True)
    assert pay.channel_data(ch).state == ChannelState.CLOSED


@pytest.mark.gas
def test_finish_close_returns_the_rest_to_the_client(pay: PayEnv, gas_snapshot) -> None:
    client_start = balance(pay, pay.client)
    ch, _ = pay.open_channel(DEPOSIT)
    deposit(pay, ch, ton(2) + CHANNEL_DEPOSIT_FEE)
    pay.redeem(ch, pay.voucher(ch, ton(3), ton(1)))
    start_close(pay, ch)
    pay.bc.advance(CLOSE_DELAY)
    unredeemed = DEPOSIT + ton(2) - ton(4)
    assert pay.channel_data(ch).unredeemed == unredeemed
    # on top: what the deposit fees and the StartClose value left after gas and storage
    kept = balance(pay, ch) - unredeemed
    assert 0 < kept < 2 * CHANNEL_DEPOSIT_FEE + CLOSE_VALUE
    before = everyone(pay, ch)
    res = finish_close(pay, ch)
    assert_conserved(pay, res, before)
    fin = find_tx(res, from_=pay.client.address, to=ch.address, op=Op.FINISH_CLOSE, success=True)
    refund = find_tx(res, from_=ch.address, to=pay.client.address, op=Op.RECEIVE_REFUND, success=True)
    gas_snapshot.record("channel.finish_close", res)
    # the whole balance goes back: deposit - redeemed + the fees kept + this message's value,
    # less this transaction's fees and the refund's forwarding fee
    (out,) = fin.out_messages
    assert refund.value == unredeemed + kept + CLOSE_VALUE - fin.total_fees - out.fwd_fee
    assert balance(pay, ch) == 0  # no client money left behind
    assert pay.channel_data(ch).state == ChannelState.CLOSED
    # over the whole life the client lost what was redeemed plus a little gas
    assert 0 < client_start - balance(pay, pay.client) - ton(4) < ton("0.05")


def test_close_twice_is_rejected(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    start_close(pay, ch)
    rejected(start_close(pay, ch), ch.address, ExitCode.ALREADY_CLOSING)
    pay.bc.advance(CLOSE_DELAY)
    find_tx(finish_close(pay, ch), to=ch.address, success=True)
    rejected(start_close(pay, ch), ch.address, ExitCode.CHANNEL_CLOSED)
    rejected(finish_close(pay, ch), ch.address, ExitCode.CHANNEL_CLOSED)
    rejected(coop_close(pay, ch, 0, 0), ch.address, ExitCode.CHANNEL_NOT_OPEN)
    assert balance(pay, ch) == 0


def test_finish_close_without_start_close_is_rejected(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    pay.bc.advance(2 * CLOSE_DELAY)
    rejected(finish_close(pay, ch), ch.address, ExitCode.NOT_CLOSING)
    assert pay.channel_data(ch).state == ChannelState.OPEN


def test_start_close_on_unconfigured_channel_refunds_at_once(pay: PayEnv) -> None:
    fake = pay.bc.treasury("fake-root")
    ch = channel_under(pay, fake.address)
    pay.client.send(ch.address, DEPOSIT + CHANNEL_DEPOSIT_FEE, Channel.deposit_body(), init=ch.init)
    assert pay.channel_data(ch).state == ChannelState.UNCONFIGURED
    before = balances(pay, pay.client, ch)
    res = start_close(pay, ch)
    assert_conserved(pay, res, before)
    refund = find_tx(res, from_=ch.address, to=pay.client.address, op=Op.RECEIVE_REFUND, success=True)
    assert refund.value > DEPOSIT
    assert balance(pay, ch) == 0 and pay.channel_data(ch).state == ChannelState.CLOSED


# ---- cooperative close -----------------------------------------------------------------------


@pytest.mark.gas
async def test_cooperative_close_pays_the_pool_and_refunds_at_once(pay: PayEnv, gas_snapshot) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    pay.redeem(ch, pay.voucher(ch, ton(1), ton(1)))
    before = everyone(pay, ch)
    unredeemed_before, ch_before = pay.channel_data(ch).unredeemed, balance(pay, ch)
    sig = pay.approval(ch, ton(3), ton(2))
    res = await ch.send_cooperative_close(
        pay.bc.provider(ch.address), pay.client.sender(), compute=ton(3), data=ton(2), signature=sig
    )
    assert_conserved(pay, res, before)
    find_tx(res, from_=pay.client.address, to=ch.address, op=Op.COOPERATIVE_CLOSE, success=True)
    rev = find_tx(res, from_=ch.address, to=pay.pool.address, op=Op.DEPOSIT_REVENUE, success=True)
    assert DepositRevenue.from_cell(body_of(rev)) == DepositRevenue(query_id=0, compute=ton(2), data=ton(1))
    refund = find_tx(res, from_=ch.address, to=pay.client.address, op=Op.RECEIVE_REFUND, success=True)
    gas_snapshot.record("channel.cooperative_close", res)
    assert pots(pay) == (ton(3), ton(2))
    assert refund.value > unredeemed_before - ton(3) and refund.value > ch_before - ton(3) - POOL_DEPOSIT_FEE
    d = pay.channel_data(ch)
    assert (d.state, d.redeemed_compute, d.redeemed_data) == (ChannelState.CLOSED, ton(3), ton(2))
    assert balance(pay, ch) == 0


def test_cooperative_close_at_the_redeemed_totals_sends_nothing_to_the_pool(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    pay.redeem(ch, pay.voucher(ch, ton(1), 0))
    start_close(pay, ch)  # also allowed while closing
    res = coop_close(pay, ch, ton(1), 0)
    assert not [t for t in res.transactions if t.dst == raw(pay.pool.address)]
    refund = find_tx(res, from_=ch.address, to=pay.client.address, op=Op.RECEIVE_REFUND)
    assert refund.value > DEPOSIT - ton(1)
    assert pay.channel_data(ch).state == ChannelState.CLOSED and balance(pay, ch) == 0


def test_cooperative_close_checks(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    pay.redeem(ch, pay.voucher(ch, ton(2), ton(2)))
    other = pay.channel(client=pay.bc.treasury("other-client"))
    bad = [
        pay.approval(ch, ton(3), ton(2), signer=pay.client_key),  # not the router's key
        pay.approval(other, ton(3), ton(2)),  # for another channel
        pay.approval(ch, ton(3), ton(3)),  # for other totals
    ]
    for sig in bad:
        rejected(coop_close(pay, ch, ton(3), ton(2), sig), ch.address, ExitCode.BAD_CLOSE_SIGNATURE)
    rejected(coop_close(pay, ch, ton(1), ton(3)), ch.address, ExitCode.STALE_VOUCHER)
    rejected(coop_close(pay, ch, DEPOSIT, ton(2)), ch.address, ExitCode.VOUCHER_EXCEEDS_DEPOSIT)
    body = Channel.cooperative_close_body(compute=ton(3), data=ton(2), signature=pay.approval(ch, ton(3), ton(2)))
    rejected(pay.router.send(ch.address, CLOSE_VALUE, body), ch.address, ExitCode.NOT_CLIENT)
    d = pay.channel_data(ch)
    assert (d.state, d.redeemed) == (ChannelState.OPEN, ton(4))


# ---- terms from Root ------------------------------------------------------------------------


def test_channel_terms_only_from_root_and_only_once(pay: PayEnv) -> None:
    ch, _ = pay.open_channel(DEPOSIT)
    mallory = pay.bc.treasury("mallory")
    terms = ChannelTerms(query_id=0, close_delay=1, reward_pool=mallory.address).to_cell()
    rejected(mallory.send(ch.address, ton("0.1"), terms), ch.address, ExitCode.NOT_FROM_ROOT)
    res = pay.bc.send_internal(src=pay.root.address, to=ch.address, value=ton("0.1"), body=terms)
    find_tx(res, to=ch.address, exit_code=ExitCode.ALREADY_CONFIGURED)
    d = pay.channel_data(ch)
    assert (d.close_delay, d.reward_pool) == (CLOSE_DELAY, pay.pool.address)


def test_root_answers_only_the_channel_of_the_parties(pay: PayEnv) -> None:
    mallory = pay.bc.treasury("mallory")
    before = balances(pay, mallory, pay.root)
    # a wallet posing as the client's channel
    ask = RequestChannelTerms(query_id=0, parties=config_of(pay).parties).to_cell()
    res = mallory.send(pay.root.address, CHANNEL_TERMS_FEE, ask)
    rejected(res, pay.root.address, ExitCode.NOT_A_CHANNEL)
    # a channel whose parties name another Root
    ask = RequestChannelTerms(query_id=0, parties=config_of(pay, root=mallory.address).parties).to_cell()
    res = mallory.send(pay.root.address, CHANNEL_TERMS_FEE, ask)
    rejected(res, pay.root.address, ExitCode.WRONG_ROOT)
    assert balance(pay, pay.root) == before[raw(pay.root.address)]  # Root kept nothing


def test_root_without_a_pool_refuses_and_the_client_gets_everything_back(pay: PayEnv) -> None:
    root2 = root_without_pool(pay)
    ch = channel_under(pay, root2.address)
    before = balances(pay, pay.client, pay.router, ch, root2)
    res = opened = pay.client.send(ch.address, DEPOSIT + CHANNEL_DEPOSIT_FEE, Channel.deposit_body(), init=ch.init)
    rejected(res, root2.address, ExitCode.NO_REWARD_POOL)
    find_tx(res, from_=root2.address, to=ch.address, bounced=True, success=True)  # the value is back
    d = pay.channel_data(ch)
    assert (d.state, d.deposit) == (ChannelState.UNCONFIGURED, DEPOSIT)
    assert balance(pay, root2) == before[raw(root2.address)]
    # the router cannot redeem from it, and the client takes it all back at once
    redeem = pay.redeem(ch, pay.voucher(ch, ton(1), 0))
    rejected(redeem, ch.address, ExitCode.CHANNEL_NOT_OPEN)
    res = start_close(pay, ch)
    refund = find_tx(res, from_=ch.address, to=pay.client.address, op=Op.RECEIVE_REFUND, success=True)
    assert refund.value > DEPOSIT + CHANNEL_DEPOSIT_FEE - ton("0.01")
    assert balance(pay, ch) == 0 and balance(pay, root2) == before[raw(root2.address)]
    # every nanoTON the client lost paid a fee of these traces; nothing stayed anywhere
    assert_conserved(pay, merged(opened, redeem, res), before)


# ---- the pool refusing revenue ----------------------------------------------------------------------


def test_pool_bounce_restores_the_redeemed_totals(pay: PayEnv) -> None:
    """The pool the terms name refuses DepositRevenue (here Root: an unknown op for it)."""
    ch, _ = open_under_fake_root(pay, pool=pay.root.address)
    ch_before = balance(pay, ch)
    before = everyone(pay, ch)
    res = pay.redeem(ch, pay.voucher(ch, ton(3), ton(2)))
    assert_conserved(pay, res, before)
    find_tx(res, from_=ch.address, to=pay.root.address, op=Op.DEPOSIT_REVENUE, exit_code=ExitCode.UNKNOWN_OP)
    find_tx(res, from_=pay.root.address, to=ch.address, bounced=True, success=True)
    d = pay.channel_data(ch)
    assert (d.redeemed_compute, d.redeemed_data) == (0, 0)
    assert balance(pay, ch) >= ch_before  # the money came back (the router's value paid the fees)
    assert balance(pay, ch) - d.unredeemed > 0


def test_pool_bounce_lets_the_router_redeem_again_later(pay: PayEnv) -> None:
    """The terms name a pool that is not deployed yet: the revenue bounces, then arrives."""
    pool = RewardPool.create_from_config(RewardPoolConfig(pay.bc.treasury("root-2").address), code_cell("RewardPool"))
    ch, _ = open_under_fake_root(pay, pool=pool.address)
    v = pay.voucher(ch, ton(2), ton(1))
    res = pay.redeem(ch, v)
    find_tx(res, from_=pool.address, to=ch.address, bounced=True, success=True)
    assert pay.channel_data(ch).redeemed == 0
    assert pay.channel_data(ch).unredeemed <= balance(pay, ch)
    pay.owner.send(pool.address, ton(1), None, init=pool.init)
    res = pay.redeem(ch, v)  # the same voucher, now delivered
    find_tx(res, from_=ch.address, to=pool.address, op=Op.DEPOSIT_REVENUE, success=True)
    p = RewardPool.create_from_address(pool.address)
    data = pay.bc.run_get_method(p.address, "get_pool_data").stack
    assert (data[1], data[2]) == (ton(2), ton(1))
    d = pay.channel_data(ch)
    assert (d.redeemed_compute, d.redeemed_data) == (ton(2), ton(1))


# ---- nothing stays on a closed channel ---------------------------------------------------------


def open_and_close_at_once(pay: PayEnv, ch: Channel) -> SendResult:
    """Deposit (deploy) and StartClose in one wallet message: the close overtakes Root's answer."""
    deposit = message_relaxed(
        dest=ch.address, value=DEPOSIT + CHANNEL_DEPOSIT_FEE, body=Channel.deposit_body(), init=ch.init
    )
    close = message_relaxed(dest=ch.address, value=CLOSE_VALUE, body=Channel.start_close_body())
    return pay.client.send_messages([(deposit, 1), (close, 1)])


def test_terms_arriving_after_an_early_close_go_to_the_client(pay: PayEnv) -> None:
    ch = pay.channel()
    before = everyone(pay, ch)
    res = open_and_close_at_once(pay, ch)
    assert_conserved(pay, res, before)
    terms = find_tx(res, from_=pay.root.address, to=ch.address, op=Op.CHANNEL_TERMS, success=True)
    (late,) = [t for t in res.transactions if t.parent is terms]
    assert (late.dst, late.op) == (raw(pay.client.address), Op.RECEIVE_REFUND) and late.value > 0
    assert pay.channel_data(ch).state == ChannelState.CLOSED
    assert balance(pay, ch) == 0


def test_refused_terms_request_arriving_after_an_early_close_goes_to_the_client(pay: PayEnv) -> None:
    root2 = root_without_pool(pay)
    ch = channel_under(pay, root2.address)
    before = balances(pay, pay.client, ch, root2)
    res = open_and_close_at_once(pay, ch)
    assert_conserved(pay, res, before)
    bounce = find_tx(res, from_=root2.address, to=ch.address, bounced=True, success=True)
    find_tx(res, from_=ch.address, to=pay.client.address, op=Op.RECEIVE_REFUND, parent=bounce)
    assert balance(pay, ch) == 0 and balance(pay, root2) == before[raw(root2.address)]


def test_revenue_bouncing_after_a_cooperative_close_goes_to_the_client(pay: PayEnv) -> None:
    ch, _ = open_under_fake_root(pay, pool=pay.root.address)  # a 'pool' that refuses revenue
    before = everyone(pay, ch)
    res = coop_close(pay, ch, ton(3), ton(2))
    assert_conserved(pay, res, before)
    bounce = find_tx(res, from_=pay.root.address, to=ch.address, bounced=True, success=True)
    late = find_tx(res, from_=ch.address, to=pay.client.address, op=Op.RECEIVE_REFUND, parent=bounce)
    assert late.value > ton(5)
    d = pay.channel_data(ch)
    assert (d.state, d.redeemed) == (ChannelState.CLOSED, 0)
    assert balance(pay, ch) == 0


# ---- property: random deposits, vouchers, redeems and a final close -------------------------------

MILLI = ton("0.001")

step = st.one_of(
    st.tuples(st.just("deposit"), st.integers(1, 3000)),
    # the client signs new totals: each may grow or not (and may overspend the deposit)
    st.tuples(st.just("sign"), st.integers(0, 2000), st.integers(0, 2000)),
    # the router redeems one of the signed vouchers: -1 the newest, else an older one
    st.tuples(st.just("redeem"), st.integers(-1, 6)),
)
final = st.one_of(
    st.tuples(st.just("cooperative"), st.booleans()),
    st.tuples(st.just("unilateral"), st.booleans()),
)


@dataclass
class Book:
    """What the test expects the channel to hold."""

    deposit: int
    compute: int = 0
    data: int = 0
    signed: list[tuple[int, int]] = field(default_factory=list)

    @property
    def redeemed(self) -> int:
        return self.compute + self.data

    def outcome(self, c: int, d: int) -> int | None:
        """None when the channel must accept a voucher for (c, d), else the exit code."""
        if c < self.compute or d < self.data or c + d <= self.redeemed:
            return ExitCode.STALE_VOUCHER
        if c + d > self.deposit:
            return ExitCode.VOUCHER_EXCEEDS_DEPOSIT
        return None


@pytest.fixture
def pay_snapshot(pay: PayEnv):
    return pay.bc.snapshot()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.integers(1, 5000), steps=st.lists(step, max_size=10), end=final)
def test_property_money_is_conserved_and_never_overpaid(pay: PayEnv, pay_snapshot, first, steps, end) -> None:
    pay.bc.load_from(pay_snapshot)
    ch = pay.channel()
    before = everyone(pay, ch)
    client_start, pots_start = balance(pay, pay.client), pots(pay)
    book = Book(deposit=first * MILLI)
    ch, res = pay.open_channel(book.deposit)
    client_traces, router_traces = [res], []

    def redeem(c: int, d: int) -> None:
        res = pay.redeem(ch, pay.voucher(ch, c, d))
        router_traces.append(res)
        code = book.outcome(c, d)
        if code is None:
            find_tx(res, from_=ch.address, to=pay.pool.address, op=Op.DEPOSIT_REVENUE, success=True)
            book.compute, book.data = c, d
        else:
            rejected(res, ch.address, code)

    def check() -> None:
        data = pay.channel_data(ch)
        assert (data.deposit, data.redeemed_compute, data.redeemed_data) == (book.deposit, book.compute, book.data)
        assert data.redeemed <= data.deposit
        assert balance(pay, ch) >= data.unredeemed  # the rest of the deposit is still there
        assert pots(pay) == (pots_start[0] + book.compute, pots_start[1] + book.data)

    for s in steps:
        if s[0] == "deposit":
            res = deposit(pay, ch, s[1] * MILLI + CHANNEL_DEPOSIT_FEE)
            client_traces.append(res)
            find_tx(res, to=ch.address, op=Op.DEPOSIT, success=True)
            book.deposit += s[1] * MILLI
        elif s[0] == "sign":
            last = book.signed[-1] if book.signed else (0, 0)
            book.signed.append((last[0] + s[1] * MILLI, last[1] + s[2] * MILLI))
        elif book.signed:
            redeem(*book.signed[s[1] % len(book.signed)] if s[1] >= 0 else book.signed[-1])
        check()

    newest = book.signed[-1] if book.signed else (book.compute, book.data)
    if end[0] == "cooperative":
        # the router approves the newest totals if they are payable, else what was redeemed
        c, d = newest if book.outcome(*newest) is None else (book.compute, book.data)
        if end[1] and book.outcome(*newest) is None:  # sometimes the router redeems it first
            redeem(c, d)
        res = coop_close(pay, ch, c, d)
        client_traces.append(res)
        find_tx(res, to=ch.address, op=Op.COOPERATIVE_CLOSE, success=True)
        book.compute, book.data = c, d
    else:
        client_traces.append(start_close(pay, ch))
        if end[1]:
            pay.bc.advance(CLOSE_DELAY // 2)
            redeem(*newest)  # the router may still redeem during the delay
        pay.bc.advance(CLOSE_DELAY)
        res = finish_close(pay, ch)
        client_traces.append(res)
        find_tx(res, from_=ch.address, to=pay.client.address, op=Op.RECEIVE_REFUND, success=True)

    # closed, nothing left on it, the pool holds exactly what was redeemed
    assert pay.channel_data(ch).state == ChannelState.CLOSED and balance(pay, ch) == 0
    assert pots(pay) == (pots_start[0] + book.compute, pots_start[1] + book.data)
    assert book.redeemed <= book.deposit
    # every nanoTON is accounted for: balance changes + fees of all traces sum to zero
    everything = merged(*client_traces, *router_traces)
    assert_conserved(pay, everything, before)
    after = everyone(pay, ch)
    pool = raw(pay.pool.address)
    assert after[pool] - before[pool] >= book.redeemed  # the pool got the money behind its pots
    assert after[raw(pay.router.address)] <= before[raw(pay.router.address)]  # nothing to the router
    # the client paid what was redeemed plus the costs of its own operations (and the channel's
    # storage during the router's): never more
    own = sum(t.total_fees + sum(m.fwd_fee for m in t.out_messages) for r in client_traces for t in r.transactions)
    storage = sum(t.summary.storage_fees for r in router_traces for t in r.transactions if t.dst == raw(ch.address))
    client_loss = client_start - balance(pay, pay.client)
    assert book.redeemed <= client_loss <= book.redeemed + own + storage + POOL_DEPOSIT_FEE
