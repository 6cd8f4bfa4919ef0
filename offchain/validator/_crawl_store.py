"""The validator's crawl file: every crawl task it runs, its frontier, its signed records and
the robots.txt answers it went by, so a validator killed mid-crawl resumes where the disk
says, without fetching a recorded page again and without losing one.

    tasks(id, spec, started_at, state, stop)        one row per crawl (the router's task id)
                                                    state: running | done; stop: a CrawlStop once done
    frontier(task, url, depth, seq, state)          every URL the crawl queued (seq: discovery order)
                                                    state: queued | done | failed | skipped | duplicate
                                                    (depth 0 for one never queued: a redirect's target)
    records(task, idx, url, body_sha256, signed)    the signed records, idx 0, 1, ... (the dataset order)
    robots(task, host, status, body)                each host's robots.txt response (status 0: unreachable)

Write order: a record is written (`await store.write([store.op_record(...), ...])`) BEFORE
it is sent anywhere: what the client holds is always on disk, so a resumed crawl sends the
same record under the same index again (the client keeps the first copy) and never signs a
second, different record for a page already delivered. Inserting a record marks its page's
frontier row done in the same statement (a trigger), so no crash can leave a recorded page
queued (fetched again) or a done page without its record. A page that was in flight at the
kill is still `queued` on disk: handed out again on resume.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TypedDict

import msgspec

from offchain.protocol.provenance import SignedRecord
from offchain.protocol.wire import CrawlSpec, CrawlStop
from offchain.sqlite_store import Op, SqliteStore
from offchain.validator._crawl import Page, Robots

__all__ = ["PAGE_STATES", "CrawlStore", "Resume"]

PAGE_STATES = frozenset({"queued", "done", "failed", "skipped", "duplicate"})
"""A frontier row's states: waiting (or in flight); fetched (recorded, a non-2xx, or
redirected away); given up; disallowed by robots.txt; a body seen before."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY, spec BLOB NOT NULL, started_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')), stop INTEGER
);
CREATE TABLE IF NOT EXISTS frontier (
    task INTEGER NOT NULL, url TEXT NOT NULL, depth INTEGER NOT NULL, seq INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'done', 'failed', 'skipped', 'duplicate')),
    PRIMARY KEY (task, url)
);
CREATE INDEX IF NOT EXISTS frontier_order ON frontier (task, seq);
CREATE TABLE IF NOT EXISTS records (
    task INTEGER NOT NULL, idx INTEGER NOT NULL, url TEXT NOT NULL, body_sha256 BLOB NOT NULL, signed BLOB NOT NULL,
    PRIMARY KEY (task, idx)
);
CREATE INDEX IF NOT EXISTS records_body ON records (task, body_sha256);
CREATE TABLE IF NOT EXISTS robots (
    task INTEGER NOT NULL, host TEXT NOT NULL, status INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (task, host)
);
CREATE TRIGGER IF NOT EXISTS record_marks_page AFTER INSERT ON records BEGIN
    INSERT OR IGNORE INTO frontier (task, url, depth, seq, state)
        VALUES (NEW.task, NEW.url, 0, (SELECT COALESCE(MAX(seq), -1) + 1 FROM frontier WHERE task = NEW.task), 'done');
    UPDATE frontier SET state = 'done' WHERE task = NEW.task AND url = NEW.url;
END;
"""

_NEXT_SEQ = "(SELECT COALESCE(MAX(seq), -1) + 1 FROM frontier WHERE task = ?)"  # discovery order, per task

_spec_enc = msgspec.msgpack.Encoder()
_spec_dec = msgspec.msgpack.Decoder(CrawlSpec)
_record_enc = msgspec.msgpack.Encoder()
_record_dec = msgspec.msgpack.Decoder(SignedRecord)


class Resume(TypedDict):
    """What a resumed crawl needs (`Frontier.restore` takes the first six as keywords)."""

    queued: list[Page]  # in (depth, discovery) order; those in flight at the kill included
    seen: list[str]  # every URL in the frontier, whatever its state
    recorded: int
    failed: int
    skipped: int
    duplicates: int  # rows marked 'duplicate' (a crawler that marks them 'done' gets 0)
    robots: dict[str, Robots]  # host -> its rules, from the stored response
    bodies: set[bytes]  # body hashes of the records: a later page with one is a duplicate


class CrawlStore(SqliteStore):
    """One validator's crawls (see the module doc). Writes are `Op`s for `write` (group
    commit); reads are plain calls."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA, what="the validator's crawl store")

    # ---- writes -----------------------------------------------------------------------------
    @staticmethod
    def op_task(task: int, spec: CrawlSpec, at: int) -> Op:
        """A new task (started at unix time `at`). A task id already there keeps its spec:
        compare with `task()` first."""
        return (
            "INSERT OR IGNORE INTO tasks (id, spec, started_at, state) VALUES (?,?,?,'running')",
            (task, _spec_enc.encode(spec), at),
        )

    @staticmethod
    def op_queue(task: int, pages: Iterable[Page]) -> list[Op]:
        """`pages` queued, in order (a URL already in the frontier is left as it is)."""
        return [
            (
                f"INSERT OR IGNORE INTO frontier (task, url, depth, seq, state) VALUES (?,?,?,{_NEXT_SEQ},'queued')",
                (task, p.url, p.depth, task),
            )
            for p in pages
        ]

    @staticmethod
    def op_page_state(task: int, url: str, state: str) -> Op:
        """`url`'s frontier row set to `state` (one of `PAGE_STATES`); a URL the frontier did
        not hold (a redirect's target) is added, so a resume counts it as seen.

        Raises:
            ValueError: `state` is not one of `PAGE_STATES`.
        """
        if state not in PAGE_STATES:
            raise ValueError(f"{state!r} is not a frontier state ({', '.join(sorted(PAGE_STATES))})")
        return (
            f"INSERT INTO frontier (task, url, depth, seq, state) VALUES (?,?,0,{_NEXT_SEQ},?)"
            " ON CONFLICT (task, url) DO UPDATE SET state = excluded.state",
            (task, url, task, state),
        )

    @staticmethod
    def op_record(task: int, idx: int, url: str, signed: SignedRecord) -> Op:
        """Record `idx` of the crawl, for page `url`; its frontier row becomes done in the same
        statement. Write it before sending it (module doc). A second record under the same
        index fails the commit: indexes are the dataset's order and never reused."""
        return (
            "INSERT INTO records (task, idx, url, body_sha256, signed) VALUES (?,?,?,?,?)",
            (task, idx, url, signed.record.body_sha256, _record_enc.encode(signed)),
        )

    @staticmethod
    def op_robots(task: int, host: str, status: int, body: bytes) -> Op:
        """`host`'s robots.txt answer (`status` 0 when there was none): kept so a resumed crawl
        goes by the same rules without fetching it again."""
        return (
            "INSERT INTO robots (task, host, status, body) VALUES (?,?,?,?)"
            " ON CONFLICT (task, host) DO UPDATE SET status = excluded.status, body = excluded.body",
            (task, host, status, body),
        )

    @staticmethod
    def op_task_done(task: int, stop: CrawlStop | int) -> Op:
        return ("UPDATE tasks SET state = 'done', stop = ? WHERE id = ?", (int(stop), task))

    @staticmethod
    def op_forget(task: int) -> list[Op]:
        """Everything about `task` deleted."""
        return [(f"DELETE FROM {table} WHERE {key} = ?", (task,)) for table, key in
                (("records", "task"), ("frontier", "task"), ("robots", "task"), ("tasks", "id"))]

    async def forget(self, task: int) -> None:
        """Delete `task` (once the router has settled it: nothing is left to resume)."""
        await self.write(self.op_forget(task))

    # ---- reads ------------------------------------------------------------------------------
    def task(self, task: int) -> tuple[CrawlSpec, str, CrawlStop | None] | None:
        """(spec, state, stop) of `task`, None if unknown. The spec is the stored one: a task id
        sent again with another spec is the caller's to refuse (compare them)."""
        rows = self.query("SELECT spec, state, stop FROM tasks WHERE id = ?", (task,))
        if not rows:
            return None
        spec, state, stop = rows[0]
        return _spec_dec.decode(spec), str(state), CrawlStop(stop) if stop is not None else None

    def tasks(self) -> list[tuple[int, str, CrawlStop | None, int]]:
        """(id, state, stop, started_at) of every task, by id."""
        rows = self.query("SELECT id, state, stop, started_at FROM tasks ORDER BY id")
        return [(int(i), str(s), CrawlStop(p) if p is not None else None, int(a)) for i, s, p, a in rows]

    def records(self, task: int) -> list[SignedRecord]:
        """The task's signed records in index order (index i is the list's i-th)."""
        rows = self.query("SELECT signed FROM records WHERE task = ? ORDER BY idx", (task,))
        return [_record_dec.decode(signed) for (signed,) in rows]

    def has_body(self, task: int, body_sha256: bytes) -> bool:
        """Whether a record of `task` already has this body."""
        return bool(self.query("SELECT 1 FROM records WHERE task = ? AND body_sha256 = ? LIMIT 1",
                               (task, body_sha256)))

    def resume(self, task: int) -> Resume:
        """What `task`'s frontier, robots.txt rules and duplicate check resume from."""
        states = dict(self.query("SELECT state, COUNT(*) FROM frontier WHERE task = ? GROUP BY state", (task,)))
        queued = self.query("SELECT url, depth FROM frontier WHERE task = ? AND state = 'queued' ORDER BY depth, seq",
                            (task,))
        seen = self.query("SELECT url FROM frontier WHERE task = ? ORDER BY seq", (task,))
        bodies = self.query("SELECT body_sha256 FROM records WHERE task = ?", (task,))
        robots = self.query("SELECT host, status, body FROM robots WHERE task = ? ORDER BY host", (task,))
        return Resume(
            queued=[Page(str(u), int(d)) for u, d in queued],
            seen=[str(u) for (u,) in seen],
            recorded=len(bodies),
            failed=int(states.get("failed", 0)),
            skipped=int(states.get("skipped", 0)),
            duplicates=int(states.get("duplicate", 0)),
            robots={str(h): Robots.from_response(int(s), bytes(b)) for h, s, b in robots},
            bodies={bytes(b) for (b,) in bodies},
        )
