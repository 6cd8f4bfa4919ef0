"""A provider agent's registration, shared by the worker (gpu), the data node (bandwidth),
and the router and validator when their config names a `stake` (`register_from_config`: so
their share of each epoch lands in a Provider they can claim from).

At start an agent makes its wallet's Provider of its role registered, active and holding the
node key it runs with: it registers (staking from the wallet) when the Provider is not
registered, and sends UpdateNode when it holds another key or endpoint (a TEE worker's key is
new at every boot). It never unstakes or tops up by itself: those are the owner's decisions.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nacl.signing import SigningKey

from offchain.errors import ConfigError
from offchain.ton.network import NetworkProvider
from wrappers.errors import ExitCode
from wrappers.messages import RefuseRegistration
from wrappers.opcodes import Op
from wrappers.provider import PROVIDER_OP_FEE, PROVIDER_STORAGE_RESERVE, REGISTER_FEE, Provider, Role
from wrappers.root import Root

__all__ = ["ensure_registered", "register_from_config"]

log = logging.getLogger("cocoon.registration")


async def ensure_registered(
    net: NetworkProvider,
    root: Root,
    *,
    role: Role,
    key: SigningKey,
    stake: int,
    endpoint: str,
    image_hash: int | None = None,
    timeout: float = 60.0,
) -> Provider:
    """Make this wallet's Provider of `role` registered, active and holding `key`.

    Raises:
        ConfigError: Root refused the registration (its reason named), or the Provider is
            registered but inactive (unstaking or slashed), or UpdateNode did not apply.
    """
    what = role.name.lower()
    wallet = net.sender()
    addr = await root.get_provider_address(net.open(root), wallet.address, role)
    p = Provider.create_from_address(addr)
    want = int.from_bytes(bytes(key.verify_key), "big")
    if not await net.is_contract_deployed(addr) or not (await p.get_provider_data(net.open(p))).node_key:
        log.info("registering %s provider %s with %d nanoTON staked", what, addr.to_str(), stake)
        sent = await root.send_register_provider(
            net.open(root),
            wallet,
            value=stake + REGISTER_FEE + PROVIDER_STORAGE_RESERVE,
            role=role,
            stake=stake,
            node_key=want,
            endpoint=endpoint,
            image_hash=image_hash,
        )
        for tx in await sent.wait_delivered(timeout=timeout):
            for m in tx.out_msgs:
                if m.op == Op.REFUSE_REGISTRATION:
                    reason = RefuseRegistration.from_cell(m.body).reason
                    name = ExitCode(reason).name if reason in ExitCode._value2member_map_ else str(reason)
                    hint = " (is the image hash allowlisted?)" if role == Role.GPU else ""
                    raise ConfigError(f"Root refused the {what} registration: {name}{hint}")
        await net.wait_for_deploy(addr, timeout=timeout)
    data = await _wait_registered(net, p, timeout)
    if not data.active:
        raise ConfigError(f"{what} Provider {addr.to_str()} is registered but not active (state {data.state.name})")
    if data.node_key != want or data.endpoint != endpoint:
        log.info("updating the node key and endpoint of %s", addr.to_str())
        sent = await p.send_update_node(net.open(p), wallet, value=PROVIDER_OP_FEE, node_key=want, endpoint=endpoint)
        await sent.wait_delivered(timeout=timeout)
        data = await p.get_provider_data(net.open(p))
        if data.node_key != want:
            raise ConfigError(f"UpdateNode was not applied to {addr.to_str()}")
    return p


async def _wait_registered(net: NetworkProvider, p: Provider, timeout: float) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        data = await p.get_provider_data(net.open(p))
        if data.node_key or asyncio.get_running_loop().time() > deadline:
            return data
        await asyncio.sleep(0.2)


async def register_from_config(cfg: Any, net: NetworkProvider, role: Role, key: SigningKey) -> Provider | None:
    """`ensure_registered` for `role` with the config's `stake` (TON) and `endpoint`
    (default `<role>://local`), or None when the config names no stake (nothing is sent)."""
    if cfg.get("stake") is None:
        return None
    from scripts._common import parse_ton

    root = Root.create_from_address(cfg.need("root"))
    return await ensure_registered(net, root, role=role, key=key, stake=parse_ton(cfg.get("stake"), "stake"),
                                   endpoint=str(cfg.get("endpoint", f"{role.name.lower()}://local")))
