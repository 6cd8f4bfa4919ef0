"""A local network of real processes (localnet, router, workers, gateway) and its supervisor."""

from __future__ import annotations

from offchain.devnet._network import Devnet, DevnetConfig, wallet_env
from offchain.devnet._supervisor import Proc, Supervisor, SupervisorError, free_port

__all__ = ["Devnet", "DevnetConfig", "Proc", "Supervisor", "SupervisorError", "free_port", "wallet_env"]
