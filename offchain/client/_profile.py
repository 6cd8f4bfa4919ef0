"""A client profile: everything a command needs to reach a network as a paying client, in one
JSON file (`cocoon devnet` writes `<dir>/client.json`; `cocoon search` reads it).

    {"network": "localnet", "url": "http://127.0.0.1:PORT/api/v2", "root": "0:..",
     "router_url": "ws://127.0.0.1:PORT", "router": "0:..", "router_key": "<hex>",
     "wallet": "localnet:7" | "env", "channel_key_file": "search.key", "store": "search.db",
     "deposit": 1000000000}

`wallet` "env" takes the wallet from WALLET_MNEMONIC (testnet, mainnet); "localnet:N" is the
localnet's funded wallet N (its mnemonic is public). Relative paths are read from the
profile's folder. The channel key is made on first use and kept (0600), so the same channel
serves every later command; a closed channel is replaced by a new key's channel.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
from nacl.signing import SigningKey

from offchain.client._client import ClientConfig, CocoonClient
from offchain.errors import ConfigError
from offchain.fsutil import write_atomic

__all__ = ["ClientProfile", "open_profile_client", "read_profile", "write_profile"]


class ClientProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    network: str
    url: str
    root: str
    router_url: str
    router: str
    router_key: str  # hex
    wallet: str = "env"
    channel_key_file: str = "client.key"
    store: str = "client.db"
    deposit: int = 10**9  # nanoTON a new channel is opened with


def write_profile(path: str | os.PathLike[str], profile: ClientProfile) -> Path:
    return write_atomic(path, msgspec.json.format(msgspec.json.encode(profile)) + b"\n")


def read_profile(path: str | os.PathLike[str]) -> ClientProfile:
    """Raises: ConfigError: missing or not a profile (one line, naming the file)."""
    p = Path(path)
    try:
        return msgspec.json.decode(p.read_bytes(), type=ClientProfile)
    except OSError as err:
        raise ConfigError(f"no client profile at {p} ({err.strerror}): run `cocoon devnet --serve` first") from err
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise ConfigError(f"{p} is not a client profile: {err}") from err


def _wallet_env(profile: ClientProfile) -> dict[str, str]:
    if profile.wallet == "env":
        return dict(os.environ)
    kind, _, n = profile.wallet.partition(":")
    if kind != "localnet" or not n.isdigit():
        raise ConfigError(f"wallet {profile.wallet!r}: 'env' or 'localnet:N'")
    from offchain.ton._wallet import localnet_mnemonic

    return {"WALLET_MNEMONIC": " ".join(localnet_mnemonic(int(n))), "WALLET_VERSION": "v5r1"}


def _channel_key(path: Path, *, fresh: bool = False) -> SigningKey:
    if path.exists() and not fresh:
        return SigningKey(bytes.fromhex(path.read_text().strip()))
    key = SigningKey.generate()
    write_atomic(path, (bytes(key).hex() + "\n").encode(), mode=0o600)
    return key


@contextlib.asynccontextmanager
async def open_profile_client(path: str | os.PathLike[str]) -> AsyncIterator[CocoonClient]:
    """A connected `CocoonClient` with an open channel, from the profile at `path`.

    Raises:
        ConfigError: the profile is missing or wrong, or the chain cannot be reached.
    """
    from offchain.errors import ProviderError
    from offchain.ton.network import create_network_provider

    profile = read_profile(path)
    base = Path(path).parent
    config = ClientConfig(router_url=profile.router_url, root=profile.root, router=profile.router,
                          router_key=bytes.fromhex(profile.router_key))
    try:
        net = await create_network_provider(profile.network, base_url=profile.url, env=_wallet_env(profile))
    except ProviderError as err:
        raise ConfigError(f"cannot reach {profile.network} at {profile.url}: {err}") from err
    async with net:
        key_file = base / profile.channel_key_file
        for fresh in (False, True):
            client = CocoonClient(config, chain=net.chain, wallet=net.sender(), channel_key=_channel_key(key_file,
                                  fresh=fresh), store=base / profile.store)
            try:
                await client.open_channel(deposit=profile.deposit)
            except ConfigError as err:
                await client.close()
                if fresh or "closed or closing" not in str(err):
                    raise
                continue  # the old key's channel was closed: a new key, a new channel
            except ProviderError as err:
                await client.close()
                raise ConfigError(f"cannot reach {profile.network} at {profile.url}: {err}") from err
            break
        async with client:
            yield client
