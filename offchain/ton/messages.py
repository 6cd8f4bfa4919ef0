"""Builders for the messages the sandbox and the wrappers send (pytoniq-core cells)."""

from __future__ import annotations

from pytoniq_core import Address, Builder, Cell, StateInit, begin_cell

__all__ = ["external_message", "internal_message", "message_relaxed", "state_init_address"]


def state_init_address(init: StateInit, workchain: int = 0) -> Address:
    """The address a StateInit deploys to: hash of its cell in `workchain`."""
    return Address((workchain, init.serialize().hash))


def _store_init_and_body(b: Builder, init: StateInit | None, body: Cell | None) -> Builder:
    if init is None:
        b.store_bit(0)
    else:
        b.store_bit(1).store_bit(1).store_ref(init.serialize())  # Maybe (Either _ ^StateInit)
    body = body if body is not None else Cell.empty()
    b.store_bit(1).store_ref(body)  # body as a reference: always valid whatever its size
    return b


def internal_message(
    *,
    src: Address | None,
    dest: Address,
    value: int,
    body: Cell | None = None,
    init: StateInit | None = None,
    bounce: bool = True,
    bounced: bool = False,
    created_lt: int = 0,
    created_at: int = 0,
) -> Cell:
    """A full internal Message (as the validator would deliver it, with `src` filled)."""
    b = begin_cell().store_uint(0, 1).store_bit(1).store_bit(bounce).store_bit(bounced)
    b.store_address(src).store_address(dest).store_coins(value).store_bit(0)
    b.store_coins(0).store_coins(0).store_uint(created_lt, 64).store_uint(created_at, 32)
    return _store_init_and_body(b, init, body).end_cell()


def message_relaxed(
    *,
    dest: Address,
    value: int,
    body: Cell | None = None,
    init: StateInit | None = None,
    bounce: bool = True,
) -> Cell:
    """A MessageRelaxed for a contract or wallet to send (src addr_none, filled by the chain)."""
    return internal_message(src=None, dest=dest, value=value, body=body, init=init, bounce=bounce)


def external_message(*, dest: Address, body: Cell, init: StateInit | None = None) -> Cell:
    """An external-in message to `dest`."""
    b = begin_cell().store_uint(0b10, 2).store_uint(0, 2).store_address(dest).store_coins(0)
    if init is None and len(body.bits) + b.used_bits + 2 <= 1023 and len(body.refs) <= 4:
        # body inline (Either X ^X with the left branch), as @ton/core's storeMessage does
        return b.store_bit(0).store_bit(0).store_cell(body).end_cell()
    return _store_init_and_body(b, init, body).end_cell()
