"""Every test gets its own `COCOON_HOME` (the folder `cocoon deploy` records deployments in),
so no test writes into the repository's `.cocoon/` or reads another test's deployment."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _cocoon_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("cocoon-home")
    monkeypatch.setenv("COCOON_HOME", str(home))
    return home
