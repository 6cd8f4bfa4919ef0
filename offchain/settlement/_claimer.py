"""A provider agent claims its rewards by itself: it follows the pool's epoch, finds its proof
in the published epochs folder, and claims when what it earned and has not claimed is above
its threshold, which never goes below what a claim can cost (`CLAIM_FEE`, the least value a
ClaimReward carries above its forward fee: a claim never pays more in fees than it brings).

    claimer = Claimer(net, provider, Role.BANDWIDTH, ClaimConfig(epochs_dir=Path("epochs")))
    await claimer.run()            # forever; or `await claimer.claim_once()` -> nanoTON claimed

Config keys (`claim_config`): `epochs_dir` (none: no claims), `claim_threshold` (TON,
default 0.1), `claim_interval` (seconds between polls of the pool, default 10).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offchain.settlement._publish import find_proof
from wrappers.provider import CLAIM_VALUE, Provider, Role
from wrappers.reward_pool import CLAIM_FEE, RewardPool

__all__ = ["ClaimConfig", "Claimer", "claim_config", "provider_claimer"]

log = logging.getLogger("cocoon.claim")


@dataclass
class ClaimConfig:
    epochs_dir: Path
    threshold: int = CLAIM_VALUE  # nanoTON earned and unclaimed above which a claim is sent
    interval: float = 10.0
    value: int = CLAIM_VALUE  # sent with the claim; the pool returns the unspent part
    timeout: float = 60.0

    @property
    def floor(self) -> int:
        """The least unclaimed amount that is claimed: the threshold, never below a claim's cost."""
        return max(self.threshold, CLAIM_FEE)


def claim_config(cfg: Any) -> ClaimConfig | None:
    """From an agent's config (`epochs_dir`, `claim_threshold` in TON, `claim_interval`);
    None without `epochs_dir`."""
    from scripts._common import parse_ton

    folder = cfg.get("epochs_dir")
    if not folder:
        return None
    return ClaimConfig(
        epochs_dir=Path(folder),
        threshold=parse_ton(cfg.get("claim_threshold", "0.1"), "claim_threshold"),
        interval=cfg.num("claim_interval", 10.0),
    )


class Claimer:
    def __init__(self, net: Any, provider: Provider, role: Role, config: ClaimConfig) -> None:
        self.net = net
        self.provider = provider
        self.role = role
        self.config = config
        self.claimed = 0  # nanoTON this claimer got paid
        self._seen: tuple[int, int] | None = None  # (pool epoch, provider's claimed) last looked at

    async def run(self) -> None:
        if self.config.floor > self.config.threshold:
            log.info("claim threshold raised to %d nanoTON: a claim may cost that much", self.config.floor)
        while True:
            try:
                await self.claim_once()
            except Exception as err:  # the top of a task: the next poll retries
                log.warning("claim of %s failed: %s", self.provider.address.to_str(False), err)
            await asyncio.sleep(self.config.interval)

    async def claim_once(self) -> int:
        """Claim if the published proof for the pool's current tree brings more than the floor;
        returns what was claimed (0: nothing to do)."""
        pp = self.net.open(self.provider)
        d = await self.provider.get_provider_data(pp)
        if d.reward_pool is None:
            return 0
        pool = RewardPool.create_from_address(d.reward_pool)
        pd = await pool.get_pool_data(self.net.open(pool))
        if self._seen == (pd.epoch, d.claimed) or pd.epoch == 0:
            return 0
        proof = find_proof(self.config.epochs_dir, self.provider.address, int(self.role), pd.merkle_root)
        if proof is None:
            return 0  # not earned in this tree, or not published (yet): looked at again next poll
        unclaimed = proof.cumulative - d.claimed
        if unclaimed <= self.config.floor:
            self._seen = (pd.epoch, d.claimed)
            log.info("epoch %d: %d nanoTON unclaimed, not above the threshold %d", pd.epoch, unclaimed,
                     self.config.floor)
            return 0
        if not proof.verify(pd.merkle_root.to_bytes(32, "big"), pd.root_total):
            log.warning("epoch %d: the published proof is not in the pool's tree; not claimed", pd.epoch)
            self._seen = (pd.epoch, d.claimed)
            return 0
        sent = await self.provider.send_claim_reward(
            pp, self.net.sender(), cumulative=proof.cumulative, path=proof.path, proof=proof.cell,
            value=self.config.value,
        )
        await sent.wait_delivered(timeout=self.config.timeout)
        after = await self._claimed_after(pp, d.claimed)
        got = after - d.claimed
        self.claimed += got
        self._seen = (pd.epoch, after)
        if got:
            log.info("epoch %d: claimed %d nanoTON (claimed total %d)", pd.epoch, got, after)
        else:
            log.warning("epoch %d: the claim of %d nanoTON was not paid", pd.epoch, unclaimed)
        return got

    async def _claimed_after(self, pp: Any, before: int) -> int:
        """The Provider's claimed total once the claim's round trip is done (bounded wait)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeout
        while True:
            claimed = (await self.provider.get_provider_data(pp)).claimed
            if claimed != before or loop.time() > deadline:
                return claimed
            await asyncio.sleep(0.5)


async def provider_claimer(cfg: Any, net: Any, role: Role, provider: Provider | None = None) -> Claimer | None:
    """The claimer an agent runs for its wallet's Provider of `role` (`provider`, or Root's
    address of it), or None: no `epochs_dir` configured, or no such Provider deployed (a
    router or validator that never registered one: its leaves wait in the tree)."""
    config = claim_config(cfg)
    if config is None:
        return None
    if provider is None:
        from pytoniq_core import Address

        from wrappers.root import Root

        root = Root.create_from_address(Address(cfg.need("root")))
        addr = await root.get_provider_address(net.open(root), net.sender().address, role)
        if not await net.is_contract_deployed(addr):
            log.info("no %s Provider registered for this wallet (%s): nothing to claim", role.name.lower(),
                     addr.to_str(False))
            return None
        provider = Provider.create_from_address(addr)
    log.info("claiming %s rewards from %s above %d nanoTON", role.name.lower(), config.epochs_dir, config.floor)
    return Claimer(net, provider, role, config)
