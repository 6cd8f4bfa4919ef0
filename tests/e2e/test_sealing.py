"""Requests are sealed end to end: the router forwards and bills ciphertext only.

A unique sentence goes through the gateway (the SDK seals it); afterwards it is searched for
in everything of the router's: its log, its SQLite files, and its process memory (read from
/proc, as a debugger would). The gateway's memory is searched the same way as the control:
it must hold the sentence, or the search proves nothing."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import openai
import pytest

from offchain.devnet import Devnet

MODEL = "all-MiniLM-L6-v2"


def process_memory_has(pid: int, needle: bytes) -> bool:
    """Whether any readable, writable mapping of process `pid` contains `needle`."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if m is None or not m.group(3).startswith("rw"):
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except (OSError, ValueError, OverflowError):
                continue
    return False


def files_have(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.skipif(not os.access("/proc/self/mem", os.R_OK), reason="needs /proc/<pid>/mem")
def test_router_never_sees_the_plaintext(devnet: Devnet) -> None:
    secret = f"my confidential prompt {uuid.uuid4().hex}"
    client = openai.OpenAI(base_url=devnet.gateway_url, api_key="sk-test", timeout=60, max_retries=0)
    for _ in range(3):
        r = client.embeddings.create(input=[secret], model=MODEL)
        assert len(r.data[0].embedding) == 384
    needle = secret.encode()
    router = devnet.sup.procs["router"]
    assert not files_have(devnet.workdir / "router", needle), "plaintext in the router's SQLite files"
    assert needle not in router.log.read_bytes(), "plaintext in the router's log"
    assert not process_memory_has(router.pid, needle), "plaintext in the router's memory"
    # the control: the same search finds it in the process that had it in the clear (the
    # gateway, which sealed it), or the search would prove nothing
    assert process_memory_has(devnet.sup.procs["gateway"].pid, needle), "the memory search finds nothing at all"


def test_a_plain_request_would_be_seen_by_the_router(devnet: Devnet, tmp_path: Path) -> None:
    """The same search on the router's memory does find a request sent unsealed (the
    benchmark-only `seal=False` path): so the test above can fail."""
    import asyncio

    from nacl.signing import SigningKey

    from offchain.client import ClientConfig, CocoonClient
    from offchain.devnet import wallet_env
    from offchain.ton.network import create_network_provider

    secret = f"an unsealed prompt {uuid.uuid4().hex}"

    async def main() -> None:
        net = await create_network_provider(
            "localnet", base_url=devnet.api_url, env=wallet_env(devnet.client_wallet + 1)
        )
        cfg = ClientConfig(
            router_url=devnet.router["url"],
            root=devnet.root,
            router=devnet.router["address"],
            router_key=bytes.fromhex(devnet.router["router_key"]),
            seal=False,
        )
        async with (
            net,
            CocoonClient(
                cfg,
                chain=net.chain,
                wallet=net.sender(),
                channel_key=SigningKey.generate(),
                store=tmp_path / "plain.db",
            ) as c,
        ):
            await c.open_channel(deposit=10**9)
            await c.embed([secret], model=MODEL)

    asyncio.run(main())
    assert process_memory_has(devnet.sup.procs["router"].pid, secret.encode())
