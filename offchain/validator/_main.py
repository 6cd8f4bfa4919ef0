"""`cocoon agent validator`: spot checks of a router's workers, from a TOML config.

    network = "localnet"                  # or testnet / mainnet; url = "http://..." to override
    root = "EQ..."                        # the foundation's Root
    router_url = "ws://127.0.0.1:8700"
    router = "0:..."  router_key = "hex"  # the router's wallet and node key (its ready file)
    model = "all-MiniLM-L6-v2"            # the allowlisted model probed (and run here)
    deposit = "1"                         # TON put in the probe channel when it is first opened
    probe_interval = 60                   # mean seconds between probe rounds (exponential)
    probe_burst = 0                       # probes per round (0: one per worker serving the model, <= 8)
    probe_inputs = 2                      # inputs per probe
    cosine_threshold = 0.99               # every vector's cosine with the local one must reach it
    reputation_alpha = 0.3                # weight of the newest probe in the pass rate
    fraud_failures = 3  fraud_window = 5  # N failed probes among the last M: fraud, slashed
    slash_amount = "1"                    # TON per slashing order
    model_threads = 1                     # onnxruntime threads of the local model
    ca_file = ""                          # CAs that crawled sites' certificates must chain to ("": the system's)
    crawl_concurrency = 4                 # fetches at once per crawl (one per host at a time)
    fetch_timeout = 30                    # seconds for one page through a data node
    data_dir = ".cocoon/validator"        # validator.db, crawl.db, client.db, node.key, channel.key
    ready_file = "..."                    # JSON {node_key, address, probe_wallet, channel} once running
    settle = false                        # settle each router epoch: ledger in, report posted, epochs_dir out
    epoch_seconds = 3600                  # the router's epoch_seconds
    epochs_dir = "epochs"                 # where settled epochs are published (epochs/N/...); its
                                          # VALIDATOR Provider (if registered) claims from there
    claim_threshold = "0.1"               # TON earned and unclaimed above which it claims
    stake = "10"                          # register (stake from the wallet) its VALIDATOR Provider at start

`node.key` (in `data_dir`, made if missing) is the key Root's validator set must hold: it
signs slashing orders and authenticates the validator's session to the router (which reads
Root's validator set from the chain when the session starts). `WALLET_MNEMONIC` is the
wallet that relays orders (and names the validator to the router); `PROBE_WALLET_MNEMONIC`,
if set, is the one that pays for probes on its own Channel (else the same wallet), so that
the router cannot tell probes from the validator's identity.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from nacl.signing import SigningKey

from offchain.agentkit import AgentConfig, node_key, open_network, write_ready
from offchain.errors import ConfigError
from offchain.protocol.wire import wire_address
from offchain.registration import register_from_config
from offchain.settlement._claimer import provider_claimer
from offchain.ton.network import create_network_provider
from offchain.validator._agent import Validator, ValidatorConfig
from offchain.validator._crawl_store import CrawlStore
from offchain.validator._crawler import CrawlerConfig
from offchain.validator._settle import SettleStore
from offchain.validator._store import ValidatorStore
from scripts._common import parse_ton
from wrappers.provider import Role

__all__ = ["run_validator"]

log = logging.getLogger("cocoon.validator")


def validator_config(cfg: AgentConfig, key: SigningKey) -> ValidatorConfig:
    try:
        router_key = bytes.fromhex(str(cfg.need("router_key")))
    except ValueError as err:
        raise ConfigError("config: router_key must be hex") from err
    return ValidatorConfig(
        root=wire_address(str(cfg.need("root"))),
        router_url=str(cfg.need("router_url")),
        router=wire_address(str(cfg.need("router"))),
        router_key=router_key,
        node_key=key,
        model=str(cfg.get("model", "all-MiniLM-L6-v2")),
        deposit=parse_ton(cfg.get("deposit", "1"), "deposit"),
        probe_interval=cfg.num("probe_interval", 60.0),
        probe_burst=cfg.int("probe_burst", 0),
        probe_inputs=cfg.int("probe_inputs", 2),
        cosine_threshold=cfg.num("cosine_threshold", 0.99),
        reputation_alpha=cfg.num("reputation_alpha", 0.3),
        fraud_failures=cfg.int("fraud_failures", 3),
        fraud_window=cfg.int("fraud_window", 5),
        slash_amount=parse_ton(cfg.get("slash_amount", "1"), "slash_amount"),
        model_threads=cfg.int("model_threads", 1),
        ca_file=str(cfg.get("ca_file", "")),
        settle=bool(cfg.get("settle", False)),
        epoch_seconds=cfg.int("epoch_seconds", 3600),
        epochs_dir=str(cfg.get("epochs_dir", "epochs")),
        crawl=CrawlerConfig(
            concurrency=cfg.int("crawl_concurrency", 4),
            fetch_timeout=cfg.num("fetch_timeout", 30.0),
        ),
    )


async def run_validator(cfg: AgentConfig, stop: asyncio.Event) -> None:
    data = Path(cfg.get("data_dir", ".cocoon/validator"))
    data.mkdir(parents=True, exist_ok=True)
    config = validator_config(cfg, node_key(data / "node.key"))
    channel_key = node_key(data / "channel.key")
    async with await open_network(cfg) as net:
        wallet = net.sender()
        if wallet is not None:  # with `stake`: its VALIDATOR Provider, holding its node key
            await register_from_config(cfg, net, Role.VALIDATOR, config.node_key)
        probe_mnemonic = os.environ.get("PROBE_WALLET_MNEMONIC")
        probe_net = net
        if probe_mnemonic:
            probe_net = await create_network_provider(
                str(cfg.get("network", "localnet")),
                base_url=cfg.get("url") or None,
                env={
                    "WALLET_MNEMONIC": probe_mnemonic,
                    "WALLET_VERSION": os.environ.get("PROBE_WALLET_VERSION", os.environ.get("WALLET_VERSION", "v5r1")),
                },
            )
        store = ValidatorStore(data / "validator.db")
        crawl_store = CrawlStore(data / "crawl.db")
        settle_store = SettleStore(data / "settle.db") if config.settle else None
        try:
            async with Validator(
                config,
                chain=net.chain,
                wallet=wallet,
                probe_wallet=probe_net.sender(),
                channel_key=channel_key,
                store=store,
                client_store=data / "client.db",
                crawl_store=crawl_store,
                settle_store=settle_store,
            ) as validator:
                info = {
                    "node_key": validator.public_key.hex(),
                    "address": validator.address,
                    "probe_wallet": wire_address(probe_net.sender().address),
                    "channel": validator.channel,
                }
                write_ready(cfg.get("ready_file"), info)
                log.info("validator ready: %s", info)
                claimer = await provider_claimer(cfg, net, Role.VALIDATOR)
                claiming = asyncio.ensure_future(claimer.run()) if claimer is not None else None
                serving = asyncio.ensure_future(validator.serve_forever())
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if claiming is not None:
                    claiming.cancel()
                await validator.close()
                await asyncio.gather(serving, return_exceptions=True)
                stopping.cancel()
                if serving.done() and not serving.cancelled() and serving.exception():
                    raise serving.exception()  # type: ignore[misc]
        finally:
            store.close()
            crawl_store.close()
            if settle_store is not None:
                settle_store.close()
            if probe_net is not net:
                await probe_net.close()
