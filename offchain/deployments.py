"""Deployments remembered per network, as Blueprint remembers what it deployed.

`cocoon deploy` writes `<home>/deployments/<network>.json` (atomically) after a successful
deploy, and again on an idempotent re-run; later commands (`cocoon provider`, `config`,
`dataset`, `epoch`, `status`, the agents' configs) take `--root`, and on localnet `--url`
(its port is dynamic), from it when they are not given:

    record_deployment("localnet", {"root": "0:ab..", "url": "http://127.0.0.1:40123/api/v2", ...})
    dep = load_deployment("localnet")          # the dict, or None when nothing was deployed
    root = default_root("localnet", args.root)  # --root, else the deployment's, else one error line

The home folder is `$COCOON_HOME`, else `./.cocoon`. A caller that runs a script in-process
for another home (the devnet) scopes it with `using_home(path)`, which wins over the
environment for the current task only.

Record fields (all optional but `root`): `network`, `root`, `reward_pool` (raw addresses),
`code_hashes` ({contract: hex}), `owner` (the deploying wallet), `params` (the parameter
file, absolute), `url` (the chain API used), `root_version`, `pool_config_version`,
`dev_attestation`, `deployed_at` (unix seconds of the first record of this Root),
`updated_at`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from offchain.errors import ConfigError
from offchain.fsutil import write_atomic

__all__ = [
    "HOME_ENV",
    "default_root",
    "default_url",
    "deployment_path",
    "home",
    "load_deployment",
    "missing_deployment",
    "record_deployment",
    "using_home",
]

HOME_ENV = "COCOON_HOME"
DEFAULT_HOME = ".cocoon"
_home: contextvars.ContextVar[Path | None] = contextvars.ContextVar("cocoon_home", default=None)


def home(env: Mapping[str, str] | None = None) -> Path:
    """The home folder: `using_home`'s, else `$COCOON_HOME` (of `env`, else the process's), else `./.cocoon`."""
    scoped = _home.get()
    if scoped is not None:
        return scoped
    env = os.environ if env is None else env
    return Path(env.get(HOME_ENV) or DEFAULT_HOME)


_current_home = home  # for the functions below, whose `home` argument shadows it


@contextlib.contextmanager
def using_home(path: Path | str | None) -> Iterator[None]:
    """Within the block (and the tasks it starts), `home()` is `path` (None: no change)."""
    if path is None:
        yield
        return
    token = _home.set(Path(path))
    try:
        yield
    finally:
        _home.reset(token)


def deployment_path(network: str, home: Path | str | None = None) -> Path:
    return (Path(home) if home is not None else _current_home()) / "deployments" / f"{network}.json"


def record_deployment(network: str, data: Mapping[str, Any], home: Path | str | None = None) -> Path:
    """Write the deployment of `network` (atomically: a reader sees the old file or the new one).

    A re-run for the same Root keeps the first `deployed_at`. Returns the file's path.

    Raises:
        ConfigError: `data` has no `root`, or the file cannot be written.
    """
    if not data.get("root"):
        raise ConfigError("a deployment record needs 'root'")
    path = deployment_path(network, home)
    now = int(time.time())
    record: dict[str, Any] = {"network": network, **data, "updated_at": now}
    try:
        old = load_deployment(network, home)
    except ConfigError:
        old = None
    if old is not None and old.get("root") == record["root"] and old.get("deployed_at"):
        record["deployed_at"] = old["deployed_at"]
    record.setdefault("deployed_at", now)
    try:
        write_atomic(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    except OSError as err:
        raise ConfigError(f"cannot record the {network} deployment in {path}: {err}") from err
    return path


def load_deployment(network: str, home: Path | str | None = None) -> dict[str, Any] | None:
    """The recorded deployment of `network`, or None when there is none.

    Raises:
        ConfigError: the file exists but is not a deployment record.
    """
    path = deployment_path(network, home)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not a deployment record ({err})") from err
    if not isinstance(doc, dict) or not doc.get("root"):
        raise ConfigError(f"{path}: not a deployment record (no 'root')")
    return doc


def missing_deployment(network: str, home: Path | str | None = None) -> ConfigError:
    """The one-line error of a command that needs a Root and has neither --root nor a deployment."""
    where = deployment_path(network, home)
    return ConfigError(
        f"no --root given and no {network} deployment recorded ({where}): "
        f"run `cocoon deploy --network {network}` first, or pass --root"
    )


def default_root(
    network: str, root: str | None, *, required: bool = True, home: Path | str | None = None
) -> str | None:
    """`root` when given, else the recorded deployment's Root of `network`.

    Raises:
        ConfigError: neither (when `required`), or a broken record.
    """
    if root:
        return root
    dep = load_deployment(network, home)
    if dep is not None:
        return str(dep["root"])
    if required:
        raise missing_deployment(network, home)
    return None


def default_url(
    network: str, url: str | None, env: Mapping[str, str] | None = None, home: Path | str | None = None
) -> str | None:
    """The chain URL a command uses: `url` when given; on localnet, else `COCOON_LOCALNET_URL`
    when set (None is returned: the provider reads it), else the recorded deployment's URL.
    Elsewhere the network's own default (None)."""
    if url or network != "localnet":
        return url or None
    env = os.environ if env is None else env
    if env.get("COCOON_LOCALNET_URL"):
        return None
    dep = load_deployment(network, home)
    return str(dep["url"]) if dep is not None and dep.get("url") else None
