"""SQLite with group commit, for agents whose money depends on what is on disk.

WAL mode, `synchronous=FULL`: a commit is on disk when `write` returns. Writes staged while
a commit runs go together in the next one (group commit), so concurrent requests pay one
fsync per batch, not one each, and the event loop never blocks on the disk: commits run in
a worker thread. The router's books and the client SDK's both sit on this.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from offchain.errors import StorageError

__all__ = ["Op", "SqliteStore"]

Op = tuple[str, Sequence[Any]]
"""One statement and its parameters."""


class SqliteStore:
    """One SQLite file: `write` (group commit, awaited by any number of tasks) and `query`.

    Args:
        path: the file (its folder is created).
        schema: statements run at open (CREATE TABLE IF NOT EXISTS ...).
        what: how error messages name this store ("the router's store").
    """

    def __init__(self, path: Path | str, schema: str, *, what: str = "store") -> None:
        self.path = Path(path)
        self.what = what
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(schema)
        except sqlite3.Error as err:
            raise StorageError(f"cannot open {what} {self.path}: {err}") from err
        self._lock = threading.Lock()  # the connection is used by the commit thread and by reads
        self._staged: list[Op] = []
        self._next: asyncio.Future[None] | None = None
        self._running = False
        self._drainer: asyncio.Task[None] | None = None
        self.commits = 0

    def submit(self, ops: Sequence[Op]) -> asyncio.Future[None]:
        """Stage `ops` now (in call order: a later submit is applied after an earlier one)
        and return the future of the commit that will carry them. Call from the event loop."""
        loop = asyncio.get_running_loop()
        if not ops:  # nothing to commit (a drain would find nothing staged and never answer)
            done: asyncio.Future[None] = loop.create_future()
            done.set_result(None)
            return done
        self._staged.extend(ops)
        if self._next is None:
            self._next = loop.create_future()
        fut = self._next
        if not self._running:
            self._running = True
            self._drainer = loop.create_task(self._drain())  # held: the loop keeps only weak refs
        return fut

    async def write(self, ops: Sequence[Op]) -> None:
        """Commit `ops` (with whatever else is staged); returns once they are on disk.

        Cancelling the caller does not cancel the commit (other writers share it).

        Raises:
            StorageError: the commit failed (nothing of its batch was written).
        """
        await asyncio.shield(self.submit(ops))

    async def _drain(self) -> None:
        try:
            while self._staged:
                ops, fut = self._staged, self._next
                self._staged, self._next = [], None
                try:
                    await asyncio.to_thread(self._commit, ops)
                except Exception as err:
                    if fut is not None and not fut.done():
                        exc = StorageError(f"{self.what} commit failed: {err}")
                        exc.__cause__ = err
                        fut.set_exception(exc)
                    continue
                if fut is not None and not fut.done():
                    fut.set_result(None)
        finally:
            self._running = False

    def _commit(self, ops: list[Op]) -> None:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in ops:
                    self.db.execute(sql, params)
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:  # a failed COMMIT may leave it open: the next BEGIN would fail
                    self.db.execute("ROLLBACK")
                raise
            self.commits += 1

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read (safe while a commit runs in the thread: they share a lock)."""
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self.db.close()
