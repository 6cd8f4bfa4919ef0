"""One exception tree for all off-chain code.

    CocoonError
    ├── ChainError
    │   ├── EmulationError      the emulator itself could not run a transaction
    │   ├── GetMethodError      a get-method ended with a non-zero exit code
    │   ├── TimeError           the sandbox clock was asked to go backwards
    │   ├── ProviderError       a network provider (localnet/testnet) failed a request
    │   └── ContractRefused     a contract refused a message an agent or the SDK sent it
    ├── BuildError              the Tolk compiler rejected a contract
    ├── ProtocolError
    │   ├── InvalidMessage
    │   ├── InvalidSignature
    │   ├── StaleVoucher
    │   ├── VoucherOverspent
    │   └── RequestFailed       a peer answered a request with a typed Error frame
    ├── PeerError
    │   ├── PeerRejected
    │   └── AttestationError
    ├── ConfigError
    └── StorageError

A contract that fails (non-zero exit code) is *not* an exception: it is a transaction
with `success=False`. Exceptions are for tooling that cannot do its job.
"""

from __future__ import annotations

__all__ = [
    "AttestationError",
    "BuildError",
    "ChainError",
    "CocoonError",
    "ConfigError",
    "ContractRefused",
    "EmulationError",
    "GetMethodError",
    "InvalidMessage",
    "InvalidSignature",
    "PeerError",
    "PeerRejected",
    "ProtocolError",
    "ProviderError",
    "RequestFailed",
    "StaleVoucher",
    "StorageError",
    "TimeError",
    "VoucherOverspent",
]


class CocoonError(Exception):
    """Root of every error raised on purpose by Cocoon code."""


class ChainError(CocoonError):
    pass


class EmulationError(ChainError):
    """The emulator could not produce a transaction at all (not a contract failure)."""

    def __init__(self, reason: str, *, exit_code: int | None = None, vm_log: str = "") -> None:
        self.reason = reason
        self.exit_code = exit_code
        self.vm_log = vm_log
        tail = "\n".join(vm_log.strip().splitlines()[-20:])
        msg = reason if exit_code is None else f"{reason} (exit code {exit_code})"
        super().__init__(f"{msg}\n--- vm log tail ---\n{tail}" if tail else msg)


class GetMethodError(ChainError):
    def __init__(self, method: str, exit_code: int, *, gas_used: int = 0, vm_log: str = "") -> None:
        self.method = method
        self.exit_code = exit_code
        self.gas_used = gas_used
        self.vm_log = vm_log
        tail = "\n".join(vm_log.strip().splitlines()[-20:])
        msg = f"get-method {method!r} failed with exit code {exit_code} (gas {gas_used})"
        super().__init__(f"{msg}\n--- vm log tail ---\n{tail}" if tail else msg)


class TimeError(ChainError):
    def __init__(self, current: int, requested: int) -> None:
        self.current = current
        self.requested = requested
        super().__init__(f"time cannot go backwards: now={current}, requested={requested}")


class ProviderError(ChainError):
    def __init__(self, message: str, *, code: int | None = None) -> None:
        self.code = code
        super().__init__(message if code is None else f"{message} (code {code})")


class ContractRefused(ChainError):
    """A contract's transaction for our message failed (`exit_code` is an ExitCode value)."""

    def __init__(self, what: str, address: str, exit_code: int | None) -> None:
        self.what = what
        self.address = address
        self.exit_code = exit_code
        try:
            from wrappers.errors import ExitCode

            name = ExitCode(exit_code).name if exit_code is not None else "no transaction"
        except ValueError:
            name = f"exit code {exit_code}"
        super().__init__(f"{what} refused by {address}: {name}")


class BuildError(CocoonError):
    """The Tolk compiler rejected a source; `message` is the compiler's own text (file:line)."""

    def __init__(self, entry: str, message: str) -> None:
        self.entry = entry
        self.compiler_message = message.strip()
        super().__init__(f"{entry}: {self.compiler_message}")


class ProtocolError(CocoonError):
    pass


class InvalidMessage(ProtocolError):
    pass


class InvalidSignature(ProtocolError):
    pass


class StaleVoucher(ProtocolError):
    pass


class VoucherOverspent(ProtocolError):
    pass


class RequestFailed(ProtocolError):
    """A peer refused or failed a request: `code` is an `offchain.protocol.wire.ErrorCode`."""

    def __init__(self, code: int, message: str = "", *, request_id: int | None = None) -> None:
        self.code = code
        self.request_id = request_id
        self.detail = message
        try:
            from offchain.protocol.wire import ErrorCode

            name = ErrorCode(code).name
        except ValueError:
            name = f"code {code}"
        super().__init__(f"{name}: {message}" if message else name)


class PeerError(CocoonError):
    pass


class PeerRejected(PeerError):
    pass


class AttestationError(PeerError):
    pass


class ConfigError(CocoonError):
    pass


class StorageError(CocoonError):
    pass
