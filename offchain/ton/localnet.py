"""`cocoon localnet`: a local TON chain speaking the Toncenter v2 HTTP API.

    cocoon localnet --port 8081 --state .cocoon/localnet.json --block-time 1

Clients use it exactly as they use toncenter.com: `tonutils.ToncenterClient(
NetworkGlobalID.MAINNET, base_url="http://127.0.0.1:8081/api/v2")` with its
`WalletV5R1`, or this project's `offchain.ton.network` providers. Served methods (GET with
query parameters or POST with a JSON body, under `/api/v2/` and at the root, plus
`/jsonRPC`): sendBoc, sendBocReturnHash, getAddressInformation, getWalletInformation,
getAddressBalance, getAddressState, getTransactions, runGetMethod, getConfigAll,
getMasterchainInfo.

Differences from toncenter.com, on purpose:
- bad input is a 4xx, never a 5xx, so clients do not retry it: 400 for a malformed BOC or
  an external message the contract does not accept (bad signature, stale seqno), 416 for an
  incorrect address or hash, 404 for an unknown transaction or method, 422 for bad
  parameters;
- the chain's config (and so the wallet id of v5r1 wallets) is mainnet's: global id -239;
- the state file is written after a block that has transactions, at most every
  `persist_interval` seconds (default 0.2), and on shutdown: `kill -9` may lose the last
  fraction of a second of blocks, never the file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytoniq_core import Cell, begin_cell
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from offchain.errors import StorageError
from offchain.ton._chain_types import decode_transaction
from offchain.ton._localnet_chain import DEFAULT_BALANCE, Block, LocalChain, write_state
from offchain.ton._toncenter import (
    ToncenterInputError,
    b64,
    decode_hash,
    friendly,
    parse_address,
    parse_stack_request,
    render_stack,
    render_transaction,
    tx_id,
)
from offchain.ton._wallet import WALLET_V5R1_CODE, WalletKey, localnet_mnemonic, seqno_of

__all__ = [
    "LocalnetConfig",
    "LocalnetServer",
    "add_localnet_command",
    "create_app",
    "main",
    "run_localnet",
    "run_localnet_command",
]

log = logging.getLogger("cocoon.localnet")

DEFAULT_PORT = 8081
DEFAULT_STATE = Path(".cocoon") / "localnet.json"
API_PREFIX = "/api/v2"
_V5R1_CODE_HASH = WALLET_V5R1_CODE.hash


@dataclass
class LocalnetConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    state: Path | None = DEFAULT_STATE  # None: in memory only
    wallets: int = 10
    balance: int = DEFAULT_BALANCE
    block_time: float = 1.0  # seconds between blocks; 0: a block per message
    persist_interval: float = 0.2
    quiet: bool = False


class LocalnetServer:
    """The chain plus its two background duties: sealing blocks and writing the state file.

    Everything touching the chain runs on the event loop thread; the state file is written
    on a worker thread from a detached image.
    """

    def __init__(self, config: LocalnetConfig, chain: LocalChain | None = None) -> None:
        self.config = config
        self.chain = chain or LocalChain.open(config.state, wallets=config.wallets, balance=config.balance)
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.started = time.time()

    @property
    def immediate(self) -> bool:
        return self.config.block_time <= 0

    def after_block(self, block: Block) -> None:
        if block.tx_count and self.config.state is not None:
            self._dirty.set()

    async def start(self) -> None:
        if not self.immediate:
            self._tasks.append(asyncio.create_task(self._block_loop(), name="localnet-blocks"))
        if self.config.state is not None:
            if self.chain.dirty:
                self._dirty.set()
            self._tasks.append(asyncio.create_task(self._persist_loop(), name="localnet-persist"))

    async def stop(self) -> None:
        """Seal what is queued, stop the loops, write the state a last time."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.chain.pending:
            self.chain.produce_block()
        if self.config.state is not None:
            write_state(self.config.state, self.chain.image())

    async def _block_loop(self) -> None:
        interval = self.config.block_time
        next_at = time.monotonic() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            self.after_block(self.chain.produce_block())

    async def _persist_loop(self) -> None:
        assert self.config.state is not None
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            image = self.chain.image()
            try:
                await asyncio.to_thread(write_state, self.config.state, image)
            except StorageError as err:
                log.error("%s", err)
            await asyncio.sleep(self.config.persist_interval)

    # -- Toncenter methods ----------------------------------------------------------------
    def send_boc(self, p: dict[str, Any]) -> dict[str, Any]:
        self._submit(p)
        return {"@type": "ok", "@extra": f"{time.time():.6f}:0:0"}

    def send_boc_return_hash(self, p: dict[str, Any]) -> dict[str, Any]:
        cell = self._submit(p)
        return {"@type": "raw.extMessageInfo", "hash": b64(cell.hash), "hash_norm": b64(_normalized_hash(cell))}

    def _submit(self, p: dict[str, Any]) -> Cell:
        cell = self.chain.submit(_required(p, "boc"), immediate=self.immediate)
        if self.immediate:
            self.after_block(Block(self.chain.seqno, self.chain.block_hash, self.chain.utime, 1))
        return cell

    def get_address_information(self, p: dict[str, Any]) -> dict[str, Any]:
        addr = parse_address(_required(p, "address"))
        acc = self.chain.account(addr)
        last = self.chain.last_tx(addr)
        active = acc.status == "active"
        return {
            "@type": "raw.fullAccountState",
            "balance": str(acc.balance),
            "extra_currencies": [],
            "code": b64(acc.code.to_boc()) if active and acc.code is not None else "",
            "data": b64(acc.data.to_boc()) if active and acc.data is not None else "",
            "last_transaction_id": tx_id(last.lt, last.hash) if last else tx_id(0, b"\0" * 32),
            "frozen_hash": "",
            "sync_utime": self.chain.utime,
            "state": _state_name(acc.status),
        }

    def get_wallet_information(self, p: dict[str, Any]) -> dict[str, Any]:
        addr = parse_address(_required(p, "address"))
        acc = self.chain.account(addr)
        last = self.chain.last_tx(addr)
        res: dict[str, Any] = {
            "wallet": False,
            "balance": str(acc.balance),
            "extra_currencies": [],
            "account_state": _state_name(acc.status),
            "last_transaction_id": tx_id(last.lt, last.hash) if last else tx_id(0, b"\0" * 32),
        }
        if acc.status == "active" and acc.code is not None and acc.code.hash == _V5R1_CODE_HASH:
            from pytoniq_core.tlb.custom.wallet import WalletV5R1Data

            d = WalletV5R1Data.deserialize(acc.data.begin_parse()) if acc.data is not None else None
            res.update(wallet=True, wallet_type="wallet v5 r1", seqno=seqno_of(acc.data))
            if d is not None:
                res["wallet_id"] = d.wallet_id
                res["is_signature_allowed"] = bool(d.is_signature_allowed)
        return res

    def get_address_balance(self, p: dict[str, Any]) -> str:
        return str(self.chain.account(parse_address(_required(p, "address"))).balance)

    def get_address_state(self, p: dict[str, Any]) -> str:
        return _state_name(self.chain.account(parse_address(_required(p, "address"))).status)

    def get_transactions(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        addr = parse_address(_required(p, "address"))
        limit = _int(p, "limit", 10)
        if not 0 < limit <= 100:
            raise ToncenterInputError("Validation error: limit must be in 1..100", 422)
        lt = _int(p, "lt", None)
        h = p.get("hash")
        if (lt is None) != (h in (None, "")):
            raise ToncenterInputError("Validation error: lt and hash must be sent together", 422)
        to_lt = _int(p, "to_lt", 0) or 0
        records = self.chain.transactions(
            addr, limit=limit, lt=lt, hash_=decode_hash(h) if h else None, to_lt=to_lt
        )
        return [render_transaction(decode_transaction(r.boc)) for r in records]

    def run_get_method(self, p: dict[str, Any]) -> dict[str, Any]:
        addr = parse_address(_required(p, "address"))
        method = _required(p, "method")
        if isinstance(method, str) and method.lstrip("-").isdigit():
            method = int(method)
        if not isinstance(method, str | int) or isinstance(method, bool):
            raise ToncenterInputError("Validation error: method must be a name or an id", 422)
        stack = parse_stack_request(p.get("stack", []))
        res = self.chain.run_get_method(addr, method, stack)
        last = self.chain.last_tx(addr)
        return {
            "@type": "smc.runResult",
            "gas_used": res.gas_used,
            "stack": render_stack(res.stack),
            "exit_code": res.exit_code,
            "block_id": self._block_id(),
            "last_transaction_id": tx_id(last.lt, last.hash) if last else tx_id(0, b"\0" * 32),
        }

    def get_config_all(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"@type": "configInfo", "config": {"@type": "tvm.cell", "bytes": self.chain.config_boc}}

    def get_masterchain_info(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "@type": "blocks.masterchainInfo",
            "last": self._block_id(),
            "state_root_hash": b64(self.chain.block_hash),
            "init": {
                "@type": "ton.blockIdExt", "workchain": -1, "shard": "-9223372036854775808", "seqno": 0,
                "root_hash": b64(b"\0" * 32), "file_hash": b64(b"\0" * 32),
            },
        }

    def _block_id(self) -> dict[str, Any]:
        return {
            "@type": "ton.blockIdExt",
            "workchain": -1,
            "shard": "-9223372036854775808",
            "seqno": self.chain.seqno,
            "root_hash": b64(self.chain.block_hash),
            "file_hash": b64(self.chain.block_hash),
        }

    def methods(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "sendBoc": self.send_boc,
            "sendBocReturnHash": self.send_boc_return_hash,
            "getAddressInformation": self.get_address_information,
            "getWalletInformation": self.get_wallet_information,
            "getAddressBalance": self.get_address_balance,
            "getAddressState": self.get_address_state,
            "getTransactions": self.get_transactions,
            "runGetMethod": self.run_get_method,
            "getConfigAll": self.get_config_all,
            "getMasterchainInfo": self.get_masterchain_info,
        }


def _state_name(status: str) -> str:
    return {"active": "active", "frozen": "frozen"}.get(status, "uninitialized")


def _required(p: dict[str, Any], name: str) -> Any:
    if name not in p or p[name] is None:
        raise ToncenterInputError(f"Validation error: field required: {name}", 422)
    return p[name]


def _int(p: dict[str, Any], name: str, default: int | None) -> int | None:
    v = p.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except (TypeError, ValueError) as err:
        raise ToncenterInputError(f"Validation error: {name} must be an integer", 422) from err


def _normalized_hash(cell: Cell) -> bytes:
    """TEP-467 normalized hash: the same message with no src, no init, body in a ref."""
    from pytoniq_core.tlb.transaction import MessageAny

    m = MessageAny.deserialize(cell.begin_parse())
    body = m.body if isinstance(m.body, Cell) else m.body.to_cell()
    norm = begin_cell().store_uint(0b10, 2).store_uint(0, 2).store_address(m.info.dest).store_coins(0)
    return norm.store_bit(0).store_bit(1).store_ref(body).end_cell().hash


def _error(message: str, code: int, rpc_id: Any = None, rpc: bool = False) -> JSONResponse:
    doc: dict[str, Any] = {"ok": False, "error": message, "code": code}
    if rpc:
        doc.update(jsonrpc="2.0", id=rpc_id)
    return JSONResponse(doc, status_code=code)


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        body = await request.body()
        if body:
            try:
                doc = json.loads(body)
            except ValueError as err:
                raise ToncenterInputError(f"Validation error: body is not JSON ({err})", 422) from err
            if not isinstance(doc, dict):
                raise ToncenterInputError("Validation error: body must be a JSON object", 422)
            params.update(doc)
    return params


def create_app(server: LocalnetServer) -> Starlette:
    """The ASGI app: Toncenter v2 routes over `server` (starts and stops its background tasks)."""
    methods = server.methods()

    def endpoint(fn: Callable[[dict[str, Any]], Any]) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def handle(request: Request) -> JSONResponse:
            try:
                result = fn(await _params(request))
            except ToncenterInputError as err:
                return _error(str(err), err.code)
            return JSONResponse({"ok": True, "result": result})

        return handle

    async def json_rpc(request: Request) -> JSONResponse:
        try:
            doc = await _params(request)
        except ToncenterInputError as err:
            return _error(str(err), err.code, rpc=True)
        rpc_id = doc.get("id")
        fn = methods.get(doc.get("method", ""))
        if fn is None:
            return _error("Unknown method", 422, rpc_id, rpc=True)
        params = doc.get("params") or {}
        if not isinstance(params, dict):
            return _error("Validation error: params must be an object", 422, rpc_id, rpc=True)
        try:
            result = fn(params)
        except ToncenterInputError as err:
            return _error(str(err), err.code, rpc_id, rpc=True)
        return JSONResponse({"ok": True, "result": result, "jsonrpc": "2.0", "id": rpc_id})

    async def not_found(request: Request) -> JSONResponse:
        return _error("Not Found", 404)

    routes: list[Route] = []
    for prefix in (API_PREFIX, ""):
        for name, fn in methods.items():
            routes.append(Route(f"{prefix}/{name}", endpoint(fn), methods=["GET", "POST"]))
        routes.append(Route(f"{prefix}/jsonRPC", json_rpc, methods=["POST"]))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_route("/{path:path}", not_found, methods=["GET", "POST"])
    return app


def banner(server: LocalnetServer, url: str) -> str:
    """Anvil-style listing of the funded wallets and their (public, fixed) mnemonics."""
    chain = server.chain
    lines = ["", "Cocoon localnet (Toncenter v2 API, wallet v5r1, global id -239)", ""]
    lines.append("Funded wallets")
    lines.append("==============")
    for i in range(chain.wallets):
        key = WalletKey.localnet(i, global_id=chain.global_id, with_secret=False)
        acc = chain.account(key.address)
        lines.append(f"({i}) {friendly(key.address.to_str(False))}  {acc.balance / 1e9:,.2f} TON")
        lines.append(f"    {key.address.to_str(False)}")
    lines.append("")
    lines.append("Mnemonics (WALLET_MNEMONIC=...; test keys, public, never use them elsewhere)")
    lines.append("==========")
    for i in range(chain.wallets):
        lines.append(f"({i}) {' '.join(localnet_mnemonic(i))}")
    lines.append("")
    state = server.config.state or "(memory only)"
    block = "every message" if server.immediate else f"every {server.config.block_time:g} s"
    lines.append(f"State file:  {state}  (block {chain.seqno}, {chain.tx_count} transactions)")
    lines.append(f"Blocks:      {block}")
    lines.append(f"Listening on {url}")
    return "\n".join(lines)


def run_localnet(config: LocalnetConfig) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit status.

    Raises:
        StorageError: the state file exists but is not a localnet state.
    """
    import uvicorn

    server = LocalnetServer(config)
    url = f"http://{config.host}:{config.port}{API_PREFIX}"
    if not config.quiet:
        print(banner(server, url), flush=True)
    else:
        print(f"Listening on {url}", flush=True)
    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:  # stop gracefully, exit 0 (no re-raise)
            self.force_exit = self.should_exit and sig == signal.SIGINT
            self.should_exit = True

    uv = _Server(
        uvicorn.Config(
            create_app(server), host=config.host, port=config.port, log_level="warning",
            access_log=False, lifespan="on",
        )
    )
    with contextlib.suppress(KeyboardInterrupt):
        uv.run()
    return 0


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--state", type=Path, default=DEFAULT_STATE, help="state file (default: %(default)s)")
    p.add_argument("--memory", action="store_true", help="keep no state file")
    p.add_argument("--fresh", action="store_true", help="delete the state file first")
    p.add_argument("--wallets", type=int, default=10, help="funded v5r1 wallets at genesis")
    p.add_argument("--balance", type=float, default=DEFAULT_BALANCE / 10**9, help="TON per wallet")
    p.add_argument("--block-time", type=float, default=1.0, help="seconds per block; 0: a block per message")
    p.add_argument("--quiet", action="store_true", help="do not print wallets and mnemonics")


def _config(ns: argparse.Namespace) -> LocalnetConfig:
    state = None if ns.memory else ns.state
    if ns.fresh and state is not None:
        state.unlink(missing_ok=True)
    return LocalnetConfig(
        host=ns.host, port=ns.port, state=state, wallets=ns.wallets, balance=int(ns.balance * 10**9),
        block_time=ns.block_time, quiet=ns.quiet,
    )


def add_localnet_command(subparsers: Any) -> Callable[[argparse.Namespace], int]:
    """Register `localnet` on an argparse subparsers object; returns its runner.

        runners["localnet"] = add_localnet_command(sub)
    """
    p = subparsers.add_parser("localnet", help="run a local TON chain with a Toncenter v2 API")
    _add_arguments(p)
    return run_localnet_command


def run_localnet_command(ns: argparse.Namespace) -> int:
    """The runner for parsed `cocoon localnet` arguments."""
    return run_localnet(_config(ns))


def main(argv: list[str] | None = None) -> int:
    """`cocoon localnet [options]`: parse arguments, serve until interrupted."""
    parser = argparse.ArgumentParser(prog="cocoon localnet", description=__doc__.split("\n")[0])
    _add_arguments(parser)
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        return run_localnet(_config(ns))
    except StorageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

