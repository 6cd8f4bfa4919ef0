"""Root's AnchorDataset: any sender logs a dataset manifest's digest (DatasetAnchored, an
external-out message) and gets the value back less what it cost; Root's storage and balance
are untouched; too little value bounces with ANCHOR_FEE; a bounce moves nothing."""

from __future__ import annotations

import base64
import hashlib

import pytest
from pytoniq_core import Address, Cell
from pytoniq_core.tlb.transaction import MessageAny

from offchain.ton.messages import internal_message
from offchain.ton.transaction import SendResult, Transaction, find_tx, raw
from tests.contracts.conftest import Env, assert_conserved
from wrappers.errors import ExitCode
from wrappers.messages import AnchorDataset, DatasetAnchored
from wrappers.opcodes import Op
from wrappers.root import ANCHOR_FEE, Root

DIGEST = hashlib.sha256(b"a dataset manifest").digest()


def logs_of(tx: Transaction) -> list[DatasetAnchored]:
    """The DatasetAnchored logs (external-out messages) `tx` emitted."""
    out = []
    for m in tx.out_messages:
        if m.kind == "external-out":
            msg = MessageAny.deserialize(Cell.one_from_boc(base64.b64decode(m.boc)).begin_parse())
            assert msg.info.dest is None, "the log has no destination (addr_none)"
            out.append(DatasetAnchored.from_cell(msg.body))
    return out


def anchor(env: Env, who, value: int = ANCHOR_FEE, *, query_id: int = 0) -> SendResult:
    return who.send(env.root.address, value, Root.anchor_dataset_body(DIGEST, query_id))


@pytest.mark.gas
def test_anchor_logs_the_digest_and_sender_and_returns_the_excess(env: Env, gas_snapshot) -> None:
    alice = env.bc.treasury("alice")
    data_before = env.bc.account(env.root.address).data
    before = env.balances(env.root, alice)
    res = anchor(env, alice, query_id=42)
    tx = find_tx(res, from_=alice.address, to=env.root.address, op=Op.ANCHOR_DATASET, success=True)
    assert logs_of(tx) == [DatasetAnchored(query_id=42, digest=int.from_bytes(DIGEST, "big"), sender=alice.address)]
    assert len(res.externals) == 1 and res.externals[0].op == Op.DATASET_ANCHORED
    excess = find_tx(res, from_=env.root.address, to=alice.address, op=Op.RETURN_EXCESS, success=True)
    # Root keeps none of it: the value less Root's fees (gas, the log) and the excess message's
    # forwarding fee comes back; Root's balance moves only by the storage fee it owed anyway
    carried = sum(m.fwd_fee for m in tx.out_messages if m.kind == "internal")
    assert excess.value == ANCHOR_FEE - tx.total_fees + tx.summary.storage_fees - carried
    assert env.balance(env.root) == before[raw(env.root.address)] - tx.summary.storage_fees
    assert_conserved(env, res, before)
    assert env.bc.account(env.root.address).data.hash == data_before.hash  # storage untouched
    # Root's transaction and the excess landing; about 0.003 TON at today's prices, far below ANCHOR_FEE
    entry = gas_snapshot.record("root.anchor_dataset", res)
    assert entry.transactions == 2 and res.gas() <= 6500
    assert tx.total_fees + carried < ANCHOR_FEE // 2


def test_a_larger_value_comes_back_in_full_less_the_fees(env: Env) -> None:
    alice = env.bc.treasury("alice")
    small, large = anchor(env, alice), anchor(env, alice, ANCHOR_FEE * 300)
    back = [find_tx(r, from_=env.root.address, to=alice.address, op=Op.RETURN_EXCESS).value for r in (small, large)]
    assert back[1] - back[0] == ANCHOR_FEE * 299


def test_any_sender_may_anchor(env: Env) -> None:
    for who in (env.owner, env.bc.treasury("stranger"), env.treasury):
        res = anchor(env, who, query_id=7)
        tx = find_tx(res, to=env.root.address, op=Op.ANCHOR_DATASET, success=True)
        assert [log.sender for log in logs_of(tx)] == [who.address]
        find_tx(res, from_=env.root.address, to=who.address, op=Op.RETURN_EXCESS, success=True)


async def test_anchor_through_the_wrapper(env: Env) -> None:
    bob = env.bc.treasury("bob")
    res = await env.root.send_anchor_dataset(env.root_p, bob.sender(), digest=DIGEST, query_id=3)
    tx = find_tx(res, to=env.root.address, op=Op.ANCHOR_DATASET, success=True)
    assert [(log.query_id, log.sender) for log in logs_of(tx)] == [(3, bob.address)]


def test_a_sender_without_code_still_gets_the_excess(env: Env) -> None:
    """The excess is non-bounceable: it lands on the sender's balance whatever its contract does."""
    nobody = Address("0:" + "99" * 32)
    res = env.bc.send_internal(src=nobody, to=env.root.address, value=ANCHOR_FEE, body=Root.anchor_dataset_body(DIGEST))
    find_tx(res, to=env.root.address, op=Op.ANCHOR_DATASET, success=True)
    back = find_tx(res, from_=env.root.address, to=nobody, op=Op.RETURN_EXCESS)
    assert back.value > 0 and env.balance(nobody) == back.value


def test_too_little_value_is_refused_and_bounced(env: Env) -> None:
    alice = env.bc.treasury("alice")
    root_before = env.balance(env.root)
    res = anchor(env, alice, ANCHOR_FEE - 1)
    tx = find_tx(res, to=env.root.address, op=Op.ANCHOR_DATASET, exit_code=ExitCode.ANCHOR_FEE)
    assert not tx.success and logs_of(tx) == [] and res.externals == []
    bounce = find_tx(res, from_=env.root.address, to=alice.address, bounced=True)
    assert bounce.value == ANCHOR_FEE - 1 - tx.total_fees + tx.summary.storage_fees - sum(
        m.fwd_fee for m in tx.out_messages
    )
    assert env.balance(env.root) == root_before - tx.summary.storage_fees


def test_a_bounced_anchor_moves_nothing(env: Env) -> None:
    """A bounced AnchorDataset (Root never sends one, but anyone's bounce can carry its body) goes
    to Root's bounce handler: no log, no excess, the value stays (as for Root's other bounces)."""
    body = Cell.empty().to_builder().store_uint(0xFFFFFFFF, 32)
    body = body.store_cell(Root.anchor_dataset_body(DIGEST)).end_cell()
    msg = internal_message(src=env.bc.treasury("alice").address, dest=env.root.address, value=ANCHOR_FEE,
                           body=body, bounce=False, bounced=True, created_lt=env.bc.lt, created_at=env.bc.now)
    root_before = env.balance(env.root)
    res = env.bc.send_message(msg)
    tx = find_tx(res, to=env.root.address, bounced=True, success=True)
    assert tx.out_messages == () and res.externals == []
    assert env.balance(env.root) == root_before + ANCHOR_FEE - tx.total_fees


def test_anchor_body_layout() -> None:
    body = Root.anchor_dataset_body(DIGEST, query_id=5)
    assert AnchorDataset.from_cell(body) == AnchorDataset(query_id=5, digest=int.from_bytes(DIGEST, "big"))
    assert Root.anchor_dataset_body(int.from_bytes(DIGEST, "big"), 5).hash == body.hash
    with pytest.raises(ValueError, match="32 bytes"):
        Root.anchor_dataset_body(DIGEST[:31])
