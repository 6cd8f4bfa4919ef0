"""The sandbox itself: deploys, traces, bounces, getters, time, snapshots, wallets, bad input."""

from __future__ import annotations

import itertools

import pytest
from nacl.signing import SigningKey
from pytoniq_core import Address, Cell, StateInit, begin_cell

from offchain.errors import EmulationError, GetMethodError, TimeError
from offchain.ton.blockchain import Blockchain, method_id, ton
from offchain.ton.build import code_cell
from offchain.ton.messages import internal_message, message_relaxed
from offchain.ton.transaction import TransactionNotFound, fee_table, find_tx

COUNTER = "tests/sandbox/contracts/counter.tolk"
OP_INCREASE = 0x7E8764EF
OP_FAIL = 0x3A752F06
OP_RELAY = 0x5F1B8A11
OP_SEND_BOUNCY = 0x2C3B1AD0
ERR_ASKED_TO_FAIL = 777


def counter_init(owner: Address, salt: int = 0) -> StateInit:
    data = begin_cell().store_address(owner).store_uint(0, 32).store_uint(0, 32).store_uint(salt, 32).end_cell()
    return StateInit(code=code_cell(COUNTER), data=data)


def addr_of(init: StateInit) -> Address:
    return Address((0, init.serialize().hash))


def increase(by: int, query_id: int = 0) -> Cell:
    return begin_cell().store_uint(OP_INCREASE, 32).store_uint(query_id, 64).store_uint(by, 32).end_cell()


def relay(hops: int, nxt: Address, back: Address) -> Cell:
    return (
        begin_cell()
        .store_uint(OP_RELAY, 32)
        .store_uint(0, 64)
        .store_uint(hops, 8)
        .store_address(nxt)
        .store_address(back)
        .end_cell()
    )


def deploy_counter(bc: Blockchain, owner, salt: int = 0) -> Address:
    init = counter_init(owner.address, salt)
    r = owner.send(addr_of(init), ton("1"), increase(0), init=init)
    find_tx(r, to=addr_of(init), deployed=True, success=True)
    return addr_of(init)


def counter_value(bc: Blockchain, addr: Address) -> list[int]:
    return bc.run_get_method(addr, "get_counter").stack


def test_deploy_through_state_init(blockchain, treasury):
    alice = treasury("alice")
    init = counter_init(alice.address)
    addr = addr_of(init)
    assert blockchain.account(addr).status == "nonexist"
    r = alice.send(addr, ton("0.5"), increase(5), init=init)
    tx = find_tx(r, from_=alice.address, to=addr, op=OP_INCREASE, success=True, deployed=True)
    assert tx.exit_code == 0 and tx.gas_used > 0 and tx.total_fees > 0
    assert next(e.kind for e in r.events if e.address == tx.address) == "account_created"
    acc = blockchain.account(addr)
    assert acc.status == "active" and acc.code.hash == init.code.hash
    assert counter_value(blockchain, addr) == [5, 0, blockchain.now]


def test_message_chain_of_several_hops(blockchain, treasury):
    alice = treasury("alice")
    a = deploy_counter(blockchain, alice, 1)
    b = deploy_counter(blockchain, alice, 2)
    r = alice.send(a, ton("1"), relay(3, b, a))
    # treasury -> a -> b -> a -> b: five transactions, each child of the previous one
    assert len(r.transactions) == 5
    chain = r.transactions
    for parent, child in itertools.pairwise(chain):
        assert child.parent is parent and parent.children == [child]
        assert child.lt > parent.lt
    assert [t.dst for t in chain[1:]] == [f"0:{x.hash_part.hex()}" for x in (a, b, a, b)]
    assert counter_value(blockchain, a)[0] == 2
    assert counter_value(blockchain, b)[0] == 2
    assert all(t.success for t in chain)


def test_bounce_returns_value(blockchain, treasury):
    alice = treasury("alice")
    a = deploy_counter(blockchain, alice, 1)
    b = deploy_counter(blockchain, alice, 2)
    before = blockchain.account(a).balance
    amount = ton("0.3")
    body = begin_cell().store_uint(OP_SEND_BOUNCY, 32).store_uint(7, 64).store_address(b).store_coins(amount).end_cell()
    r = alice.send(a, ton("0.1"), body)
    failed = find_tx(r, from_=a, to=b, op=OP_FAIL, success=False, exit_code=ERR_ASKED_TO_FAIL)
    back = find_tx(r, from_=b, to=a, bounced=True, success=True)
    assert back.value > amount - ton("0.01")  # the value came back, less the bounce's fees
    assert failed.value == amount
    assert counter_value(blockchain, a)[1] == 1  # onBouncedMessage ran
    # a paid for the send and got almost all of it back: it lost only fees
    assert before - blockchain.account(a).balance < ton("0.02")


def test_failed_compute_is_a_value_not_an_exception(blockchain, treasury):
    alice = treasury("alice")
    a = deploy_counter(blockchain, alice)
    r = alice.send(a, ton("0.2"), begin_cell().store_uint(OP_FAIL, 32).store_uint(0, 64).end_cell())
    tx = find_tx(r, to=a, exit_code=ERR_ASKED_TO_FAIL)
    assert not tx.success
    find_tx(r, from_=a, to=alice.address, bounced=True)


def test_unknown_op_rejected_but_empty_body_accepted(blockchain, treasury):
    alice = treasury("alice")
    a = deploy_counter(blockchain, alice)
    r = alice.send(a, ton("0.1"), begin_cell().store_uint(0xDEADBEEF, 32).end_cell())
    find_tx(r, to=a, success=False, exit_code=0xFFFF)
    r = alice.send(a, ton("0.1"))
    find_tx(r, to=a, success=True)


def test_get_method_reads_storage_and_takes_arguments(blockchain, treasury):
    alice = treasury("alice")
    a = deploy_counter(blockchain, alice)
    alice.send(a, ton("0.1"), increase(41))
    assert blockchain.run_get_method(a, "add_to_counter", [1]).stack == [42]
    assert blockchain.run_get_method(a, method_id("add_to_counter"), [-41]).int() == 0
    with pytest.raises(GetMethodError) as err:
        blockchain.run_get_method(a, "no_such_method")
    assert err.value.exit_code == 11
    with pytest.raises(GetMethodError):
        blockchain.run_get_method(Address("0:" + "ab" * 32), "get_counter")


def test_time_travel(blockchain, treasury):
    alice = treasury("alice")
    a = deploy_counter(blockchain, alice)
    blockchain.now = blockchain.now + 3600
    alice.send(a, ton("0.1"), increase(1))
    assert counter_value(blockchain, a)[2] == blockchain.now
    blockchain.advance(60)
    alice.send(a, ton("0.1"), increase(1))
    assert counter_value(blockchain, a)[2] == blockchain.now
    with pytest.raises(TimeError):
        blockchain.now = blockchain.now - 1


def test_snapshot_and_restore(blockchain, treasury):
    alice = treasury("alice")
    a = deploy_counter(blockchain, alice)
    snap = blockchain.snapshot()
    lt = blockchain.lt
    alice.send(a, ton("0.1"), increase(10))
    assert counter_value(blockchain, a)[0] == 10
    blockchain.load_from(snap)
    assert counter_value(blockchain, a)[0] == 0
    assert blockchain.lt == lt
    # the restored chain keeps working and diverges on its own
    alice.send(a, ton("0.1"), increase(3))
    assert counter_value(blockchain, a)[0] == 3


def test_wallet_v5r1_deploys_and_sends(blockchain, treasury):
    bob = blockchain.wallet_v5("bob", ton(10))
    assert blockchain.account(bob.address).status == "uninit"
    target = treasury("target")
    r = bob.send(target.address, ton(2))
    ext = r.transactions[0]
    assert ext.external and ext.deployed and ext.success
    find_tx(r, from_=bob.address, to=target.address, value=ton(2))
    assert bob.seqno() == 1
    bob.send(target.address, ton(1))
    assert bob.seqno() == 2


def test_external_with_bad_signature_is_rejected(blockchain, treasury):
    bob = blockchain.wallet_v5("bob", ton(10), deploy=True)
    target = treasury("target")
    msg = message_relaxed(dest=target.address, value=ton(1))
    forged = bob.transfer_message([(msg, 3)], key=SigningKey(b"\x01" * 32))
    balance = blockchain.account(bob.address).balance
    with pytest.raises(EmulationError) as err:
        blockchain.send_message(forged)
    assert err.value.exit_code == 135  # wallet v5: signature mismatch
    assert "CHKSIGNU" in err.value.vm_log
    assert blockchain.account(bob.address).balance == balance
    # a replay of a correctly signed message is rejected too (seqno moved on)
    good = bob.transfer_message([(msg, 3)])
    blockchain.send_message(good)
    with pytest.raises(EmulationError):
        blockchain.send_message(good)


@pytest.mark.parametrize("boc", ["not base64!", "AAAA", b"\x00\x01garbage"])
def test_malformed_boc_raises_value_error(blockchain, boc):
    with pytest.raises(ValueError, match="malformed"):
        blockchain.send_message(boc)


def test_internal_injection_and_step_limit(blockchain, treasury):
    alice = treasury("alice")
    a = deploy_counter(blockchain, alice, 1)
    b = deploy_counter(blockchain, alice, 2)
    r = blockchain.send_internal(src=alice.address, to=a, value=ton(5), body=relay(40, b, a))
    assert len(r.transactions) == 41
    with pytest.raises(EmulationError, match="exceeded 10 transactions"):
        blockchain.send_message(
            internal_message(src=alice.address, dest=a, value=ton(5), body=relay(40, b, a)), max_steps=10
        )


def test_find_tx_failure_shows_the_trace(blockchain, treasury):
    alice = treasury("alice")
    a = deploy_counter(blockchain, alice)
    r = alice.send(a, ton("0.1"), increase(1))
    with pytest.raises(TransactionNotFound) as err:
        find_tx(r, to=a, success=False)
    assert "op=0x7e8764ef" in str(err.value)
    table = fee_table(r, {alice.address.to_str(): "alice"})
    assert "alice" in table and "gas" in table.splitlines()[0]
    assert len(table.splitlines()) == 2 + len(r.transactions)


def test_gas_convention_excludes_sender_transaction(blockchain, treasury, gas_snapshot):
    alice = treasury("alice")
    a = deploy_counter(blockchain, alice)
    r = alice.send(a, ton("0.1"), increase(1))
    assert r.gas() == r.transactions[1].gas_used
    assert r.fees() == sum(t.total_fees for t in r.transactions[1:])
    entry = gas_snapshot.record("sandbox.counter_increase", r)
    assert entry.gas == r.transactions[1].gas_used and entry.transactions == 1


def test_get_method_sees_balance_and_address(blockchain, treasury):
    """c7 carries the account's own address and balance, as on chain."""
    alice = treasury("alice")
    a = deploy_counter(blockchain, alice)
    state = blockchain.account(a)
    res = blockchain.run_get_method(a, "get_self")
    assert res.address(0) == a
    assert res.stack[1:] == [state.balance, blockchain.now]
    blockchain.advance(100)
    assert blockchain.run_get_method(a, "get_self").stack[2] == blockchain.now
