"""`cocoon agent worker`: register as a gpu Provider if needed, then serve models to a router.

network = "localnet"
root = "EQ..."
router = "ws://router.example.org:8700"
models = ["all-MiniLM-L6-v2"]        # each must be in Root's model allowlist
coefficient = 1000                    # price = Root's compute price x coefficient / 1000
capacity = 64  max_batch = 32  max_wait_ms = 2
stake = "10"                          # TON staked at registration (from WALLET_MNEMONIC's wallet)
endpoint = "worker://my-gpu-box"      # what the Provider records
image = "hex"                         # the image hash (gpu providers; a dev worker declares it)
attestation = "dev"                   # or "tdx" (a TD: quote via configfs-tsm); dev only where Root allows it
collateral_file = "pcs.json"          # tdx: Intel PCS collateral JSON for this platform (nothing is fetched)
fresh_key = false                     # a TEE worker: new node key each boot, UpdateNode on chain
data_dir = ".cocoon/worker"
ops_host = "127.0.0.1"  ops_port = 0  # /healthz + /metrics; 0: a free port, -1: off
ready_file = "..."                    # JSON {provider, node_key, models, ops_url} once connected
epochs_dir = "epochs"                 # where validators publish settled epochs: claim from there (none: no claims)
claim_threshold = "0.1"               # TON earned and unclaimed above which it claims (never below a claim's cost)

`/healthz` is 503 while the worker is not connected to its router; `/metrics` is listed in
`offchain/worker/_ops.py`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey
from prometheus_client import CollectorRegistry, ProcessCollector

from offchain.agentkit import AgentConfig, node_key, open_network, write_ready
from offchain.errors import ConfigError
from offchain.models import Batcher, Tokenizer, WordCounter, builtin_models, load_model
from offchain.ops import running_ops
from offchain.registration import ensure_registered
from offchain.settlement._claimer import provider_claimer
from offchain.ton.network import NetworkProvider
from offchain.worker._agent import ServedModel, Worker, WorkerConfig
from offchain.worker._evidence import make_evidence
from offchain.worker._ops import WorkerCollector, worker_health
from scripts._common import parse_ton
from wrappers.provider import Provider, Role
from wrappers.root import Root

__all__ = ["run_worker"]

log = logging.getLogger("cocoon.worker")


async def run_worker(cfg: AgentConfig, stop: asyncio.Event) -> None:
    data = Path(cfg.get("data_dir", ".cocoon/worker"))
    key = node_key(data / "node.key", fresh=str(cfg.get("fresh_key", "false")).lower() in ("1", "true", "yes"))
    names = cfg.get("models", ["all-MiniLM-L6-v2"])
    catalog = builtin_models()
    unknown = [n for n in names if n not in catalog]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; this worker ships {sorted(catalog)}")
    async with await open_network(cfg) as net:
        if net.sender() is None:
            raise ConfigError("the worker needs a wallet: set WALLET_MNEMONIC")
        root = Root.create_from_address(cfg.need("root"))
        allowed = [n for n in names if await root.get_is_model_allowed(net.open(root), catalog[n].hash_int)]
        for n in set(names) - set(allowed):
            log.error("model %s (%s) is not in Root's allowlist: not served", n, catalog[n].hash.hex())
        if not allowed:
            raise ConfigError("none of the configured models is in Root's model allowlist")
        image = cfg.get("image")
        provider = await ensure_registered(
            net,
            root,
            role=Role.GPU,
            key=key,
            stake=parse_ton(cfg.get("stake", "10"), "stake"),
            endpoint=str(cfg.get("endpoint", "worker://local")),
            image_hash=int(image, 16) if image else None,
        )
        try:  # noqa: SIM105 - contextlib.suppress does not take exception groups
            await _serve(cfg, net, key, allowed, provider, stop)
        except* _Done:
            pass


async def _serve(
    cfg: AgentConfig, net: NetworkProvider, key: SigningKey, allowed: list[str], provider: Provider, stop: asyncio.Event
) -> None:
    catalog = builtin_models()
    served: dict[str, ServedModel] = {}
    execution_providers: dict[str, str] = {}
    threads = cfg.get("intra_op_threads")
    for n in allowed:
        spec = catalog[n]
        model = load_model(spec, intra_op_threads=int(threads) if threads else None)
        log.info("model %s on %s", n, model.provider)
        execution_providers[n] = model.provider
        batcher = Batcher(model, max_batch=cfg.int("max_batch", 32), max_wait_ms=cfg.num("max_wait_ms", 2.0))
        counter = (
            Tokenizer(spec.tokenizer_path, max_tokens=spec.max_tokens)
            if spec.tokenizer_path
            else WordCounter(max_tokens=spec.max_tokens)
        )
        served[n] = ServedModel(spec, batcher, counter)
    encryption_key = PrivateKey.generate()  # this boot's: clients seal to it, the attestation binds it
    worker = Worker(
        WorkerConfig(
            router_url=cfg.need("router"),
            coefficient=cfg.int("coefficient", 1000),
            capacity=cfg.int("capacity", 64),
        ),
        key=key,
        owner=wallet_raw(net),
        models=served,
        encryption_key=encryption_key,
        evidence=make_evidence(str(cfg.get("attestation", "dev")), node_key=key, encryption_key=encryption_key,
                               image=cfg.get("image"), collateral_file=cfg.get("collateral_file")),
    )
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(WorkerCollector(worker, execution_providers))
    ops = running_ops(
        str(cfg.get("ops_host", "127.0.0.1")), cfg.int("ops_port", 0), registry=registry, health=worker_health(worker)
    )
    async with ops as ops_url, asyncio.TaskGroup() as tg:
        for m in served.values():
            tg.create_task(m.batcher.run())
        task = tg.create_task(worker.run())
        claimer = await provider_claimer(cfg, net, Role.GPU, provider)
        claiming = tg.create_task(claimer.run()) if claimer is not None else None

        async def announce() -> None:
            await worker.connected.wait()
            write_ready(
                cfg.get("ready_file"),
                {
                    "provider": provider.address.to_str(is_user_friendly=False),
                    "node_key": bytes(key.verify_key).hex(),
                    "models": allowed,
                    "ops_url": ops_url,
                },
            )

        tg.create_task(announce())
        await stop.wait()
        worker.stop()
        if claiming is not None:
            claiming.cancel()
        await task
        for m in served.values():
            await m.batcher.close()
        raise _Done


def wallet_raw(net: NetworkProvider) -> str:
    return net.sender().address.to_str(is_user_friendly=False)


class _Done(Exception):
    pass
