"""Wallet v5r1 for the sandbox: the real wallet contract, driven by signed external messages.

The same code and message layout the wallet uses on TON; keys are ed25519 (PyNaCl).
"""

from __future__ import annotations

from dataclasses import dataclass

from nacl.signing import SigningKey
from pytoniq.contract.wallets.wallet_v5 import WALLET_V5_R1_CODE
from pytoniq_core import Address, Cell, StateInit, begin_cell
from pytoniq_core.tlb.custom.wallet import WalletV5R1Data

from offchain.ton.messages import external_message, message_relaxed
from offchain.ton.transaction import SendResult

__all__ = ["WALLET_V5R1_CODE", "SandboxWalletV5", "wallet_v5_id", "wallet_v5_transfer_body"]

WALLET_V5R1_CODE: Cell = WALLET_V5_R1_CODE
_OP_SIGNED_EXTERNAL = 0x7369676E  # "sign"
_OP_ACTION_SEND_MSG = 0x0EC3C86D
MAINNET_GLOBAL_ID = -239


def wallet_v5_id(network_global_id: int = MAINNET_GLOBAL_ID, workchain: int = 0, subwallet: int = 0) -> int:
    """wallet_id = network_global_id XOR context_id (client context, version 0)."""
    ctx = (1 << 31) | ((workchain & 0xFF) << 23) | (subwallet & 0x7FFF)
    return (ctx ^ network_global_id) & 0xFFFFFFFF


def _out_list(messages: list[tuple[Cell, int]]) -> Cell:
    out = Cell.empty()
    for msg, mode in messages:
        out = (
            begin_cell()
            .store_ref(out)
            .store_uint(_OP_ACTION_SEND_MSG, 32)
            .store_uint(mode, 8)
            .store_ref(msg)
            .end_cell()
        )
    return out


def wallet_v5_transfer_body(
    key: SigningKey, *, wallet_id: int, seqno: int, valid_until: int, messages: list[tuple[Cell, int]]
) -> Cell:
    """The signed external body: op, wallet_id, valid_until, seqno, actions, then the signature."""
    if not 1 <= len(messages) <= 255:
        raise ValueError("wallet v5 sends 1 to 255 messages at once")
    unsigned = (
        begin_cell()
        .store_uint(_OP_SIGNED_EXTERNAL, 32)
        .store_uint(wallet_id, 32)
        .store_uint(valid_until, 32)
        .store_uint(seqno, 32)
        .store_bit(1)
        .store_ref(_out_list(messages))
        .store_bit(0)
        .end_cell()
    )
    signature = key.sign(unsigned.hash).signature
    return begin_cell().store_cell(unsigned).store_bytes(signature).end_cell()


@dataclass
class SandboxWalletV5:
    """A wallet v5r1 living on a sandbox `Blockchain`."""

    blockchain: object  # offchain.ton.blockchain.Blockchain (kept loose to avoid an import cycle)
    key: SigningKey
    wallet_id: int
    workchain: int = 0

    @property
    def public_key(self) -> bytes:
        return bytes(self.key.verify_key)

    @property
    def init(self) -> StateInit:
        data = WalletV5R1Data(
            seqno=0, wallet_id=self.wallet_id, public_key=self.public_key, extensions=None, is_signature_allowed=True
        ).serialize()
        return StateInit(code=WALLET_V5R1_CODE, data=data)

    @property
    def address(self) -> Address:
        return Address((self.workchain, self.init.serialize().hash))

    def seqno(self) -> int:
        if self.blockchain.account(self.address).status != "active":  # type: ignore[attr-defined]
            return 0
        return self.blockchain.run_get_method(self.address, "seqno").int(0)  # type: ignore[attr-defined]

    def transfer_message(
        self,
        messages: list[tuple[Cell, int]],
        *,
        seqno: int | None = None,
        valid_until: int | None = None,
        key: SigningKey | None = None,
    ) -> Cell:
        """The external message (with StateInit while undeployed); `key` lets tests sign wrongly."""
        bc = self.blockchain
        seq = self.seqno() if seqno is None else seqno
        until = valid_until if valid_until is not None else bc.now + 60  # type: ignore[attr-defined]
        body = wallet_v5_transfer_body(
            key or self.key, wallet_id=self.wallet_id, seqno=seq, valid_until=until, messages=messages
        )
        deployed = bc.account(self.address).status == "active"  # type: ignore[attr-defined]
        return external_message(dest=self.address, body=body, init=None if deployed else self.init)

    def send(
        self,
        to: Address | str,
        value: int,
        body: Cell | None = None,
        *,
        init: StateInit | None = None,
        bounce: bool = True,
        mode: int = 3,
    ) -> SendResult:
        dest = to if isinstance(to, Address) else Address(to)
        msg = message_relaxed(dest=dest, value=value, body=body, init=init, bounce=bounce)
        return self.blockchain.send_message(self.transfer_message([(msg, mode)]))  # type: ignore[attr-defined]
