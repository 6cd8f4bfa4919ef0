"""Runs one script: shared options → `NetworkProvider` → `scripts.<name>.run(provider, args)`."""

from __future__ import annotations

import argparse
import asyncio
import importlib
from typing import Any

from offchain.deployments import HOME_ENV, default_url, using_home
from offchain.ton.network import NETWORKS, create_network_provider

__all__ = ["run_script", "run_script_async"]


def _options(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--network", choices=NETWORKS, default="localnet")
    ap.add_argument("--wallet", choices=("mnemonic", "tonconnect"), default="mnemonic")
    ap.add_argument("--url", help="API base URL (default on localnet: the recorded deployment's)")
    return ap.parse_known_args(argv)


async def run_script_async(name: str, argv: list[str], env: dict[str, str] | None = None) -> Any:
    """`scripts.<name>.run(provider, args)` on the network `--network` names; returns its result.

    `env` (default: the process's) holds the wallet, and may hold `COCOON_HOME`: the home
    whose recorded deployments the script reads (`--root`) and `deploy` writes. Without
    `--url` on localnet, every script but `deploy` uses the recorded deployment's URL.

    Raises:
        CocoonError: whatever the script raises (ConfigError, ScriptError, ProviderError ...).
    """
    ns, rest = _options(argv)
    module = importlib.import_module(f"scripts.{name}")
    with using_home(env.get(HOME_ENV) if env is not None else None):
        url = ns.url if name == "deploy" else default_url(ns.network, ns.url, env)
        provider = await create_network_provider(ns.network, wallet=ns.wallet, env=env, base_url=url)
        async with provider:
            return await module.run(provider, rest)


def run_script(name: str, argv: list[str]) -> int:
    """The CLI entry: run the script, exit status 0 (errors propagate to the CLI's one-line handler)."""
    asyncio.run(run_script_async(name, argv))
    return 0
