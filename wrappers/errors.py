"""Contract exit codes, mirrored from `contracts/common/errors.tolk` (checked by test_abi_mirror).

Members are the Tolk `ERR_*` names without the prefix. Ranges: Root 1000-1099,
Provider 1100-1199, Channel 1200-1299, RewardPool 1300-1399, shared 1900-1999.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    # Root
    INVALID_SPLIT = 1000
    NOT_PENDING_OWNER = 1001
    ENTRY_NOT_FOUND = 1002
    INVALID_THRESHOLD = 1003
    TOO_MANY_VALIDATORS = 1004
    WRONG_ROOT = 1005
    NONCE_USED = 1006
    UNKNOWN_VALIDATOR = 1007
    INVALID_SIGNATURE = 1008
    NOT_ENOUGH_SIGNATURES = 1009
    IMAGE_NOT_ALLOWED = 1010
    # Provider
    ALREADY_REGISTERED = 1100
    NOT_REGISTERED = 1101
    STAKE_BELOW_MINIMUM = 1102
    NOT_FROM_ROOT = 1103
    COOLDOWN_NOT_OVER = 1104
    AMOUNT_EXCEEDS_UNLOCKED = 1105
    NOTHING_TO_UNSTAKE = 1106
    NOT_FROM_REWARD_POOL = 1107
    CLAIM_DECREASES = 1108
    # shared
    UNKNOWN_OP = 1900
    NOT_OWNER = 1901
    NOT_ENOUGH_VALUE = 1902
    INVALID_ROLE = 1903
