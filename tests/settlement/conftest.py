"""The contracts' payment-stack fixtures (`pay`: Root, RewardPool, channels), for the
sandbox test that posts the settlement's reports to a real pool."""

from tests.contracts.conftest import compiled, pay, pay_chain, pay_deployed  # noqa: F401
