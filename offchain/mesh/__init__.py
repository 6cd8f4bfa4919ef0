"""The websocket transport of the agent mesh: frames, limits, heartbeats, handshake."""

from __future__ import annotations

from offchain.mesh._reconnect import LOST, keep_connected
from offchain.mesh._transport import Limits, Peer, accept_peer, connect, join

__all__ = ["LOST", "Limits", "Peer", "accept_peer", "connect", "join", "keep_connected"]
