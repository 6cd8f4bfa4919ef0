"""Python mirrors of the Cocoon contracts: opcodes, exit codes, message codecs, wrappers."""

from __future__ import annotations

from wrappers.errors import ExitCode
from wrappers.opcodes import Op
from wrappers.provider import Provider, ProviderConfig, ProviderData, ProviderState, Role
from wrappers.root import Root, RootConfig

__all__ = [
    "ExitCode",
    "Op",
    "Provider",
    "ProviderConfig",
    "ProviderData",
    "ProviderState",
    "Role",
    "Root",
    "RootConfig",
]
