"""pytest fixtures for contract tests: `blockchain`, `treasury`, `gas_snapshot`.

Registered through the `pytest11` entry point, so any test in the project gets them.
`--update-gas` rewrites `tests/gas_snapshot.json`; without it, a gas rise fails the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offchain.ton.blockchain import Blockchain, Treasury
from offchain.ton.build import PROJECT_ROOT
from offchain.ton.gas import GasSnapshot

SANDBOX_NOW = 1_800_000_000  # a fixed clock makes gas and fees reproducible
_SNAPSHOT_KEY = pytest.StashKey[GasSnapshot]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cocoon")
    group.addoption("--update-gas", action="store_true", help="rewrite tests/gas_snapshot.json")
    group.addoption(
        "--gas-snapshot",
        default=str(PROJECT_ROOT / "tests" / "gas_snapshot.json"),
        help="path of the gas snapshot file",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SNAPSHOT_KEY] = GasSnapshot(Path(config.getoption("--gas-snapshot")))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    snap = session.config.stash.get(_SNAPSHOT_KEY, None)
    if snap is None or not snap.measured:
        return
    if session.config.getoption("--update-gas"):
        snap.write()
        return
    rises, _changes = snap.compare()
    if rises:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("GAS ROSE (explain it, then run with --update-gas):", red=True)
            for line in rises:
                reporter.write_line("  " + line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    snap = config.stash.get(_SNAPSHOT_KEY, None)
    if snap is None or not snap.measured:
        return
    _rises, changes = snap.compare()
    if changes and not config.getoption("--update-gas"):
        terminalreporter.write_line("gas snapshot differs (not a rise); run with --update-gas to record:")
        for line in changes:
            terminalreporter.write_line("  " + line)


@pytest.fixture
def blockchain() -> Iterator[Blockchain]:
    yield Blockchain.create(now=SANDBOX_NOW)


@pytest.fixture
def treasury(blockchain: Blockchain) -> Callable[..., Treasury]:
    """`treasury("alice")`: a funded account (1M TON) with a deterministic address."""
    return blockchain.treasury


@pytest.fixture
def gas_snapshot(request: pytest.FixtureRequest) -> GasSnapshot:
    return request.config.stash[_SNAPSHOT_KEY]
