"""What wrappers talk to: a contract provider (one address) and a sender (who pays).

As in Blueprint, wrappers never pick a network: every `send_*`/`get_*` takes a
`ContractProvider` first. `SandboxProvider` runs on a `Blockchain`; the network
providers (localnet/testnet) implement the same two protocols.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from pytoniq_core import Address, Cell, StateInit

from offchain.ton.executor import StackValue

if TYPE_CHECKING:
    from offchain.ton.blockchain import AccountState, Blockchain, Treasury

__all__ = ["ContractProvider", "SandboxProvider", "SandboxSender", "Sender"]


class Sender(Protocol):
    address: Address

    async def send(
        self,
        *,
        to: Address,
        value: int,
        body: Cell | None = None,
        init: StateInit | None = None,
        bounce: bool = True,
        mode: int = 1,
    ) -> Any:
        """Send one internal message; returns what the backend reports (a SendResult on the sandbox)."""
        ...


class ContractProvider(Protocol):
    address: Address

    async def internal(
        self, via: Sender, *, value: int, body: Cell | None = None, bounce: bool = True, mode: int = 1
    ) -> Any:
        """Send to this contract through `via`, attaching its StateInit while it is not deployed."""
        ...

    async def get(self, method: str, stack: list[StackValue] | None = None) -> list[StackValue]: ...

    async def state(self) -> AccountState: ...


class SandboxSender:
    """A Treasury as a `Sender` (its transaction is the 'wallet' transaction of each send)."""

    def __init__(self, treasury: Treasury) -> None:
        self.treasury = treasury
        self.address = treasury.address

    async def send(
        self,
        *,
        to: Address,
        value: int,
        body: Cell | None = None,
        init: StateInit | None = None,
        bounce: bool = True,
        mode: int = 1,
    ) -> Any:
        return self.treasury.send(to, value, body, init=init, bounce=bounce, mode=mode)


class SandboxProvider:
    """`ContractProvider` for one address of a sandbox `Blockchain`."""

    def __init__(self, blockchain: Blockchain, address: Address, init: StateInit | None = None) -> None:
        self.blockchain = blockchain
        self.address = address
        self.init = init

    async def internal(
        self, via: Sender, *, value: int, body: Cell | None = None, bounce: bool = True, mode: int = 1
    ) -> Any:
        init = None
        if self.init is not None and self.blockchain.account(self.address).status != "active":
            init = self.init
        return await via.send(to=self.address, value=value, body=body, init=init, bounce=bounce, mode=mode)

    async def get(self, method: str, stack: list[StackValue] | None = None) -> list[StackValue]:
        return self.blockchain.run_get_method(self.address, method, stack or []).stack

    async def state(self) -> AccountState:
        return self.blockchain.account(self.address)
