"""The router agent: admits clients by their channel, workers by their Provider, meters and redeems."""

from __future__ import annotations

from offchain.router._server import Router, RouterConfig

__all__ = ["Router", "RouterConfig"]
