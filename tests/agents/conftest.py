"""Fixtures shared by the agent tests (tests/agents/).

The agents run on the emulator sandbox (`offchain.ton.blockchain.Blockchain` behind an
`EmulatorProvider`); each test module builds the chain state it needs from the contract
tests' helpers (tests/contracts/conftest.py, tests/contracts/payments.py).
"""

from __future__ import annotations
