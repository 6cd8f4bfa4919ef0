"""`cocoon localnet` over real HTTP: Toncenter shapes, tonutils as a client, bad input, blocks, restarts."""

from __future__ import annotations

import base64
import functools
import http.client
import json
import threading
import time

import pytest
from pytoniq_core import Address, Cell, begin_cell

from offchain.ton._wallet import WalletKey, localnet_mnemonic
from offchain.ton.messages import internal_message, message_relaxed

from .conftest import LocalnetProcess

ONE_TON = 10**9


@functools.cache
def key(i: int) -> WalletKey:
    return WalletKey.from_mnemonic(localnet_mnemonic(i))


def b64(cell: Cell) -> str:
    return base64.b64encode(cell.to_boc()).decode()


def seqno(net: LocalnetProcess, k: WalletKey) -> int:
    info = net.get("getWalletInformation", address=k.address.to_str(False))["result"]
    return int(info.get("seqno", 0))


def transfer(net: LocalnetProcess, k: WalletKey, to: Address, value: int = ONE_TON, *, body: Cell | None = None,
             seq: int | None = None) -> Cell:
    seq = seqno(net, k) if seq is None else seq
    return k.transfer(seq, [(message_relaxed(dest=to, value=value, body=body, bounce=False), 3)])


# -- tonutils, unchanged, as the client ------------------------------------------------------
async def test_tonutils_wallet_v5r1_transfers_and_reads(localnet: LocalnetProcess) -> None:
    from ton_core import NetworkGlobalID
    from tonutils.clients import ToncenterClient
    from tonutils.contracts import WalletV5R1

    client = ToncenterClient(NetworkGlobalID.MAINNET, base_url=localnet.url, rps_limit=1000)
    async with client:
        wallet, *_ = WalletV5R1.from_mnemonic(client, localnet_mnemonic(5))
        assert wallet.address.to_str(is_user_friendly=False) == key(5).address.to_str(False)
        await wallet.refresh()
        assert wallet.is_active
        before, seq = wallet.balance, wallet.state_data.seqno
        dest = key(4).address
        await wallet.transfer(dest, 2 * ONE_TON, body="hello from tonutils")
        await wallet.refresh()
        assert wallet.state_data.seqno == seq + 1
        assert wallet.balance < before - 2 * ONE_TON
        assert await client.run_get_method(wallet.address, "seqno") == [seq + 1]
        txs = await client.get_transactions(dest, limit=5)
        assert txs and txs[0].in_msg.info.value.grams == 2 * ONE_TON
        config = await client.get_config()
        assert 19 in config  # the global id parameter


# -- shapes --------------------------------------------------------------------------------------
def test_address_information_of_a_funded_wallet(localnet: LocalnetProcess) -> None:
    doc = localnet.get("getAddressInformation", address=key(0).address.to_str())
    assert doc["ok"] is True
    r = doc["result"]
    assert r["@type"] == "raw.fullAccountState" and r["state"] == "active"
    assert int(r["balance"]) > 0 and isinstance(r["balance"], str)
    assert Cell.one_from_boc(base64.b64decode(r["code"])).hash == WalletKey.localnet(0).init.code.hash
    assert set(r["last_transaction_id"]) == {"@type", "lt", "hash"}


def test_address_information_of_an_unknown_account_is_uninitialized(localnet: LocalnetProcess) -> None:
    r = localnet.get("getAddressInformation", address=Address((0, b"\x42" * 32)).to_str())["result"]
    assert r["state"] == "uninitialized" and r["balance"] == "0" and r["code"] == ""
    assert r["last_transaction_id"]["lt"] == "0"


def test_wallet_information_reports_v5r1_and_seqno(localnet: LocalnetProcess) -> None:
    r = localnet.get("getWalletInformation", address=key(1).address.to_str(False))["result"]
    assert r["wallet"] is True and r["wallet_type"] == "wallet v5 r1" and r["account_state"] == "active"
    assert r["wallet_id"] == key(1).wallet_id and isinstance(r["seqno"], int)


def test_send_boc_return_hash_is_the_message_hash(localnet: LocalnetProcess) -> None:
    ext = transfer(localnet, key(1), key(2).address)
    status, doc = localnet.post("sendBocReturnHash", {"boc": b64(ext)})
    assert status == 200 and doc["ok"] is True
    assert base64.b64decode(doc["result"]["hash"]) == ext.hash
    txs = localnet.get("getTransactions", address=key(1).address.to_str(), limit=1)["result"]
    assert txs[0]["in_msg"]["hash"] == doc["result"]["hash"]  # block per message: already there


def test_transaction_shape_matches_toncenter(localnet: LocalnetProcess) -> None:
    comment = begin_cell().store_uint(0, 32).store_snake_string("gm").end_cell()
    localnet.post("sendBoc", {"boc": b64(transfer(localnet, key(1), key(3).address, body=comment))})
    tx = localnet.get("getTransactions", address=key(3).address.to_str(), limit=1)["result"][0]
    assert tx["@type"] == "raw.transaction"
    assert set(tx["transaction_id"]) == {"@type", "lt", "hash"}
    assert tx["in_msg"]["source"] == key(1).address.to_str(is_user_friendly=True, is_bounceable=True)
    assert tx["in_msg"]["value"] == str(ONE_TON) and tx["in_msg"]["message"] == "gm"
    assert Cell.one_from_boc(base64.b64decode(tx["data"])).hash == base64.b64decode(tx["transaction_id"]["hash"])


def test_get_transactions_pages_by_lt_and_hash_without_gaps(localnet: LocalnetProcess) -> None:
    k, dest = key(2), Address((0, b"\x77" * 32))
    for _ in range(7):
        status, _doc = localnet.post("sendBoc", {"boc": b64(transfer(localnet, k, dest, 10_000_000))})
        assert status == 200
    addr = k.address.to_str(False)
    full = localnet.get("getTransactions", address=addr, limit=100)["result"]
    lts = [int(t["transaction_id"]["lt"]) for t in full]
    assert lts == sorted(lts, reverse=True) and len(lts) >= 7
    paged, lt, h = [], None, None
    while True:
        page = localnet.get("getTransactions", address=addr, limit=3, lt=lt, hash=h)["result"]
        if paged and page and page[0]["transaction_id"] == paged[-1]["transaction_id"]:
            page = page[1:]  # Toncenter pages are inclusive of the starting transaction
        if not page:
            break
        paged.extend(page)
        lt, h = page[-1]["transaction_id"]["lt"], page[-1]["transaction_id"]["hash"]
    assert [t["transaction_id"] for t in paged] == [t["transaction_id"] for t in full]
    # to_lt is exclusive, hashes work in hex too
    some = localnet.get("getTransactions", address=addr, limit=100, to_lt=lts[3])["result"]
    assert [int(t["transaction_id"]["lt"]) for t in some] == lts[:3]
    hex_hash = base64.b64decode(full[1]["transaction_id"]["hash"]).hex()
    start = localnet.get("getTransactions", address=addr, limit=2, lt=lts[1], hash=hex_hash)["result"]
    assert [int(t["transaction_id"]["lt"]) for t in start] == lts[1:3]


def test_get_transactions_with_a_wrong_hash_is_404(localnet: LocalnetProcess) -> None:
    addr = key(0).address.to_str(False)
    localnet.post("sendBoc", {"boc": b64(transfer(localnet, key(0), key(1).address))})
    lt = localnet.get("getTransactions", address=addr, limit=1)["result"][0]["transaction_id"]["lt"]
    status, doc = localnet.request("GET", f"getTransactions?address={addr}&lt={lt}&hash={'00' * 32}")
    assert status == 404 and doc["ok"] is False and doc["code"] == 404


def test_run_get_method_returns_toncenter_stack_and_exit_codes(localnet: LocalnetProcess) -> None:
    addr = key(0).address.to_str(False)
    status, doc = localnet.post("runGetMethod", {"address": addr, "method": "get_public_key", "stack": []})
    assert status == 200
    (tag, value), = doc["result"]["stack"]
    assert tag == "num" and int(value, 16) == int.from_bytes(key(0).public_key, "big")
    assert doc["result"]["exit_code"] == 0 and doc["result"]["gas_used"] > 0
    _, doc = localnet.post("runGetMethod", {"address": addr, "method": "no_such_getter", "stack": []})
    assert doc["ok"] is True and doc["result"]["exit_code"] == 11
    _, doc = localnet.post("runGetMethod", {"address": Address((0, b"\x43" * 32)).to_str(), "method": "seqno",
                                            "stack": []})
    assert doc["ok"] is True and doc["result"]["exit_code"] != 0
    _, doc = localnet.post("runGetMethod", {"address": addr, "method": 85143, "stack": []})  # seqno's id
    assert doc["result"]["exit_code"] == 0 and doc["result"]["stack"][0][0] == "num"


def test_config_and_masterchain_info(localnet: LocalnetProcess) -> None:
    cfg = localnet.get("getConfigAll")["result"]
    assert cfg["config"]["bytes"] and Cell.one_from_boc(base64.b64decode(cfg["config"]["bytes"]))
    before = localnet.get("getMasterchainInfo")["result"]["last"]["seqno"]
    localnet.post("sendBoc", {"boc": b64(transfer(localnet, key(0), key(1).address))})
    after = localnet.get("getMasterchainInfo")["result"]
    assert after["@type"] == "blocks.masterchainInfo" and after["last"]["seqno"] == before + 1


def test_json_rpc_serves_the_same_methods(localnet: LocalnetProcess) -> None:
    status, doc = localnet.post("jsonRPC", {"id": 7, "jsonrpc": "2.0", "method": "getAddressInformation",
                                            "params": {"address": key(0).address.to_str()}})
    assert status == 200 and doc["ok"] is True and doc["id"] == 7 and doc["result"]["state"] == "active"
    status, doc = localnet.post("jsonRPC", {"id": 8, "method": "runGetMethod",
                                            "params": {"address": key(0).address.to_str(), "method": "seqno",
                                                       "stack": []}})
    assert status == 200 and doc["result"]["exit_code"] == 0
    status, doc = localnet.post("jsonRPC", {"id": 9, "method": "sendBoc", "params": {"boc": "AAAA"}})
    assert status == 400 and doc == {"ok": False, "error": doc["error"], "code": 400, "jsonrpc": "2.0", "id": 9}
    status, doc = localnet.post("jsonRPC", {"id": 10, "method": "dropDatabase", "params": {}})
    assert status == 422 and doc["error"] == "Unknown method"


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "boc",
    ["not base64 at all!", base64.b64encode(b"\x01\x02\x03").decode(), ""],
    ids=["not-base64", "not-a-boc", "empty"],
)
def test_send_boc_rejects_malformed_input_with_4xx(localnet: LocalnetProcess, boc: str) -> None:
    status, doc = localnet.post("sendBoc", {"boc": boc})
    assert 400 <= status < 500 and doc["ok"] is False and doc["code"] == status and doc["error"]


def test_send_boc_rejects_an_internal_message(localnet: LocalnetProcess) -> None:
    forged = internal_message(src=key(0).address, dest=key(1).address, value=ONE_TON)
    status, doc = localnet.post("sendBoc", {"boc": b64(forged)})
    assert status == 400 and "external" in doc["error"]


def test_send_boc_rejects_a_bad_signature_and_changes_nothing(localnet: LocalnetProcess) -> None:
    victim, thief = key(3), key(4)
    forged = WalletKey(public_key=victim.public_key, wallet_id=victim.wallet_id, secret_key=thief.secret_key)
    before = localnet.get("getAddressInformation", address=victim.address.to_str())["result"]
    ext = forged.transfer(seqno(localnet, victim), [(message_relaxed(dest=thief.address, value=ONE_TON), 3)])
    status, doc = localnet.post("sendBoc", {"boc": b64(ext)})
    assert status == 400 and doc["ok"] is False and "not accepted" in doc["error"]
    after = localnet.get("getAddressInformation", address=victim.address.to_str())["result"]
    assert after == {**before, "sync_utime": after["sync_utime"]}


def test_send_boc_rejects_a_replayed_seqno(localnet: LocalnetProcess) -> None:
    k = key(3)
    ext = transfer(localnet, k, key(0).address)
    assert localnet.post("sendBoc", {"boc": b64(ext)})[0] == 200
    status, doc = localnet.post("sendBoc", {"boc": b64(ext)})
    assert status == 400 and "not accepted" in doc["error"]


@pytest.mark.parametrize("method", ["getAddressInformation", "getWalletInformation", "getTransactions"])
def test_incorrect_address_is_416(localnet: LocalnetProcess, method: str) -> None:
    status, doc = localnet.request("GET", f"{method}?address=EQnot-an-address")
    assert status == 416 and doc == {"ok": False, "error": "Incorrect address", "code": 416}


def test_run_get_method_on_incorrect_address_is_416(localnet: LocalnetProcess) -> None:
    status, doc = localnet.post("runGetMethod", {"address": "0:zz", "method": "seqno", "stack": []})
    assert status == 416 and doc["code"] == 416


def test_missing_parameters_and_bad_json_are_422(localnet: LocalnetProcess) -> None:
    assert localnet.request("GET", "getAddressInformation")[0] == 422
    assert localnet.request("GET", f"getTransactions?address={key(0).address.to_str()}&limit=1000")[0] == 422
    status, doc = localnet.request("POST", "sendBoc", raw=b"{not json")
    assert status == 422 and doc["ok"] is False


def test_unknown_path_is_a_toncenter_style_404(localnet: LocalnetProcess) -> None:
    assert localnet.request("GET", "getSomethingElse") == (404, {"ok": False, "error": "Not Found", "code": 404})


# -- blocks on a timer --------------------------------------------------------------------------
def test_timer_blocks_settle_messages_in_the_next_block(start_localnet) -> None:
    net = start_localnet(block_time=0.4, state=None)
    k, dest = key(0), key(1).address
    first = transfer(net, k, dest, seq=0)
    duplicate = k.transfer(0, [(message_relaxed(dest=dest, value=5 * ONE_TON), 3)])  # same seqno
    assert net.post("sendBoc", {"boc": b64(first)})[0] == 200
    assert net.post("sendBoc", {"boc": b64(duplicate)})[0] == 200  # both pass the liteserver check
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not net.get("getTransactions", address=k.address.to_str())["result"]:
        time.sleep(0.05)
    time.sleep(0.5)
    txs = net.get("getTransactions", address=k.address.to_str())["result"]
    assert len(txs) == 1  # only one of two same-seqno messages lands
    assert txs[0]["in_msg"]["hash"] == b64_hash(first)
    assert seqno(net, k) == 1


def b64_hash(cell: Cell) -> str:
    return base64.b64encode(cell.hash).decode()


# -- persistence --------------------------------------------------------------------------------
def test_restart_continues_the_same_chain(start_localnet, tmp_path) -> None:
    state = tmp_path / "chain.json"
    net = start_localnet(state=state)
    k = key(0)
    for _ in range(3):
        assert net.post("sendBoc", {"boc": b64(transfer(net, k, key(1).address))})[0] == 200
    acc = net.get("getAddressInformation", address=k.address.to_str())["result"]
    txs = net.get("getTransactions", address=k.address.to_str(), limit=10)["result"]
    height = net.get("getMasterchainInfo")["result"]["last"]["seqno"]
    assert net.stop() == 0  # SIGTERM: graceful, writes the state a last time
    again = start_localnet(state=state)
    assert again.get("getAddressInformation", address=k.address.to_str())["result"]["balance"] == acc["balance"]
    assert again.get("getTransactions", address=k.address.to_str(), limit=10)["result"] == txs
    assert again.get("getMasterchainInfo")["result"]["last"]["seqno"] == height
    assert seqno(again, k) == 3
    assert again.post("sendBoc", {"boc": b64(transfer(again, k, key(1).address))})[0] == 200
    newest = again.get("getTransactions", address=k.address.to_str(), limit=1)["result"][0]
    assert int(newest["transaction_id"]["lt"]) > int(txs[0]["transaction_id"]["lt"])


def test_kill_during_a_burst_never_corrupts_the_state_file(start_localnet, tmp_path) -> None:
    state = tmp_path / "burst.json"
    net = start_localnet(state=state)
    k = key(1)
    sent: list[int] = []

    exts = [b64(transfer(net, k, key(2).address, seq=i)) for i in range(400)]

    def burst() -> None:
        for i, ext in enumerate(exts):
            try:
                status, _ = net.post("sendBoc", {"boc": ext})
            except (OSError, http.client.HTTPException):  # the server is gone (mid-answer, too)
                return
            if status != 200:
                return
            if not sent:
                first_landed.append(time.time())
            sent.append(i)

    first_landed: list[float] = []
    t = threading.Thread(target=burst)
    t.start()
    # kill mid-burst, but after the server persisted at least once since the burst began (it
    # writes at most every persist interval: killed sooner, nothing of the burst is on disk yet,
    # which is allowed but would make `landed` 0 below)
    deadline = time.monotonic() + 20
    while (len(sent) < 60 or not first_landed or state.stat().st_mtime <= first_landed[0]) and t.is_alive() \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    net.kill()
    t.join(timeout=20)
    assert json.loads(state.read_bytes())["format"] == "cocoon-localnet/1"  # whole, parseable
    again = start_localnet(state=state)
    landed = seqno(again, k)
    assert 0 < landed <= len(sent)  # at most the last fraction of a second is lost
    txs = again.get("getTransactions", address=k.address.to_str(), limit=100)["result"]
    assert len(txs) == min(landed, 100)
    assert again.post("sendBoc", {"boc": b64(transfer(again, k, key(2).address))})[0] == 200


def test_a_corrupt_state_file_stops_the_server_with_one_clear_line(start_localnet, tmp_path) -> None:
    state = tmp_path / "broken.json"
    state.write_text("{ this is not a chain")
    with pytest.raises(RuntimeError) as err:
        start_localnet(state=state)
    assert "is not a valid state file" in str(err.value)
    assert state.read_text() == "{ this is not a chain"  # left for the user to inspect


# -- the command ----------------------------------------------------------------------------------
def test_command_prints_funded_wallets_and_their_mnemonics(tmp_path) -> None:
    net = LocalnetProcess(state=None, wallets=2)
    try:
        net.start(quiet=False)
        out = net.output()
    finally:
        net.kill()
    assert " ".join(localnet_mnemonic(1)) in out
    assert key(0).address.to_str(is_user_friendly=True, is_bounceable=True) in out
    assert f"Listening on {net.url}" in out


def test_add_localnet_command_registers_on_argparse() -> None:
    import argparse

    from offchain.ton.localnet import _config, add_localnet_command

    parser = argparse.ArgumentParser(prog="cocoon")
    sub = parser.add_subparsers(dest="command")
    runner = add_localnet_command(sub)
    ns = parser.parse_args(["localnet", "--port", "9999", "--block-time", "0", "--memory", "--wallets", "3"])
    config = _config(ns)
    assert callable(runner) and ns.command == "localnet"
    assert (config.port, config.block_time, config.state, config.wallets) == (9999, 0.0, None, 3)
