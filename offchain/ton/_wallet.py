"""Wallet v5r1 keys for real networks: mnemonics, StateInit, address, signed external messages.

The localnet funds these wallets at genesis and the network providers sign with them;
both sides build the same cells here, so an address printed by `cocoon localnet` is the
address `WALLET_MNEMONIC` opens. The message layout is the sandbox's (`offchain.ton.wallet_v5`),
standard v5r1, so tonutils' `WalletV5R1` opens the same account.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from functools import lru_cache

from nacl.signing import SigningKey
from pytoniq_core import Address, Cell, StateInit
from pytoniq_core.crypto.keys import mnemonic_is_valid, mnemonic_to_private_key, words
from pytoniq_core.tlb.custom.wallet import WalletV5R1Data

from offchain.ton.messages import external_message
from offchain.ton.wallet_v5 import WALLET_V5R1_CODE, wallet_v5_id, wallet_v5_transfer_body

__all__ = [
    "MAINNET_GLOBAL_ID",
    "TESTNET_GLOBAL_ID",
    "WALLET_V5R1_CODE",
    "WalletKey",
    "localnet_mnemonic",
    "seqno_of",
    "wallet_v5r1_id",
]

MAINNET_GLOBAL_ID = -239  # config param 19 of the localnet's config (the sandbox default)
TESTNET_GLOBAL_ID = -3

# The first localnet mnemonics, precomputed by `_generate_mnemonic(i)` (seed
# "cocoon-localnet-{i}") with their public keys, so a server starts without 100k-round PBKDFs.
_PRECOMPUTED: tuple[tuple[str, str], ...] = (
    ("analyst punch meat method water action frozen cheap cabin kitchen holiday grape imitate gain consider arrive split noble cup grab profit arrange matrix cherry", "03af64ab09aa2cc3241565b5d51c588a420e3e5ee76b4474b6a20ee5bfef7604"),  # noqa: E501
    ("essay kit stamp stadium remember boring cause position turtle flip ensure acid sibling mechanic corn quarter problem slogan height exhaust alpha cheese capital diamond", "72a7ac0f6175884f0b8fe5c8e168b41872eef1bb61dba968f6de3b7705a99574"),  # noqa: E501
    ("onion gun shoot frog height road black level impulse warrior crush day mandate praise ride argue envelope assault boss motion jeans exchange edge physical", "1e31ef0be8077ad4a91a5851e4f7dfb75495902fb9f237a0ca1a7d8365908171"),  # noqa: E501
    ("brief broken draw hurt air bench render clip swamp solid twist derive champion name nephew card crowd permit surround dolphin pencil detail grit harbor", "4171b65a9fecd260fb0296a88881a55ad14db8c951fb998a33174f85ff0b19da"),  # noqa: E501
    ("once dizzy pond virtual image predict eight narrow salad verify pact identify sick satoshi foster account alert play minute error few acoustic transfer second", "080954fc097d3b1566e17d384ae24c75167109a0b038f603efc33f818f6b1474"),  # noqa: E501
    ("relax put option torch equip inhale walnut leave tiny tiny clerk pyramid topic marble connect marriage similar wine novel cook brush fresh crater urban", "4e332af11890b90fa20e631ed9e3b4c72c7be10ba680227351009bf9245f6b60"),  # noqa: E501
    ("real antique virtual crystal biology acquire pet sunny chase wall radio champion culture toddler mango sun flag between there any hamster brand phrase where", "72caa776dc7ffe47df804016a982a3e81b927c956366730e3ff2910cee57ce9b"),  # noqa: E501
    ("museum pill strong kite injury puzzle lamp deliver pig buzz puppy salon purchase boost super stadium amazing cost meat man account pitch tooth viable", "9fddaef1a87b52b7889802b6e8c2ce4e2d7104493225559a144d614b847046f5"),  # noqa: E501
    ("surprise rookie slim pelican enforce honey grass kitten version project dumb save globe board limit cargo extra noble box quantum into narrow sand city", "5014c956588af541dd73fbf5763e6cb1eeb87f37970f86b203247b624b62cd7e"),  # noqa: E501
    ("ticket enrich bridge couch chuckle title lucky wire yellow dawn wrist want loud arrow noodle token parade observe water slender pair rug wreck during", "2386d9e952d0d6ac0b645e2c5a9953243cdfd59cce0197760758a6d3a570182b"),  # noqa: E501
)


def _generate_mnemonic(i: int) -> list[str]:
    rng = random.Random(f"cocoon-localnet-{i}")
    while True:
        m = [rng.choice(words) for _ in range(24)]
        if mnemonic_is_valid(m):
            return m


def localnet_mnemonic(i: int) -> list[str]:
    """The i-th fixed localnet mnemonic (24 TON words; the same on every machine)."""
    if 0 <= i < len(_PRECOMPUTED):
        return _PRECOMPUTED[i][0].split()
    return _generate_mnemonic(i)


@lru_cache(maxsize=256)
def _localnet_public_key(i: int) -> bytes:
    if 0 <= i < len(_PRECOMPUTED):
        return bytes.fromhex(_PRECOMPUTED[i][1])
    return mnemonic_to_private_key(localnet_mnemonic(i))[0]


def wallet_v5r1_id(global_id: int = MAINNET_GLOBAL_ID, workchain: int = 0, subwallet: int = 0) -> int:
    """The v5r1 wallet id: network global id XOR the client context (wc, version 0, subwallet)."""
    return wallet_v5_id(global_id, workchain, subwallet)


@dataclass(frozen=True)
class WalletKey:
    """A v5r1 wallet: its public key, wallet id and (if it can sign) its secret key."""

    public_key: bytes
    wallet_id: int
    secret_key: bytes | None = None
    workchain: int = 0

    @classmethod
    def from_mnemonic(cls, mnemonic: list[str] | str, *, global_id: int = MAINNET_GLOBAL_ID) -> WalletKey:
        """Keys from a 24-word TON mnemonic.

        Raises:
            ValueError: the mnemonic is not 24 valid TON words.
        """
        m = mnemonic.split() if isinstance(mnemonic, str) else list(mnemonic)
        if len(m) != 24 or any(w not in _WORDS for w in m):
            raise ValueError("a wallet mnemonic is 24 words from the TON/BIP-39 list")
        pub, secret = mnemonic_to_private_key(m)
        return cls(public_key=pub, wallet_id=wallet_v5r1_id(global_id), secret_key=secret)

    @classmethod
    def localnet(cls, i: int, *, global_id: int = MAINNET_GLOBAL_ID, with_secret: bool = True) -> WalletKey:
        """The i-th funded localnet wallet (the secret costs one PBKDF: skip it to only read)."""
        if with_secret:
            return cls.from_mnemonic(localnet_mnemonic(i), global_id=global_id)
        return cls(public_key=_localnet_public_key(i), wallet_id=wallet_v5r1_id(global_id))

    @property
    def data(self) -> Cell:
        return WalletV5R1Data(seqno=0, wallet_id=self.wallet_id, public_key=self.public_key).serialize()

    @property
    def init(self) -> StateInit:
        return StateInit(code=WALLET_V5R1_CODE, data=self.data)

    @property
    def address(self) -> Address:
        return Address((self.workchain, self.init.serialize().hash))

    def transfer(
        self,
        seqno: int,
        messages: list[tuple[Cell, int]],
        *,
        valid_until: int | None = None,
        with_init: bool = False,
    ) -> Cell:
        """A signed external message carrying up to 255 (message_relaxed, mode) pairs.

        Raises:
            ValueError: no secret key, or a bad number of messages.
        """
        if self.secret_key is None:
            raise ValueError("this wallet has no secret key: it cannot sign")
        until = valid_until if valid_until is not None else int(time.time()) + 120
        body = wallet_v5_transfer_body(
            SigningKey(self.secret_key[:32]), wallet_id=self.wallet_id, seqno=seqno, valid_until=until,
            messages=messages,
        )
        return external_message(dest=self.address, body=body, init=self.init if with_init else None)


def seqno_of(data: Cell | None) -> int:
    """The seqno stored in a v5r1 wallet's data (0 for an undeployed wallet)."""
    if data is None:
        return 0
    return WalletV5R1Data.deserialize(data.begin_parse()).seqno


_WORDS = frozenset(words)
