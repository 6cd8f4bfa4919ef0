"""What the Blueprint-style scripts share: amounts, progress lines, following a trace, one-line failures."""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation

from pytoniq_core import Address

from offchain.errors import ChainError, ConfigError
from offchain.ton._chain_types import ChainTx
from offchain.ton.network import NetworkProvider, SentMessage, wait_for_transaction
from wrappers.errors import ExitCode
from wrappers.messages import RefuseRegistration
from wrappers.opcodes import Op

__all__ = [
    "INSECURE_DEV_FLAG",
    "LOCAL_NETWORKS",
    "ScriptError",
    "fmt_ton",
    "follow",
    "guard_dev_attestation",
    "parse_ton",
    "progress",
    "require_balance",
    "table",
]

LOCAL_NETWORKS = ("localnet", "sandbox")
"""Where the insecure `dev` attestation (no TEE hardware) may be turned on without asking."""
INSECURE_DEV_FLAG = "--insecure-dev-attestation"

_WALLET_EXIT_CODES = {
    132: "the wallet refuses signed messages",
    133: "the wallet's seqno moved (another send in flight?)",
    135: "the wallet signature is invalid",
    136: "the message expired before it reached the chain",
}


class ScriptError(ChainError):
    """A script's action was refused on chain; the message is the one line the CLI prints."""

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        self.exit_code = exit_code
        super().__init__(message)


def parse_ton(text: str | int | float, what: str = "amount") -> int:
    """ "1.5" TON → nanoTON, exactly.

    Raises:
        ConfigError: not a non-negative number.
    """
    try:
        value = Decimal(str(text))
    except InvalidOperation as err:
        raise ConfigError(f"{what}: {text!r} is not a number of TON") from err
    if value < 0:
        raise ConfigError(f"{what} must not be negative")
    return int(value * 10**9)


def fmt_ton(nano: int) -> str:
    text = f"{Decimal(nano) / 10**9:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} TON"


def guard_dev_attestation(network: str, *, insecure: bool, what: str) -> None:
    """Refuse to turn the insecure `dev` attestation on outside localnet/sandbox unless
    `insecure` (the `--insecure-dev-attestation` flag) says so. Makes no chain call.

    Raises:
        ConfigError: testnet or mainnet without `insecure`.
    """
    if network not in LOCAL_NETWORKS and not insecure:
        raise ConfigError(
            f"{what} on {network} would let workers without TEE hardware in (insecure); "
            f"pass {INSECURE_DEV_FLAG} to do it anyway"
        )


def progress(line: str) -> None:
    print(f"… {line}", file=sys.stderr, flush=True)


def table(rows: list[tuple[str, str]]) -> str:
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(w)}  {v}" for k, v in rows)


def explain(code: int) -> str:
    """An exit code as words: `NOT_OWNER` → "not the owner"."""
    if code in _WALLET_EXIT_CODES:
        return _WALLET_EXIT_CODES[code]
    try:
        name = ExitCode(code).name
    except ValueError:
        return f"exit code {code}"
    words = name.lower().replace("_", " ")
    return {"not owner": "not the owner", "not enough value": "not enough TON attached"}.get(words, words)


async def require_balance(provider: NetworkProvider, needed: int, what: str) -> None:
    """Fail early, in one line, when the wallet cannot pay for `what`."""
    via = provider.sender()
    have = (await provider.chain.get_account(via.address)).balance
    if have < needed:
        raise ScriptError(
            f"insufficient balance: {what} needs {fmt_ton(needed)}, wallet {via.address.to_str()} has {fmt_ton(have)}"
        )


async def follow(sent: SentMessage, *, depth: int = 4, timeout: float = 60.0) -> list[ChainTx]:
    """Wait for the whole trace a wallet send started (up to `depth` hops) and check it.

    Prints progress; returns the transactions, oldest first.

    Raises:
        ScriptError: a transaction of the trace failed, or a contract refused with a reason.
    """
    chain = sent.chain
    out: list[ChainTx] = []
    frontier = [sent.transaction]
    wallet = sent.transaction.address
    for _ in range(depth):
        nxt: list[ChainTx] = []
        for tx in frontier:
            for m in tx.out_msgs:
                if m.kind != "internal" or m.dest is None:
                    continue
                if m.dest == wallet and m.op in (None, 0, int(Op.RETURN_EXCESS)):
                    continue  # change coming home: nothing to wait for
                progress(f"waiting for {Address(m.dest).to_str()} to process the message")
                h = m.hash
                got = await wait_for_transaction(
                    chain,
                    m.dest,
                    lambda t, h=h: t.in_msg is not None and t.in_msg.hash == h,
                    after_lt=m.created_lt,
                    timeout=timeout,
                )
                out.append(got)
                nxt.append(got)
        frontier = nxt
        if not frontier:
            break
    for tx in out:
        if not tx.compute_skipped and tx.exit_code not in (0, 1):
            raise ScriptError(
                f"refused by {Address(tx.address).to_str()}: {explain(tx.exit_code or 0)}", exit_code=tx.exit_code
            )
        if tx.op == int(Op.REFUSE_REGISTRATION) and tx.in_msg is not None:
            reason = RefuseRegistration.from_cell(tx.in_msg.body).reason
            raise ScriptError(f"registration refused: {explain(reason)}", exit_code=reason)
    return out
