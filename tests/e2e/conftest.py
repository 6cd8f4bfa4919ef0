"""End-to-end fixtures: a whole network as real processes, started by the devnet code."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from offchain.devnet import Devnet, DevnetConfig


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """localnet + Root + router + 2 workers (coefficients 1000 and 1100) + gateway."""
    net = Devnet(tmp_path_factory.mktemp("devnet"), DevnetConfig(workers=2, redeem_threshold="0.00001",
                                                                 redeem_interval=2.0, api_key="sk-test"))
    net.start()
    yield net
    net.close()
