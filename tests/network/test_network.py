"""Network providers: one interface on the sandbox and on a real localnet process, wallets from the env."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pytoniq_core import Address, Cell, StateInit, begin_cell

from offchain.errors import ConfigError, GetMethodError, ProviderError
from offchain.ton._wallet import WalletKey, localnet_mnemonic
from offchain.ton.build import code_cell
from offchain.ton.network import (
    ChainContractProvider,
    NetworkProvider,
    ToncenterProvider,
    create_network_provider,
    wallet_from_env,
)

from .conftest import LocalnetProcess, free_port

ONE_TON = 10**9
COUNTER = "tests/sandbox/contracts/counter.tolk"
OP_INCREASE = 0x7E8764EF


@dataclass
class Counter:
    """A Blueprint-shaped wrapper: it never knows which network it runs on."""

    address: Address
    init: StateInit | None = None

    @classmethod
    def create_from_config(cls, owner: Address, salt: int) -> Counter:
        data = begin_cell().store_address(owner).store_uint(0, 32).store_uint(0, 32).store_uint(salt, 32).end_cell()
        init = StateInit(code=code_cell(COUNTER), data=data)
        return cls(Address((0, init.serialize().hash)), init)

    @staticmethod
    def increase_body(by: int, query_id: int = 0) -> Cell:
        return begin_cell().store_uint(OP_INCREASE, 32).store_uint(query_id, 64).store_uint(by, 32).end_cell()

    async def send_increase(self, provider: ChainContractProvider, via, *, value: int, by: int):
        return await provider.internal(via, value=value, body=self.increase_body(by))

    async def get_counter(self, provider: ChainContractProvider) -> int:
        stack = await provider.get("get_counter")
        return stack[0]


@pytest.fixture(params=["sandbox", "localnet"])
async def net(request, localnet: LocalnetProcess):
    provider = await create_network_provider(request.param, env={}, base_url=localnet.url)
    yield provider
    await provider.close()


async def test_wrapper_deploys_and_counts_on_every_backend(net: NetworkProvider) -> None:
    via = net.sender()
    counter = Counter.create_from_config(via.address, salt=hash(net.network) & 0xFFFF)
    provider = net.open(counter)
    assert not await net.is_contract_deployed(counter.address)
    sent = await counter.send_increase(provider, via, value=ONE_TON // 10, by=5)  # attaches the StateInit
    assert sent.transaction.success
    delivered = await sent.wait_delivered()
    assert [t.success for t in delivered] == [True] and delivered[0].deployed
    await net.wait_for_deploy(counter.address, timeout=10)
    await counter.send_increase(provider, via, value=ONE_TON // 10, by=2)  # no StateInit now
    await net.wait_for_transaction(counter.address, lambda t: t.op == OP_INCREASE and t.lt > delivered[0].lt)
    assert await counter.get_counter(provider) == 7
    assert (await provider.state()).status == "active"


async def test_send_waits_until_the_wallet_transaction_lands(net: NetworkProvider) -> None:
    via = net.sender()
    before = await net.chain.get_account(via.address)
    dest = WalletKey.localnet(3, with_secret=False).address
    sent = await via.send(to=dest, value=ONE_TON)
    after = await net.chain.get_account(via.address)
    assert sent.transaction.in_msg.hash == sent.message_hash
    assert after.last_lt == sent.transaction.lt > before.last_lt
    assert after.balance < before.balance - ONE_TON
    (got,) = await sent.wait_delivered()
    assert got.address == f"0:{dest.hash_part.hex()}" and got.value == ONE_TON


async def test_get_transactions_pages_the_same_on_every_backend(net: NetworkProvider) -> None:
    via = net.sender()
    for _ in range(4):
        await via.send(to=Address((0, b"\x55" * 32)), value=ONE_TON // 100, bounce=False)
    full = await net.chain.get_transactions(via.address, limit=100)
    assert [t.lt for t in full] == sorted((t.lt for t in full), reverse=True)
    two = await net.chain.get_transactions(via.address, limit=2, lt=full[1].lt, hash=full[1].hash)
    assert [t.hash for t in two] == [full[1].hash, full[2].hash]
    newer = await net.chain.get_transactions(via.address, limit=100, to_lt=full[3].lt)
    assert [t.lt for t in newer] == [t.lt for t in full[:3]]
    with pytest.raises(ProviderError) as err:
        await net.chain.get_transactions(via.address, lt=full[0].lt, hash=b"\x01" * 32)
    assert err.value.code == 404


async def test_getters_and_their_failures(net: NetworkProvider) -> None:
    addr = net.sender().address
    res = await net.chain.run_get_method(addr, "get_public_key")
    assert res.stack == [int.from_bytes(WalletKey.localnet(0, with_secret=False).public_key, "big")]
    with pytest.raises(GetMethodError) as err:
        await net.chain.run_get_method(addr, "no_such_getter")
    assert err.value.exit_code == 11
    acc = await net.chain.get_account(Address((0, b"\x31" * 32)))
    assert acc.status == "nonexist" and acc.balance == 0


async def test_bad_input_is_a_provider_error_with_its_code(net: NetworkProvider) -> None:
    with pytest.raises(ProviderError) as err:
        await net.chain.send_boc("definitely not a boc")
    assert err.value.code == 400
    victim = WalletKey.localnet(2, with_secret=False)
    forged = WalletKey(public_key=victim.public_key, wallet_id=victim.wallet_id,
                       secret_key=WalletKey.localnet(1).secret_key)
    with pytest.raises(ProviderError) as err:
        await net.chain.send_boc(forged.transfer(0, [(Counter.increase_body(1), 3)]))
    assert err.value.code == 400


async def test_a_wallet_without_funds_fails_with_one_clear_error(localnet: LocalnetProcess) -> None:
    env = {"WALLET_MNEMONIC": " ".join(localnet_mnemonic(40))}  # valid, never funded
    async with await create_network_provider("localnet", env=env, base_url=localnet.url) as net:
        with pytest.raises(ProviderError) as err:
            await net.sender().send(to=Address((0, b"\x01" * 32)), value=ONE_TON)
    assert err.value.code == 402 and "no balance" in str(err.value)


async def test_unreachable_server_is_a_provider_error() -> None:
    chain = ToncenterProvider(f"http://127.0.0.1:{free_port()}/api/v2", network="localnet", timeout=2)
    with pytest.raises(ProviderError):
        await chain.get_account(Address((0, b"\x01" * 32)))
    await chain.close()


# -- configuration --------------------------------------------------------------------------------
def test_wallet_from_env_reads_blueprint_variables() -> None:
    words = " ".join(localnet_mnemonic(0))
    key = wallet_from_env({"WALLET_MNEMONIC": words, "WALLET_VERSION": "v5r1"})
    assert key is not None and key.address == WalletKey.localnet(0).address
    assert wallet_from_env({}) is None
    testnet = wallet_from_env({"WALLET_MNEMONIC": words}, global_id=-3)
    assert testnet is not None and testnet.address != key.address  # the wallet id depends on the network


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WALLET_MNEMONIC": " ".join(localnet_mnemonic(0)), "WALLET_VERSION": "v4r2"}, "not supported"),
        ({"WALLET_MNEMONIC": "twelve words are not enough for a ton wallet at all ok"}, "24 words"),
    ],
)
def test_wallet_from_env_rejects_bad_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        wallet_from_env(env)


async def test_create_network_provider_rejects_bad_choices() -> None:
    with pytest.raises(ConfigError, match="unknown network"):
        await create_network_provider("devnet", env={})
    with pytest.raises(ConfigError, match="TONCONNECT_MANIFEST_URL"):
        await create_network_provider("testnet", wallet="tonconnect", env={})
    net = await create_network_provider("testnet", env={"TONCENTER_API_KEY": "k"})
    with pytest.raises(ConfigError, match="WALLET_MNEMONIC"):
        net.sender()
    assert net.network == "testnet" and net.chain.base_url == "https://testnet.toncenter.com/api/v2"
    await net.close()


async def test_tonconnect_sender_is_built_when_configured() -> None:
    pytest.importorskip("pytonconnect")
    net = await create_network_provider(
        "testnet", wallet="tonconnect", env={"TONCONNECT_MANIFEST_URL": "https://example.org/tonconnect-manifest.json"}
    )
    from offchain.ton.network import TonConnectSender

    assert isinstance(net.sender(), TonConnectSender)
    await net.close()


class FakeConnector:
    """Stands in for pytonconnect's TonConnect: a 'phone wallet' that signs with localnet wallet 0."""

    def __init__(self, chain) -> None:
        self.chain = chain
        self.key = WalletKey.localnet(0)
        self.connected = False
        self.requests: list[dict] = []

    def get_wallets(self) -> list[dict]:
        return [{"name": "Wallet"}, {"name": "Tonkeeper"}]

    async def connect(self, wallet: dict) -> str:
        assert wallet["name"] == "Tonkeeper"
        self.connected = True  # the user approved on the phone
        return "tc://?v=2&id=test"

    @property
    def account(self):
        return type("Account", (), {"address": self.key.address.to_str(False)})()

    async def send_transaction(self, request: dict) -> dict:
        import base64

        from offchain.ton.messages import message_relaxed

        self.requests.append(request)
        (m,) = request["messages"]
        body = Cell.one_from_boc(base64.b64decode(m["payload"])) if "payload" in m else None
        msg = message_relaxed(dest=Address(m["address"]), value=int(m["amount"]), body=body)
        seqno = (await self.chain.run_get_method(self.key.address, "seqno")).stack[0]
        ext = self.key.transfer(seqno, [(msg, 3)])
        await self.chain.send_boc(ext)  # the wallet app broadcasts it
        return {"boc": base64.b64encode(ext.to_boc()).decode()}


async def test_tonconnect_sender_prints_a_link_and_waits_for_the_signed_message(capsys) -> None:
    pytest.importorskip("pytonconnect")
    from offchain.ton.network import TonConnectSender

    sandbox = await create_network_provider("sandbox", env={})
    sender = TonConnectSender(sandbox.chain, "https://example.org/tonconnect-manifest.json")
    sender._connector = FakeConnector(sandbox.chain)
    assert await sender.connect() == WalletKey.localnet(0).address
    assert "tc://?v=2&id=test" in capsys.readouterr().out
    dest = WalletKey.localnet(2, with_secret=False).address
    sent = await sender.send(to=dest, value=ONE_TON, body=Counter.increase_body(3))
    assert sent.transaction.success and sent.transaction.in_msg.hash == sent.message_hash
    (request,) = sender._connector.requests
    assert request["messages"][0]["amount"] == str(ONE_TON) and request["valid_until"] > 0
    (delivered,) = await sent.wait_delivered()
    assert delivered.value == ONE_TON and delivered.op == OP_INCREASE


async def test_an_undeployed_funded_wallet_deploys_itself_on_first_send(localnet: LocalnetProcess) -> None:
    fresh = WalletKey.localnet(30, with_secret=False)
    async with await create_network_provider("localnet", env={}, base_url=localnet.url) as net:
        await (await net.sender().send(to=fresh.address, value=3 * ONE_TON, bounce=False)).wait_delivered()
        assert (await net.chain.get_account(fresh.address)).status == "uninit"
    env = {"WALLET_MNEMONIC": " ".join(localnet_mnemonic(30))}
    async with await create_network_provider("localnet", env=env, base_url=localnet.url) as net:
        sent = await net.sender().send(to=WalletKey.localnet(0, with_secret=False).address, value=ONE_TON)
        assert sent.transaction.deployed and sent.transaction.success
        assert (await net.chain.get_account(fresh.address)).status == "active"
