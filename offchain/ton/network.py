"""One chain interface for scripts and agents, on the sandbox, the localnet, testnet and mainnet.

    async with await create_network_provider("localnet") as net:
        sent = await net.sender().send(to=addr, value=ton("1"))   # waits for it to land
        await sent.wait_delivered()                               # and for what it sent
        counter = net.open(Counter.create_from_address(addr))     # a ContractProvider
        value = await Counter.get_counter(counter)

Layers (STYLE "Chain access goes through interfaces"):

- `ChainProvider` (a Protocol: `send_boc`, `get_account`, `run_get_method`,
  `get_transactions`) with `EmulatorProvider` (an in-process `Blockchain`) and
  `ToncenterProvider` (Toncenter v2 over tonutils' HTTP transport: the localnet, testnet and
  mainnet speak the same API, so `LocalnetProvider` is a `ToncenterProvider` with a local URL);
- `WalletSender`: a v5r1 wallet (keys from `WALLET_MNEMONIC`) as the `Sender` wrappers take;
  it signs, sends, and waits until the wallet's transaction is on chain;
- `ChainContractProvider`: the `ContractProvider` wrappers take, for one address;
- `NetworkProvider`: what a Blueprint-style `run(provider, args)` script gets.

Transactions come back as `ChainTx` (decoded from the transaction BOC, the same on every
backend), accounts as `AccountState` (the sandbox's type; `boc` is empty off the sandbox).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytoniq_core import Address, Cell, StateInit

from offchain.errors import ConfigError, EmulationError, GetMethodError, ProviderError
from offchain.ton._chain_types import ChainMessage, ChainTx, decode_transaction
from offchain.ton._toncenter import decode_hash, encode_stack_request, parse_stack_result
from offchain.ton._wallet import (
    MAINNET_GLOBAL_ID,
    TESTNET_GLOBAL_ID,
    WALLET_V5R1_CODE,
    WalletKey,
    localnet_mnemonic,
    seqno_of,
)
from offchain.ton.blockchain import AccountState, Blockchain, GetResult
from offchain.ton.executor import StackValue
from offchain.ton.messages import message_relaxed
from offchain.ton.transaction import raw

__all__ = [
    "NETWORKS",
    "AccountState",
    "ChainContractProvider",
    "ChainMessage",
    "ChainProvider",
    "ChainTx",
    "EmulatorProvider",
    "LocalnetProvider",
    "NetworkProvider",
    "SentMessage",
    "TonConnectSender",
    "ToncenterProvider",
    "WalletKey",
    "WalletSender",
    "create_network_provider",
    "decode_transaction",
    "wallet_from_env",
]

NETWORKS = ("sandbox", "localnet", "testnet", "mainnet")
LOCALNET_URL = "http://127.0.0.1:8081/api/v2"
TONCENTER_URLS = {
    "mainnet": "https://toncenter.com/api/v2",
    "testnet": "https://testnet.toncenter.com/api/v2",
}
GLOBAL_IDS = {"sandbox": MAINNET_GLOBAL_ID, "localnet": MAINNET_GLOBAL_ID, "mainnet": MAINNET_GLOBAL_ID,
              "testnet": TESTNET_GLOBAL_ID}
_ZERO_HASH = b"\0" * 32
SANDBOX_WALLETS = 10
_IGNORE_ERRORS = 2  # send mode +2; wallet v5r1 throws 137 on a signed external without it


class ChainProvider(Protocol):
    """The four things every backend does. Implementations may be called concurrently."""

    network: str
    global_id: int

    async def send_boc(self, boc: Cell | str) -> bytes:
        """Send an external message; returns its hash.

        Raises:
            ProviderError: malformed, or not accepted by its destination (code 4xx), or the
                backend failed.
        """
        ...

    async def get_account(self, address: Address | str) -> AccountState: ...

    async def run_get_method(
        self, address: Address | str, method: str | int, stack: list[StackValue] | None = None
    ) -> GetResult:
        """Run a getter on the latest state.

        Raises:
            GetMethodError: the getter exited with a code other than 0 or 1.
        """
        ...

    async def get_transactions(
        self,
        address: Address | str,
        *,
        limit: int = 20,
        lt: int | None = None,
        hash: bytes | None = None,
        to_lt: int = 0,
    ) -> list[ChainTx]:
        """Newest first, from (lt, hash) inclusive when given, down to `to_lt` exclusive."""
        ...

    async def close(self) -> None: ...


def _addr(a: Address | str) -> Address:
    return a if isinstance(a, Address) else Address(a)


def _boc64(boc: Cell | str | bytes) -> str:
    if isinstance(boc, Cell):
        return base64.b64encode(boc.to_boc()).decode()
    if isinstance(boc, bytes):
        return base64.b64encode(boc).decode()
    return boc


# -- the sandbox --------------------------------------------------------------------------
class EmulatorProvider:
    """`ChainProvider` over an in-process `Blockchain`: a message lands before `send_boc` returns."""

    network = "sandbox"
    global_id = MAINNET_GLOBAL_ID

    def __init__(self, blockchain: Blockchain) -> None:
        self.blockchain = blockchain

    async def send_boc(self, boc: Cell | str) -> bytes:
        b64 = _boc64(boc)
        try:
            cell = Cell.one_from_boc(base64.b64decode(b64))
            self.blockchain.send_message(cell)
        except EmulationError as err:
            raise ProviderError(f"external message not accepted: {err.reason}", code=400) from err
        except ValueError as err:
            raise ProviderError(f"malformed BOC: {err}", code=400) from err
        return cell.hash

    async def get_account(self, address: Address | str) -> AccountState:
        return self.blockchain.account(address)

    async def run_get_method(
        self, address: Address | str, method: str | int, stack: list[StackValue] | None = None
    ) -> GetResult:
        return self.blockchain.run_get_method(address, method, stack or [])

    async def get_transactions(
        self,
        address: Address | str,
        *,
        limit: int = 20,
        lt: int | None = None,
        hash: bytes | None = None,
        to_lt: int = 0,
    ) -> list[ChainTx]:
        txs = self.blockchain.transactions(address)  # newest first
        if lt is not None:
            i = next((i for i, t in enumerate(txs) if t.lt == lt and (hash is None or t.hash == hash)), None)
            if i is None:
                raise ProviderError(f"transaction lt={lt} not found", code=404)
            txs = txs[i:]
        out = []
        for t in txs:
            if t.lt <= to_lt or len(out) >= limit:
                break
            out.append(decode_transaction(t.boc))
        return out

    async def close(self) -> None:
        return None


# -- Toncenter v2 (localnet, testnet, mainnet) --------------------------------------------------
class ToncenterProvider:
    """`ChainProvider` over a Toncenter v2 HTTP API, through tonutils' `ToncenterClient` transport.

    Errors: an HTTP error becomes `ProviderError(message, code=status)`; a transport failure
    (connection refused, timeout) becomes `ProviderError(..., code=None)`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        network: str = "localnet",
        api_key: str | None = None,
        global_id: int | None = None,
        rps_limit: int | None = None,
        retry: bool | None = None,
        timeout: float = 10.0,
    ) -> None:
        from ton_core import NetworkGlobalID
        from tonutils.clients import ToncenterClient
        from tonutils.types import DEFAULT_HTTP_RETRY_POLICY

        self.network = network
        self.base_url = base_url.rstrip("/")
        self.global_id = global_id if global_id is not None else GLOBAL_IDS.get(network, MAINNET_GLOBAL_ID)
        remote = network in ("testnet", "mainnet")
        if rps_limit is None:
            rps_limit = (10 if api_key else 1) if remote else 1_000_000
        self.client = ToncenterClient(
            NetworkGlobalID(self.global_id) if self.global_id in (-239, -3) else NetworkGlobalID.MAINNET,
            api_key=api_key,
            base_url=self.base_url,
            timeout=timeout,
            rps_limit=rps_limit,
            rps_period=1.0 if api_key or not remote else 1.3,
            retry_policy=DEFAULT_HTTP_RETRY_POLICY if (retry if retry is not None else remote) else None,
        )
        self._lock = asyncio.Lock()

    async def _call(self, http: str, path: str, *, params: dict[str, Any] | None = None,
                    body: dict[str, Any] | None = None) -> Any:
        from tonutils.exceptions import ProviderResponseError, TonutilsError

        if not self.client.connected:
            async with self._lock:
                if not self.client.connected:
                    await self.client.connect()
        try:
            doc = await self.client.provider.send_http_request(http, path, params=params, json_data=body)
        except ProviderResponseError as err:
            raise ProviderError(f"{self.network} {path}: {err.message}", code=err.code) from err
        except TonutilsError as err:
            raise ProviderError(f"{self.network} {path}: {err}") from err
        if not isinstance(doc, dict) or not doc.get("ok", False):
            msg, code = (doc.get("error", doc), doc.get("code")) if isinstance(doc, dict) else (doc, None)
            raise ProviderError(f"{self.network} {path}: {msg}", code=code)
        return doc["result"]

    async def send_boc(self, boc: Cell | str) -> bytes:
        b64 = _boc64(boc)
        res = await self._call("POST", "/sendBocReturnHash", body={"boc": b64})
        h = res.get("hash") if isinstance(res, dict) else None
        return decode_hash(h) if h else Cell.one_from_boc(base64.b64decode(b64)).hash

    async def get_account(self, address: Address | str) -> AccountState:
        a = _addr(address)
        r = await self._call("GET", "/getAddressInformation", params={"address": a.to_str(False)})
        ltid = r.get("last_transaction_id") or {}
        last_lt = int(ltid.get("lt") or 0)
        last_hash = base64.b64decode(ltid.get("hash") or "") or _ZERO_HASH
        state = r.get("state", "uninitialized")
        status = {"active": "active", "frozen": "frozen"}.get(state, "uninit")
        balance = int(r.get("balance") or 0)
        if status == "uninit" and last_lt == 0 and balance == 0:
            status = "nonexist"
        code = Cell.one_from_boc(base64.b64decode(r["code"])) if r.get("code") else None
        data = Cell.one_from_boc(base64.b64decode(r["data"])) if r.get("data") else None
        return AccountState(raw(a) or "", status, balance, code, data, last_lt, last_hash, "")

    async def run_get_method(
        self, address: Address | str, method: str | int, stack: list[StackValue] | None = None
    ) -> GetResult:
        body = {"address": _addr(address).to_str(False), "method": method, "stack": encode_stack_request(stack or [])}
        r = await self._call("POST", "/runGetMethod", body=body)
        exit_code = int(r.get("exit_code", 0))
        gas = int(r.get("gas_used", 0))
        if exit_code not in (0, 1):
            raise GetMethodError(str(method), exit_code, gas_used=gas)
        return GetResult(exit_code=exit_code, gas_used=gas, stack=parse_stack_result(r.get("stack") or []))

    async def get_transactions(
        self,
        address: Address | str,
        *,
        limit: int = 20,
        lt: int | None = None,
        hash: bytes | None = None,
        to_lt: int = 0,
    ) -> list[ChainTx]:
        a = _addr(address).to_str(False)
        out: list[ChainTx] = []
        cur_lt, cur_hash = lt, hash
        while len(out) < limit:
            params: dict[str, Any] = {"address": a, "limit": min(100, limit - len(out)), "archival": "true"}
            if cur_lt is not None:
                if cur_hash is None:
                    raise ProviderError("get_transactions: lt needs its hash", code=422)
                params["lt"], params["hash"] = cur_lt, cur_hash.hex()
            if to_lt:
                params["to_lt"] = to_lt
            page = await self._call("GET", "/getTransactions", params=params)
            txs = [decode_transaction(item["data"]) for item in page]
            txs = [t for t in txs if t.lt > to_lt]
            out.extend(txs)
            if not txs or len(page) < params["limit"] or txs[-1].prev_lt == 0:
                break
            cur_lt, cur_hash = txs[-1].prev_lt, txs[-1].prev_hash
        return out[:limit]

    async def close(self) -> None:
        await self.client.close()


def LocalnetProvider(base_url: str = LOCALNET_URL) -> ToncenterProvider:
    """The `ChainProvider` of a `cocoon localnet` server (no rate limit, no retries)."""
    return ToncenterProvider(base_url, network="localnet", global_id=MAINNET_GLOBAL_ID)


# -- waiting --------------------------------------------------------------------------------------
async def wait_for_transaction(
    chain: ChainProvider,
    address: Address | str,
    predicate: Callable[[ChainTx], bool],
    *,
    after_lt: int = 0,
    timeout: float = 60.0,
    poll: float = 0.1,
) -> ChainTx:
    """The first transaction of `address` newer than `after_lt` that matches `predicate`.

    Cancelling is safe. Polls `get_transactions`, backing off up to 1 s.

    Raises:
        ProviderError: none showed up within `timeout` seconds (code 408).
    """
    deadline = time.monotonic() + timeout
    delay = poll
    while True:
        txs = await chain.get_transactions(address, limit=1000, to_lt=after_lt)
        for tx in reversed(txs):  # oldest first: the first match is the earliest
            if predicate(tx):
                return tx
        if time.monotonic() >= deadline:
            raise ProviderError(f"no matching transaction on {raw(address)} within {timeout:g}s", code=408)
        await asyncio.sleep(delay)
        delay = min(1.0, delay * 1.5)


@dataclass
class SentMessage:
    """An external message that landed: the wallet's transaction, and what it sent out."""

    chain: ChainProvider = field(repr=False)
    message_hash: bytes
    transaction: ChainTx

    @property
    def out_messages(self) -> tuple[ChainMessage, ...]:
        return self.transaction.out_msgs

    async def wait_delivered(self, *, timeout: float = 60.0) -> list[ChainTx]:
        """Wait until every internal message the wallet sent has been processed by its destination.

        Returns the destinations' transactions (one per message, same order). Cancelling is safe.
        """
        out: list[ChainTx] = []
        for m in self.out_messages:
            if m.kind != "internal" or m.dest is None:
                continue
            h = m.hash
            out.append(
                await wait_for_transaction(
                    self.chain, m.dest, lambda t, h=h: t.in_msg is not None and t.in_msg.hash == h,
                    after_lt=m.created_lt, timeout=timeout,
                )
            )
        return out


# -- wallets ----------------------------------------------------------------------------------------
class WalletSender:
    """A v5r1 wallet as a `Sender`: signs with its key, sends, waits until its transaction lands.

    Sends from one `WalletSender` are serialized (a lock around seqno → send → confirm), so
    concurrent callers are safe; cancelling a send after the message went out leaves it in
    flight (the next send reads the new seqno from the chain).
    """

    def __init__(self, chain: ChainProvider, key: WalletKey, *, timeout: float = 60.0) -> None:
        self.chain = chain
        self.key = key
        self.address = key.address
        self.timeout = timeout
        self._lock = asyncio.Lock()

    async def send(
        self,
        *,
        to: Address,
        value: int,
        body: Cell | None = None,
        init: StateInit | None = None,
        bounce: bool = True,
        mode: int = 3,
    ) -> SentMessage:
        msg = message_relaxed(dest=_addr(to), value=value, body=body, init=init, bounce=bounce)
        return await self.send_messages([(msg, mode)])

    async def send_messages(self, messages: list[tuple[Cell, int]]) -> SentMessage:
        """Send 1..255 (message_relaxed, mode) pairs in one external message and wait for it.

        Raises:
            ProviderError: the wallet cannot pay (code 402), the message was refused, or it did
                not land within `timeout`.
        """
        messages = [(m, mode | _IGNORE_ERRORS) for m, mode in messages]  # v5r1 refuses externals without +2
        async with self._lock:
            acc = await self.chain.get_account(self.address)
            active = acc.status == "active"
            if acc.balance == 0:
                raise ProviderError(f"wallet {self.address.to_str()} has no balance on {self.chain.network}", code=402)
            seqno = seqno_of(acc.data) if active else 0
            ext = self.key.transfer(seqno, messages, with_init=not active)
            await self.chain.send_boc(ext)
            h = ext.hash
            tx = await wait_for_transaction(
                self.chain, self.address, lambda t: t.in_msg is not None and t.in_msg.hash == h,
                after_lt=acc.last_lt, timeout=self.timeout,
            )
            return SentMessage(self.chain, h, tx)

    async def balance(self) -> int:
        return (await self.chain.get_account(self.address)).balance


def wallet_from_env(env: Mapping[str, str] | None = None, *, global_id: int = MAINNET_GLOBAL_ID) -> WalletKey | None:
    """The wallet named by `WALLET_MNEMONIC` / `WALLET_VERSION` (Blueprint's names), or None.

    Raises:
        ConfigError: a version other than v5r1, or a malformed mnemonic.
    """
    env = os.environ if env is None else env
    words = env.get("WALLET_MNEMONIC", "").strip()
    if not words:
        return None
    version = env.get("WALLET_VERSION", "v5r1").strip().lower().replace("_", "")
    if version not in ("v5r1", "w5", "v5"):
        raise ConfigError(f"WALLET_VERSION={env.get('WALLET_VERSION')!r} is not supported; use v5r1")
    try:
        return WalletKey.from_mnemonic(words, global_id=global_id)
    except ValueError as err:
        raise ConfigError(f"WALLET_MNEMONIC: {err}") from err


class TonConnectSender:
    """A `Sender` that asks a phone wallet to sign each message through TonConnect (pytonconnect).

    `connect()` prints a universal link and a terminal QR code, then waits for the wallet's
    approval. Needs `TONCONNECT_MANIFEST_URL` (the dApp manifest TonConnect wallets fetch).
    Not exercised by the test-suite: it needs a human and a wallet app.
    """

    def __init__(self, chain: ChainProvider, manifest_url: str, *, wallet_name: str = "tonkeeper",
                 timeout: float = 300.0) -> None:
        try:
            from pytonconnect import TonConnect
        except ImportError as err:  # pragma: no cover - pytonconnect is a declared dependency
            raise ConfigError("the TonConnect flow needs the `pytonconnect` package") from err
        self.chain = chain
        self.timeout = timeout
        self.wallet_name = wallet_name
        self._connector = TonConnect(manifest_url=manifest_url)
        self.address: Address | None = None  # type: ignore[assignment]

    async def connect(self) -> Address:
        """Print a link + QR code and wait for the wallet to approve; cancelling is safe."""
        wallets = self._connector.get_wallets()
        chosen = next((w for w in wallets if self.wallet_name.lower() in str(w.get("name", "")).lower()), wallets[0])
        url = await self._connector.connect(chosen)
        print(f"Open this link in your wallet to connect:\n{url}", flush=True)
        try:
            import qrcode

            qr = qrcode.QRCode(border=1)
            qr.add_data(url)
            qr.print_ascii(invert=True)
        except ImportError:
            pass
        deadline = time.monotonic() + self.timeout
        while not self._connector.connected:
            if time.monotonic() > deadline:
                raise ProviderError("TonConnect: the wallet did not approve in time", code=408)
            await asyncio.sleep(0.5)
        self.address = Address(self._connector.account.address)
        return self.address

    async def send(
        self, *, to: Address, value: int, body: Cell | None = None, init: StateInit | None = None,
        bounce: bool = True, mode: int = 3,
    ) -> SentMessage:
        if self.address is None:
            await self.connect()
        assert self.address is not None
        acc = await self.chain.get_account(self.address)
        tx_msg: dict[str, Any] = {"address": _addr(to).to_str(is_bounceable=bounce), "amount": str(value)}
        if body is not None:
            tx_msg["payload"] = base64.b64encode(body.to_boc()).decode()
        if init is not None:
            tx_msg["stateInit"] = base64.b64encode(init.serialize().to_boc()).decode()
        res = await self._connector.send_transaction({"valid_until": int(time.time()) + 300, "messages": [tx_msg]})
        ext = Cell.one_from_boc(base64.b64decode(res["boc"]))
        h = ext.hash
        tx = await wait_for_transaction(
            self.chain, self.address, lambda t: t.in_msg is not None and t.in_msg.hash == h,
            after_lt=acc.last_lt, timeout=self.timeout,
        )
        return SentMessage(self.chain, h, tx)


# -- contracts --------------------------------------------------------------------------------------
class ChainContractProvider:
    """The `ContractProvider` wrappers take, for one address on any `ChainProvider`."""

    def __init__(self, chain: ChainProvider, address: Address, init: StateInit | None = None) -> None:
        self.chain = chain
        self.address = address
        self.init = init

    async def internal(
        self, via: Any, *, value: int, body: Cell | None = None, bounce: bool = True, mode: int = 1
    ) -> Any:
        init = None
        if self.init is not None and (await self.chain.get_account(self.address)).status != "active":
            init = self.init
        return await via.send(to=self.address, value=value, body=body, init=init, bounce=bounce, mode=mode)

    async def get(self, method: str, stack: list[StackValue] | None = None) -> list[StackValue]:
        return (await self.chain.run_get_method(self.address, method, stack or [])).stack

    async def state(self) -> AccountState:
        return await self.chain.get_account(self.address)


class NetworkProvider:
    """What a script's `run(provider, args)` gets (Blueprint's NetworkProvider, in Python)."""

    def __init__(self, chain: ChainProvider, sender: Any | None = None) -> None:
        self.chain = chain
        self._sender = sender

    @property
    def network(self) -> str:
        return self.chain.network

    def sender(self) -> Any:
        """The wallet that pays for this script's messages.

        Raises:
            ConfigError: no wallet was configured (set WALLET_MNEMONIC).
        """
        if self._sender is None:
            raise ConfigError(f"no wallet for {self.network}: set WALLET_MNEMONIC (24 words) and WALLET_VERSION=v5r1")
        return self._sender

    def open(self, contract: Any) -> ChainContractProvider:
        """A ContractProvider for a wrapper instance (anything with `.address`, maybe `.init`)."""
        return ChainContractProvider(self.chain, _addr(contract.address), getattr(contract, "init", None))

    def provider(self, address: Address | str, init: StateInit | None = None) -> ChainContractProvider:
        return ChainContractProvider(self.chain, _addr(address), init)

    async def is_contract_deployed(self, address: Address | str) -> bool:
        return (await self.chain.get_account(address)).status == "active"

    async def wait_for_deploy(self, address: Address | str, *, timeout: float = 60.0, poll: float = 0.2) -> None:
        """Wait until `address` is active. Cancelling is safe.

        Raises:
            ProviderError: still not active after `timeout` seconds (code 408).
        """
        deadline = time.monotonic() + timeout
        while not await self.is_contract_deployed(address):
            if time.monotonic() > deadline:
                raise ProviderError(f"{_addr(address).to_str()} was not deployed within {timeout:g}s", code=408)
            await asyncio.sleep(poll)

    async def wait_for_transaction(
        self, address: Address | str, predicate: Callable[[ChainTx], bool], *, after_lt: int = 0,
        timeout: float = 60.0,
    ) -> ChainTx:
        return await wait_for_transaction(self.chain, address, predicate, after_lt=after_lt, timeout=timeout)

    async def close(self) -> None:
        await self.chain.close()

    async def __aenter__(self) -> NetworkProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def create_network_provider(
    network: str = "localnet",
    *,
    wallet: str = "mnemonic",
    env: Mapping[str, str] | None = None,
    base_url: str | None = None,
    blockchain: Blockchain | None = None,
) -> NetworkProvider:
    """The provider a `--network` / `--wallet` pair names.

    - sandbox: a fresh in-process `Blockchain` (or `blockchain`) holding the localnet's ten
      funded wallets; the wallet is `WALLET_MNEMONIC`'s (funded too) or localnet wallet 0.
    - localnet: `base_url`, else `COCOON_LOCALNET_URL`, else http://127.0.0.1:8081/api/v2; the
      wallet is `WALLET_MNEMONIC`'s or, like anvil's default account, funded wallet 0.
    - testnet / mainnet: toncenter.com (or `TONCENTER_URL`) with `TONCENTER_API_KEY`;
      `WALLET_MNEMONIC` is required unless `wallet="tonconnect"`.

    Raises:
        ConfigError: unknown network or wallet kind, or a missing/invalid wallet setting.
    """
    env = os.environ if env is None else env
    if network not in NETWORKS:
        raise ConfigError(f"unknown network {network!r}; choose one of {', '.join(NETWORKS)}")
    if wallet not in ("mnemonic", "tonconnect"):
        raise ConfigError(f"unknown wallet kind {wallet!r}; use mnemonic or tonconnect")
    global_id = GLOBAL_IDS[network]
    chain: ChainProvider
    if network == "sandbox":
        bc = blockchain or Blockchain.create()
        chain = EmulatorProvider(bc)
    elif network == "localnet":
        chain = LocalnetProvider(base_url or env.get("COCOON_LOCALNET_URL") or LOCALNET_URL)
    else:
        url = base_url or env.get("TONCENTER_URL") or TONCENTER_URLS[network]
        chain = ToncenterProvider(url, network=network, api_key=env.get("TONCENTER_API_KEY") or None)
    if wallet == "tonconnect":
        manifest = env.get("TONCONNECT_MANIFEST_URL")
        if not manifest:
            raise ConfigError("--wallet tonconnect needs TONCONNECT_MANIFEST_URL (the dApp's tonconnect-manifest.json)")
        return NetworkProvider(chain, TonConnectSender(chain, manifest))
    key = wallet_from_env(env, global_id=global_id)
    if key is None and network in ("sandbox", "localnet"):
        key = WalletKey.from_mnemonic(localnet_mnemonic(0), global_id=global_id)
    if network == "sandbox":  # the localnet's genesis wallets, plus the configured one
        bc = chain.blockchain  # type: ignore[attr-defined]
        keys = [WalletKey.localnet(i, global_id=global_id, with_secret=False) for i in range(SANDBOX_WALLETS)]
        for k in [*keys, *([key] if key is not None else [])]:
            if bc.account(k.address).status != "active":
                bc.set_account(k.address, code=WALLET_V5R1_CODE, data=k.data, balance=1_000_000 * 10**9)
    return NetworkProvider(chain, WalletSender(chain, key) if key is not None else None)
