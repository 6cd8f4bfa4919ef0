"""The gateway's settings: what differs between deployments, nothing the code can derive."""

from __future__ import annotations

from dataclasses import dataclass, field

from offchain.errors import ConfigError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "GatewayConfig"]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
"""8 MiB: 2048 inputs of ~4 KB of JSON each, i.e. above the largest request the mesh accepts
(`wire.MAX_FRAME_BYTES` is 4 MiB of msgpack), so the limit only stops abuse."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """How one gateway behaves.

    Attributes:
        api_key: when set, every `/v1` route requires `Authorization: Bearer <api_key>`; when
            None the gateway is open (it is meant to listen on loopback next to its user, who
            pays for every request through their own channel). Never shown in `repr`.
        max_body_bytes: larger request bodies get 413 before they are parsed.
        owned_by: the `owned_by` field of every model object.
    """

    api_key: str | None = field(default=None, repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    owned_by: str = "cocoon"

    def __post_init__(self) -> None:
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("gateway api_key is empty: pass None to disable authentication")
        if self.max_body_bytes < 1:
            raise ConfigError(f"gateway max_body_bytes must be positive, got {self.max_body_bytes}")
