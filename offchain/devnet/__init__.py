"""A local network of real processes (localnet, router, workers, gateway) and its supervisor,
and the local web (HTTPS sites on loopback with a test CA) that tests and data nodes fetch."""

from __future__ import annotations

from offchain.devnet._network import Devnet, DevnetConfig, wallet_env
from offchain.devnet._supervisor import Proc, Supervisor, SupervisorError, free_port
from offchain.devnet._web import LocalWeb, Resolver, ResolvingTransport, WebConfig

__all__ = [
    "Devnet",
    "DevnetConfig",
    "LocalWeb",
    "Proc",
    "Resolver",
    "ResolvingTransport",
    "Supervisor",
    "SupervisorError",
    "WebConfig",
    "free_port",
    "wallet_env",
]
