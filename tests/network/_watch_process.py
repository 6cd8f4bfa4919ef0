"""A watcher process for the kill test: records every event in its own SQLite store, exactly once.

    python -m tests.network._watch_process URL DB ACCOUNT [ACCOUNT ...]

Each event is inserted into `seen` inside the watcher's transaction, so the table and the
cursor always agree; the test kills this process with SIGKILL and starts it again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys

from offchain.ton.network import LocalnetProvider
from offchain.ton.watcher import CursorStore, Watcher, WatchEvent


def record(events: list[WatchEvent], db: sqlite3.Connection) -> None:
    for e in events:
        db.execute(
            "INSERT INTO seen(account, lt, idx, kind, hash) VALUES (?, ?, ?, ?, ?)",
            (e.account, e.lt, e.index, e.kind, e.tx.hash.hex()),
        )


async def main(url: str, db_path: str, accounts: list[str]) -> None:
    store = CursorStore(db_path)
    store.db.execute("CREATE TABLE IF NOT EXISTS seen(account TEXT, lt INTEGER, idx INTEGER, kind TEXT, hash TEXT)")
    chain = LocalnetProvider(url)
    watcher = Watcher(chain, accounts, store=store, poll_interval=0.05)
    print("watching", flush=True)
    try:
        await watcher.run(record)
    finally:
        await chain.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
