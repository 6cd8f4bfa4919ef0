"""The validator agent: spot checks of workers (mystery shopping), reputation reports to the
router, fraud records and quorum-signed slashing orders relayed through Root."""

from __future__ import annotations

from offchain.validator._agent import Validator, ValidatorConfig

__all__ = ["Validator", "ValidatorConfig"]
