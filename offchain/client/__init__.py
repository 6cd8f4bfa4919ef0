"""The client SDK: open a Channel, sign vouchers, get embeddings from the network."""

from __future__ import annotations

from offchain.client._client import ClientConfig, CocoonClient, EmbeddingResult

__all__ = ["ClientConfig", "CocoonClient", "EmbeddingResult"]
