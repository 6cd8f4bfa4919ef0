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
    │   └── AttestationError            offchain.attestation refused a worker's evidence
    │       ├── EvidenceMalformed       the evidence (quote, dev quote, key) cannot be decoded
    │       ├── UnsupportedEvidence     not a kind this verifier checks (an SGX quote, an unknown kind)
    │       ├── DevNotAllowed           dev evidence while Root does not allow dev attestation
    │       ├── ReportDataMismatch      the quote does not bind this node key and encryption key
    │       ├── DebugTdRefused          the TD runs with its DEBUG attribute set
    │       ├── CollateralMissing       no collateral sent and none cached for the quote's FMSPC
    │       ├── CollateralExpired       collateral or a certificate is not valid at `now`
    │       ├── CollateralInvalid       collateral not Intel's, not parseable, or for another platform
    │       ├── QuoteSignatureInvalid   the report's own signature fails (header + TD report; dev quote)
    │       ├── QuoteCertificationInvalid  the signing key is not certified (QE report, PCK chain)
    │       ├── TcbRejected             the platform's TCB status or an advisory is outside the policy
    │       ├── ImageNotAllowed         the image measurement is not in Root's allowlist
    │       └── QuoteRejected           any other refusal by dcap-qvl (`reason` is its message)
    ├── DatasetError                    offchain.dataset refused a dataset (names the first bad record)
    │   ├── DatasetMalformed            a file is missing, unreadable or not in the dataset's layout
    │   ├── RecordHashMismatch          a record's fields do not hash to its `record_hash` cell
    │   ├── RecordSignatureInvalid      a record's signature is not its validator's over its hash
    │   ├── InclusionProofInvalid       a record's inclusion proof does not lead to the manifest root
    │   ├── ManifestMismatch            the manifest's root, sizes or counts disagree with the records
    │   ├── ManifestSignatureInvalid    a validator's signature over the manifest fails, or none signed
    │   └── UntrustedValidator          a signer (of the manifest or of a record) is not trusted
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
    "CollateralExpired",
    "CollateralInvalid",
    "CollateralMissing",
    "ConfigError",
    "ContractRefused",
    "DatasetError",
    "DatasetMalformed",
    "DebugTdRefused",
    "DevNotAllowed",
    "EmulationError",
    "EvidenceMalformed",
    "GetMethodError",
    "ImageNotAllowed",
    "InclusionProofInvalid",
    "InvalidMessage",
    "InvalidSignature",
    "ManifestMismatch",
    "ManifestSignatureInvalid",
    "PeerError",
    "PeerRejected",
    "ProtocolError",
    "ProviderError",
    "QuoteCertificationInvalid",
    "QuoteRejected",
    "QuoteSignatureInvalid",
    "RecordHashMismatch",
    "RecordSignatureInvalid",
    "ReportDataMismatch",
    "RequestFailed",
    "StaleVoucher",
    "StorageError",
    "TcbRejected",
    "TimeError",
    "UnsupportedEvidence",
    "UntrustedValidator",
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
    """A worker's attestation evidence was refused (`offchain.attestation`); `reason` says why."""

    def __init__(self, reason: str = "attestation refused") -> None:
        self.reason = reason
        super().__init__(reason)


class EvidenceMalformed(AttestationError):
    """The evidence cannot be decoded: `what` names the part (quote, collateral, dev quote, key)."""

    def __init__(self, what: str, detail: str) -> None:
        self.what = what
        self.detail = detail
        super().__init__(f"malformed {what}: {detail}")


class UnsupportedEvidence(AttestationError):
    """Evidence of a kind this verifier does not check (an SGX quote for the TDX verifier)."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"unsupported {kind!r} evidence: {detail}")


class DevNotAllowed(AttestationError):
    """Dev (insecure, self-declared) evidence while Root's params do not allow dev attestation."""

    def __init__(self) -> None:
        super().__init__("dev attestation is not allowed by Root's params")


class ReportDataMismatch(AttestationError):
    """The quote's report data is not the binding of this node key and encryption key."""

    def __init__(self, expected: bytes, actual: bytes) -> None:
        self.expected = expected
        self.actual = actual
        msg = f"report data {actual.hex()[:16]}.. does not bind these keys (expected {expected.hex()[:16]}..)"
        super().__init__(msg)


class DebugTdRefused(AttestationError):
    """The TD's attributes have DEBUG set: its memory is open to the host."""

    def __init__(self, td_attributes: bytes) -> None:
        self.td_attributes = td_attributes
        super().__init__(f"debug TD refused (td_attributes {td_attributes.hex()})")


class CollateralMissing(AttestationError):
    """No collateral came with the quote and none is cached for its FMSPC."""

    def __init__(self, fmspc: bytes) -> None:
        self.fmspc = fmspc
        super().__init__(f"no collateral sent and none cached for FMSPC {fmspc.hex().upper()}")


class CollateralExpired(AttestationError):
    """The collateral (a CRL, TCB info, QE identity) or a certificate is not valid at `now`."""

    def __init__(self, now: int, detail: str) -> None:
        self.now = now
        self.detail = detail
        super().__init__(f"collateral not valid at {now}: {detail}")


class CollateralInvalid(AttestationError):
    """The collateral is not parseable, not signed by Intel, or not for this quote's platform."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"invalid collateral: {detail}")


class QuoteSignatureInvalid(AttestationError):
    """The report's own signature fails: the attestation key's over header + TD report (a change
    to either or to the signature), or the node key's over a dev quote."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"quote signature invalid: {detail}")


class QuoteCertificationInvalid(AttestationError):
    """The key that signed the report is not vouched for by Intel: QE report, its signature or hash,
    the PCK certificate chain (or a revoked PCK certificate)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"quote certification invalid: {detail}")


class TcbRejected(AttestationError):
    """The platform's TCB status (or one of its advisories) is outside the verifier's policy;
    `status` is None when dcap-qvl found no TCB level at all."""

    def __init__(self, status: str | None, advisory_ids: tuple[str, ...] = (), *, detail: str = "") -> None:
        self.status = status
        self.advisory_ids = advisory_ids
        self.detail = detail
        what = f"TCB status {status!r}" if status is not None else "no TCB status"
        adv = f", advisories {list(advisory_ids)}" if advisory_ids else ""
        super().__init__(f"{what}{adv} refused{': ' + detail if detail else ''}")


class ImageNotAllowed(AttestationError):
    """The image measurement (32 bytes; Root's allowlist holds it as uint256) is not allowed."""

    def __init__(self, measurement: bytes) -> None:
        self.measurement = measurement
        super().__init__(f"image {measurement.hex()} is not in Root's image allowlist")


class QuoteRejected(AttestationError):
    """dcap-qvl refused the quote for a reason none of the other classes names."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"quote rejected: {detail}")


class DatasetError(CocoonError):
    """A dataset failed verification: where (a record, a shard, the manifest) and why.

    For a record, `index` is its position in the dataset (its Merkle leaf), `shard` its
    Parquet file, `row` its row there and `url` its URL; all are None for the manifest.
    """

    def __init__(
        self,
        reason: str,
        *,
        index: int | None = None,
        shard: str | None = None,
        row: int | None = None,
        url: str | None = None,
        where: str | None = None,
    ) -> None:
        self.reason = reason
        self.index = index
        self.shard = shard
        self.row = row
        self.url = url
        if where is None:
            if index is not None:
                # a URL comes from the data: escape what could break the one-line report
                shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in url) if url is not None else None
                where = f"record {index} ({shard} row {row}, {shown})"
            elif shard is not None:
                where = shard
            else:
                where = "dataset"
        self.where = where
        super().__init__(f"{where}: {reason}")


class DatasetMalformed(DatasetError):
    """A file is missing or unreadable, a column or value is not the dataset's layout."""


class RecordHashMismatch(DatasetError):
    """The record's fields (canonical JSON) do not hash to the `record_hash` stored with it."""


class RecordSignatureInvalid(DatasetError):
    """The record's signature is not its `validator_key`'s over its hash."""


class InclusionProofInvalid(DatasetError):
    """The record's inclusion proof does not lead from its hash to the manifest's Merkle root."""


class ManifestMismatch(DatasetError):
    """A manifest field (`field`: merkle.root, counts.bytes, ...) disagrees with the records."""

    def __init__(self, field: str, expected: object, actual: object) -> None:
        self.field = field
        self.expected = expected
        self.actual = actual
        super().__init__(f"{field} is {expected} but the records give {actual}", where="manifest.json")


class ManifestSignatureInvalid(DatasetError):
    """A validator's signature over the manifest digest fails (`validator` hex), or none signed."""

    def __init__(self, reason: str, *, validator: str | None = None) -> None:
        self.validator = validator
        super().__init__(reason, where="manifest.json")


class UntrustedValidator(DatasetError):
    """A validator key (`validator` hex) signed the manifest, or a record, and is not trusted."""

    def __init__(
        self,
        validator: str,
        *,
        index: int | None = None,
        shard: str | None = None,
        row: int | None = None,
        url: str | None = None,
    ) -> None:
        self.validator = validator
        if index is None:
            super().__init__(f"validator {validator} signed the manifest but is not trusted", where="manifest.json")
        else:
            super().__init__(
                f"validator {validator} signed this record but is not trusted",
                index=index, shard=shard, row=row, url=url,
            )


class ConfigError(CocoonError):
    pass


class StorageError(CocoonError):
    pass
