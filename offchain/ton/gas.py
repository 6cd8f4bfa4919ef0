"""Gas snapshot: gas and fees per named contract operation, kept in a committed JSON file.

Gas of an operation = compute gas summed over the transactions it triggers, excluding
the first (the sender wallet's), as tolk-bench counts; fees = total fees of the same
transactions in nanoTON. Tests call `record(name, result)`; at the end of the session
the plugin compares with the file (a rise fails the run) or rewrites it with
`--update-gas`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from offchain.ton.transaction import SendResult

__all__ = ["GasEntry", "GasSnapshot"]


@dataclass(frozen=True)
class GasEntry:
    gas: int
    fees: int
    transactions: int


@dataclass
class GasSnapshot:
    path: Path
    measured: dict[str, GasEntry] = field(default_factory=dict)

    def record(self, name: str, result: SendResult, *, skip_first: bool = True) -> GasEntry:
        entry = GasEntry(
            gas=result.gas(skip_first=skip_first),
            fees=result.fees(skip_first=skip_first),
            transactions=len(result.transactions) - (1 if skip_first else 0),
        )
        prev = self.measured.get(name)
        if prev is not None and prev != entry:
            raise AssertionError(f"gas entry {name!r} recorded twice with different values: {prev} vs {entry}")
        self.measured[name] = entry
        return entry

    def committed(self) -> dict[str, GasEntry]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {k: GasEntry(**v) for k, v in data.items()}

    def compare(self) -> tuple[list[str], list[str]]:
        """(rises, other changes) between what was measured and the committed file."""
        old = self.committed()
        rises, changes = [], []
        for name, new in sorted(self.measured.items()):
            before = old.get(name)
            if before is None:
                changes.append(f"new: {name} gas={new.gas} fees={new.fees}")
            elif new.gas > before.gas:
                rises.append(f"{name}: gas {before.gas} -> {new.gas} (+{new.gas - before.gas})")
            elif new != before:
                changes.append(f"{name}: gas {before.gas} -> {new.gas}, fees {before.fees} -> {new.fees}")
        return rises, changes

    def write(self) -> None:
        merged = self.committed()
        merged.update(self.measured)
        data = {k: vars(v) for k, v in sorted(merged.items())}
        self.path.write_text(json.dumps(data, indent=2) + "\n")

    def table(self) -> str:
        rows = [("operation", "gas", "fees (nanoTON)", "txs")]
        rows += [(k, str(v.gas), str(v.fees), str(v.transactions)) for k, v in sorted(self.measured.items())]
        w = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) for r in rows)
