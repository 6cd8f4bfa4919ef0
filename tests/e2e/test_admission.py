"""Bad peers and bad vouchers against a real router process: each gets its typed error and
the router keeps serving (a well-behaved request on the same connection still works)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from pytoniq_core import Address

from offchain.devnet import Devnet
from offchain.errors import RequestFailed
from offchain.mesh import Limits, Peer, connect, join
from offchain.protocol.voucher import sign_voucher
from offchain.protocol.wire import Embed, Embedded, Error, ErrorCode, ListModels, Models, VoucherFrame
from offchain.ton._wallet import WalletKey, localnet_mnemonic

from ._helpers import MODEL


def wallet(i: int) -> str:
    return WalletKey.from_mnemonic(localnet_mnemonic(i)).address.to_str(is_user_friendly=False)


async def session(net: Devnet, *, role: str, key: SigningKey, owner: str) -> Peer:
    peer = await connect(net.router["url"], Limits(handshake_timeout=10))
    await join(peer, key=key, role=role, owner=owner)
    return peer


async def ask(peer: Peer, frame: object) -> object:
    await peer.send(frame)  # type: ignore[arg-type]
    async with asyncio.timeout(30):
        return await peer.recv()


def test_unregistered_worker_is_refused(devnet: Devnet) -> None:
    async def main() -> None:
        with pytest.raises(RequestFailed) as err:
            await session(devnet, role="worker", key=SigningKey.generate(), owner=wallet(devnet.client_wallet))
        assert err.value.code == ErrorCode.NOT_A_PROVIDER

    asyncio.run(main())


def test_worker_with_another_node_key_is_refused(devnet: Devnet) -> None:
    async def main() -> None:
        with pytest.raises(RequestFailed) as err:  # wallet 2 is worker0's owner, this is not its key
            await session(devnet, role="worker", key=SigningKey.generate(), owner=wallet(2))
        assert err.value.code == ErrorCode.NOT_A_PROVIDER

    asyncio.run(main())


def test_client_without_a_channel_is_refused(devnet: Devnet) -> None:
    async def main() -> None:
        with pytest.raises(RequestFailed) as err:
            await session(devnet, role="client", key=SigningKey.generate(), owner=wallet(devnet.client_wallet))
        assert err.value.code == ErrorCode.NO_CHANNEL

    asyncio.run(main())


def test_bad_vouchers_and_frames_get_typed_errors_and_the_session_goes_on(devnet: Devnet) -> None:
    """As the gateway's own client (its channel key), on a second connection."""
    key = SigningKey(bytes.fromhex(Path(devnet.workdir / "gateway" / "channel.key").read_text().strip()))
    channel = Address(devnet.sup.procs["gateway"].info["channel"])

    async def main() -> None:
        peer = await session(devnet, role="client", key=key, owner=wallet(devnet.client_wallet))
        models = await ask(peer, ListModels(id=1))
        assert isinstance(models, Models) and models.models[0].name == MODEL
        price = devnet.config.compute_unit_price

        def embed(rid: int, v: VoucherFrame, units: int = 8) -> Embed:
            return Embed(id=rid, model=MODEL, units=units, max_coefficient=1100, voucher=v, texts=["hello there"])

        def voucher(total: int, signer: SigningKey = key) -> VoucherFrame:
            s = sign_voucher(signer, channel, compute=total, data=0)
            return VoucherFrame(compute=s.compute, data=s.data, signature=s.signature)

        # a good request sets the books: charged C, newest voucher V >= C
        good = await ask(peer, embed(2, voucher(10**7)))
        assert isinstance(good, Embedded), good
        held = good.account.voucher_compute
        cases = [
            (embed(3, voucher(held + 10**6, SigningKey.generate())), ErrorCode.VOUCHER_BAD_SIGNATURE),  # forged
            (embed(4, voucher(held - 1)), ErrorCode.VOUCHER_STALE),  # below the newest held
            (embed(5, voucher(good.account.deposit + 1)), ErrorCode.VOUCHER_OVER_DEPOSIT),
            # replayed newest voucher for a request far beyond the credit it has left
            (
                embed(
                    6,
                    VoucherFrame(compute=held, data=0, signature=good.account.voucher_signature),
                    units=10**7 // price + 10**6,
                ),
                ErrorCode.VOUCHER_UNDERPAID,
            ),
        ]
        for frame, code in cases:
            answer = await ask(peer, frame)
            assert isinstance(answer, Error) and answer.code == code, (code, answer)
        # a malformed frame: typed error naming its id, and the session still serves
        await peer.ws.send(b"\x82\xa1t\xa5Embed\xa2id\x07")
        bad = await peer.recv()
        assert isinstance(bad, Error) and bad.code == ErrorCode.BAD_FRAME and bad.id == 7
        again = await ask(peer, embed(8, voucher(held + 10**6)))
        assert isinstance(again, Embedded) and again.cost > 0
        await peer.close()

    asyncio.run(main())


def test_worker_refuses_a_model_root_does_not_list(devnet: Devnet) -> None:
    """The devnet allowlists MiniLM only: a worker configured for `echo` exits with one line."""
    from offchain.devnet import SupervisorError

    with pytest.raises(SupervisorError) as err:
        devnet.start_worker(3, models=["echo"])
    assert "none of the configured models is in Root's model allowlist" in str(err.value)
    assert "is not in Root's allowlist: not served" in str(err.value)


def test_worker_with_bad_attestation_is_refused(devnet: Devnet) -> None:
    """As worker0 (its own node key, from its data folder): evidence for an image Root does not
    list, and evidence binding another encryption key, are each refused ATTESTATION_FAILED."""
    from nacl.public import PrivateKey

    from offchain.attestation import encode_evidence, make_dev_evidence
    from offchain.devnet._network import DEV_IMAGE
    from offchain.models import builtin_models
    from offchain.protocol.wire import ModelOffer, Offer

    key = SigningKey(bytes.fromhex((devnet.workdir / "worker0" / "node.key").read_text().strip()))
    spec = builtin_models()[MODEL]
    offer_model = ModelOffer(name=MODEL, hash=spec.hash, dim=spec.dim, max_tokens=spec.max_tokens)
    enc = bytes(PrivateKey.generate().public_key)
    cases = {
        "image Root does not list": (enc, make_dev_evidence(key, enc, bytes(32))),
        "evidence for another encryption key": (
            enc,
            make_dev_evidence(key, bytes(PrivateKey.generate().public_key), DEV_IMAGE),
        ),
        "no evidence": (enc, None),
    }

    async def main() -> None:
        for why, (announced, evidence) in cases.items():
            peer = await session(devnet, role="worker", key=key, owner=wallet(2))
            offer = Offer(
                models=[offer_model],
                coefficient=1000,
                capacity=4,
                encryption_key=announced,
                evidence=encode_evidence(evidence) if evidence is not None else b"",
            )
            answer = await ask(peer, offer)
            assert isinstance(answer, Error) and answer.code == ErrorCode.ATTESTATION_FAILED, (why, answer)
            await peer.close()

    asyncio.run(main())


def test_dev_attestation_is_refused_once_root_disallows_it(devnet: Devnet) -> None:
    """Last in this module: it turns Root's dev attestation off (the foundation's script).
    A worker with valid dev evidence is then refused, within a directory poll."""
    import time

    from nacl.public import PrivateKey

    from offchain.attestation import encode_evidence, make_dev_evidence
    from offchain.devnet import wallet_env
    from offchain.devnet._network import DEV_IMAGE, FOUNDATION
    from offchain.models import builtin_models
    from offchain.protocol.wire import ModelOffer, Offer
    from scripts._runner import run_script_async

    key = SigningKey(bytes.fromhex((devnet.workdir / "worker0" / "node.key").read_text().strip()))
    spec = builtin_models()[MODEL]
    enc = bytes(PrivateKey.generate().public_key)
    offer = Offer(
        models=[ModelOffer(name=MODEL, hash=spec.hash, dim=spec.dim, max_tokens=spec.max_tokens)],
        coefficient=1000,
        capacity=4,
        encryption_key=enc,
        evidence=encode_evidence(make_dev_evidence(key, enc, DEV_IMAGE)),
    )

    async def main() -> None:
        await run_script_async(
            "config",
            [
                "--network",
                "localnet",
                "--url",
                devnet.api_url,
                "set",
                "dev-attestation",
                "--root",
                devnet.root,
                "--off",
            ],
            env=wallet_env(FOUNDATION),
        )
        deadline = time.monotonic() + 30
        while True:
            peer = await session(devnet, role="worker", key=key, owner=wallet(2))
            await peer.send(offer)
            try:  # an accepted worker gets no answer to its Offer: a refusal comes at once
                answer = await peer.recv(timeout=2.0)
            except TimeoutError:
                answer = None
            await peer.close()
            if isinstance(answer, Error) and answer.code == ErrorCode.ATTESTATION_FAILED:
                assert "dev" in answer.message
                return
            assert time.monotonic() < deadline, f"dev evidence still accepted after 30 s: {answer}"

    asyncio.run(main())
