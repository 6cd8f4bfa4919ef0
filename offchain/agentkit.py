"""What every agent command shares: config (TOML + environment), node keys, the network,
structured logging, the ready file a supervisor waits on, and graceful shutdown.

Config: a TOML file (`--config`), each key overridable by `COCOON_<KEY>` in the environment
(upper case). The wallet is never in the file: `WALLET_MNEMONIC` (Blueprint's name), as for
the scripts. The same config works against localnet and testnet: only `network` and `url`
change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from offchain.deployments import home, load_deployment
from offchain.errors import ConfigError
from offchain.fsutil import write_atomic
from offchain.ton.network import NetworkProvider, create_network_provider

__all__ = ["AgentConfig", "load_config", "node_key", "open_network", "run_agent", "setup_logging", "write_ready"]


class AgentConfig(dict[str, Any]):
    """A flat mapping of settings with typed getters that fail with the key's name."""

    def need(self, key: str) -> Any:
        if key not in self or self[key] in (None, ""):
            raise ConfigError(f"config: {key!r} is required (in the TOML file or COCOON_{key.upper()})")
        return self[key]

    def num(self, key: str, default: float) -> float:
        try:
            return float(self.get(key, default))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"config: {key!r} must be a number, not {self.get(key)!r}") from err

    def int(self, key: str, default: int) -> int:
        try:
            return int(self.get(key, default))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"config: {key!r} must be an integer, not {self.get(key)!r}") from err


def load_config(path: Path | str | None, env: Mapping[str, str] | None = None, **defaults: Any) -> AgentConfig:
    """`defaults`, then the TOML file, then `COCOON_*` environment variables; then, when
    `root` (or on localnet `url`) is still missing and `cocoon deploy` recorded a deployment
    of the config's `network` in the home folder (`COCOON_HOME`), the deployment's.

    Raises:
        ConfigError: the file is missing or not valid TOML, or the deployment record is broken.
    """
    env = os.environ if env is None else env
    cfg = AgentConfig(defaults)
    if path is not None:
        try:
            cfg.update(tomllib.loads(Path(path).read_text()))
        except FileNotFoundError as err:
            raise ConfigError(f"config file {path} not found") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config file {path}: {err}") from err
    for key in list(cfg) + [k[7:].lower() for k in env if k.startswith("COCOON_")]:
        value = env.get(f"COCOON_{key.upper()}")
        if value is not None:
            if isinstance(cfg.get(key), list):
                cfg[key] = [v.strip() for v in value.split(",") if v.strip()]
            else:
                cfg[key] = value
    _from_deployment(cfg, env)
    return cfg


def _from_deployment(cfg: AgentConfig, env: Mapping[str, str]) -> None:
    missing_url = not cfg.get("url") and not env.get("COCOON_LOCALNET_URL")
    if cfg.get("root") and not missing_url:
        return
    network = str(cfg.get("network", "localnet"))
    dep = load_deployment(network, home(env))
    if dep is None:
        return
    if not cfg.get("root"):
        cfg["root"] = dep["root"]
    if missing_url and network == "localnet" and dep.get("url"):
        cfg["url"] = dep["url"]


def node_key(path: Path | str, *, fresh: bool = False) -> SigningKey:
    """The agent's ed25519 node key, kept as a hex seed in `path` (mode 0600).

    `fresh=True` makes a new key and replaces the file: a worker in a TEE does this at every
    boot (its Provider's node key is then updated on chain)."""
    p = Path(path)
    if p.exists() and not fresh:
        try:
            return SigningKey(bytes.fromhex(p.read_text().strip()))
        except ValueError as err:
            raise ConfigError(f"node key file {p} does not hold a 32-byte hex seed") from err
    key = SigningKey.generate()
    write_atomic(p, bytes(key).hex().encode(), mode=0o600)
    return key


async def open_network(cfg: AgentConfig) -> NetworkProvider:
    """The chain and wallet the config names (`network`, `url`; `WALLET_MNEMONIC`)."""
    return await create_network_provider(str(cfg.get("network", "localnet")), base_url=cfg.get("url") or None)


def write_ready(path: Path | str | None, info: Mapping[str, Any]) -> None:
    """Atomically write `info` as JSON: a supervisor waits for this file, never for a delay."""
    if not path:
        return
    write_atomic(path, json.dumps(dict(info)).encode(), fsync=False)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        peer = getattr(record, "peer", None)
        if peer:
            out["peer"] = peer
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(verbose: int = 0) -> None:
    """Human lines on a terminal, one JSON object a line otherwise (DESIGN.md, Observability)."""
    handler = logging.StreamHandler(sys.stderr)
    if sys.stderr.isatty():
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_JsonFormatter())
    root = logging.getLogger("cocoon")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    root.propagate = False


def run_agent(main: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run `main(stop)` until it returns; SIGTERM / SIGINT set `stop` (graceful shutdown)."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows' event loop
                loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())
    return 0
