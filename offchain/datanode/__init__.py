"""The data node (bandwidth provider): relays TCP streams for its router, sees only TLS ciphertext."""

from __future__ import annotations

from offchain.datanode._agent import DataNode, DataNodeConfig
from offchain.datanode._policy import Caps, Policy, TokenBucket
from offchain.datanode._relay import Relay, StreamStats

__all__ = ["Caps", "DataNode", "DataNodeConfig", "Policy", "Relay", "StreamStats", "TokenBucket"]
