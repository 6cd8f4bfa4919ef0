"""Files written whole or not at all.

Every file another process may read while it is being written (ready files, deployments,
published epochs, dataset shards, keys) goes through `write_atomic`: the bytes go to a
temporary file beside the target, are fsynced, and replace the target in one rename. The
temporary name is unique per writer (pid and a random token), so two processes publishing
the same file at once (validators sharing an epochs folder) never rename each other's.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["temp_path", "write_atomic"]


def temp_path(path: Path | str) -> Path:
    """A temporary name beside `path` that no other writer uses."""
    p = Path(path)
    return p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_atomic(path: Path | str, data: bytes, *, mode: int = 0o644, fsync: bool = True) -> Path:
    """Replace `path` with `data` atomically (its folder is made if missing); `mode` is the
    new file's permission bits (0o600 for keys). A failure leaves the old file as it was and
    no temporary file behind."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(p)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p
