"""A whole network on one machine, as real processes: localnet, Root deployed by the
foundation's own script, a router, gpu workers that register themselves, and a gateway that
opens a channel and pays. `cocoon devnet` runs it for a person; the end-to-end tests run it
too (the same code).

Wallets are the localnet's funded genesis wallets: 0 the foundation, 1 the router, 2.. the
workers, then the gateway's client, a spare one (tests' own clients), then per validator its
wallet (relays slashing orders) and its probe wallet (pays for probes).

With `validators = n`, Root's validator set is n validators' node keys (made in their data
folders before the deploy, so the foundation's params can name them) with
`validator_threshold`; `start_validator(i)` starts one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offchain.agentkit import node_key
from offchain.devnet._supervisor import Proc, Supervisor, free_port, http_ok
from offchain.models import builtin_models
from offchain.ton._wallet import localnet_mnemonic

__all__ = ["Devnet", "DevnetConfig", "wallet_env"]

FOUNDATION, ROUTER, FIRST_WORKER = 0, 1, 2
DEV_IMAGE = hashlib.sha256(b"cocoon/devnet-image/v1").digest()
"""The worker image hash the devnet allowlists: no TEE here, so a declared one (issue 10 adds
attestation, which binds a real measurement)."""


def wallet_env(i: int) -> dict[str, str]:
    return {"WALLET_MNEMONIC": " ".join(localnet_mnemonic(i)), "WALLET_VERSION": "v5r1"}


def _toml(values: dict[str, Any]) -> str:
    out = []
    for k, v in values.items():
        if isinstance(v, bool):
            out.append(f"{k} = {'true' if v else 'false'}")
        elif isinstance(v, int | float):
            out.append(f"{k} = {v}")
        elif isinstance(v, list):
            out.append(f"{k} = [{', '.join(repr(str(x)).replace(chr(39), chr(34)) for x in v)}]")
        else:
            out.append(f'{k} = "{v}"')
    return "\n".join(out) + "\n"


@dataclass
class DevnetConfig:
    workers: int = 2
    models: list[str] = field(default_factory=lambda: ["all-MiniLM-L6-v2"])
    coefficients: list[int] = field(default_factory=lambda: [1000, 1100])
    compute_unit_price: int = 1000  # nanoTON per token: 1 TON buys a million tokens
    close_delay: int = 600  # seconds Root gives a router to redeem after a client starts closing
    deposit: str = "5"  # TON the gateway's client deposits
    redeem_threshold: str = "0.001"  # TON
    redeem_interval: float = 5.0
    gateway: bool = True
    api_key: str | None = None
    worker_extra: dict[str, Any] = field(default_factory=dict)
    validators: int = 0  # validator agents whose node keys make Root's validator set
    validator_threshold: int = 1
    validator_extra: dict[str, Any] = field(default_factory=dict)  # into each validator's config
    datanodes: int = 0  # bandwidth providers (`start_datanode(i)`); they relay to the local web
    data_unit_price: int = 10  # nanoTON per KiB relayed
    epoch_seconds: int | None = None  # the router's usage epoch (None: the agents' default, an hour)
    settle: bool = False  # validators settle each epoch (post the report, publish to `epochs_dir`)
    epochs_dir: str | None = None  # published epochs, providers claim from it (None: workdir/epochs if settle)
    claim_threshold: str = "0.1"  # TON: providers claim what is above it
    claim_interval: float = 10.0
    localnet_state: str | None = None  # a state file: the chain outlives the run (None: in memory)
    home: str | None = None  # COCOON_HOME of the deploy and of every child (None: workdir/home)
    # agents a test runs modified: name -> module run instead of the `cocoon` command, with the
    # same arguments, e.g. {"validator2": "tests.e2e._dissenting_validator"}
    modules: dict[str, str] = field(default_factory=dict)


class Devnet:
    """Start with `start()`, stop with `close()` (or `with`). Attributes hold what a user needs:
    `api_url` (the chain), `root`, `router` (its ready info), `gateway_url`."""

    def __init__(
        self, workdir: Path | str, config: DevnetConfig | None = None, progress: Callable[[str], None] = lambda _: None
    ) -> None:
        self.workdir = Path(workdir)
        self.config = config or DevnetConfig()
        self.progress = progress
        self.home = Path(self.config.home).resolve() if self.config.home else (self.workdir / "home").resolve()
        # COCOON_DEVNET marks every child (a test finds any left behind by it in /proc)
        self.sup = Supervisor(self.workdir / "logs", env={**os.environ, "COCOON_LOCALNET_URL": "",
                                                          "COCOON_DEVNET": str(self.workdir.resolve()),
                                                          "COCOON_HOME": str(self.home)})
        self.api_url = ""
        self.root = ""
        self.router: dict[str, Any] = {}
        self.workers: list[Proc] = []
        self.gateway_url = ""
        self.validators: list[Proc] = []
        self.datanodes: list[Proc] = []
        self.web: dict[str, Any] = {}

    def __enter__(self) -> Devnet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Devnet:
        """Start every part. Agents that do not depend on each other start at once and are
        waited for together (on 2 cores their start-up, mostly imports and registration on
        chain, overlaps): the local web with the localnet, then workers, gateway,
        validators and data nodes after the router."""
        try:
            web = self.start_web(wait=False) if self.config.datanodes else None
            self.start_localnet()
            if web is not None:
                self.web = self.sup.wait_ready(web, timeout=30)
            self.deploy()
            self.start_router()
            pending = [self.start_worker(i, wait=False) for i in range(self.config.workers)]
            if self.config.gateway:
                pending.append(self.start_gateway(wait=False))
            pending += [self.start_validator(i, wait=False) for i in range(self.config.validators)]
            pending += [self.start_datanode(i, wait=False) for i in range(self.config.datanodes)]
            for p in pending:
                self.sup.wait_ready(p, timeout=180)
            if self.config.gateway:
                self.gateway_url = self.sup.procs["gateway"].info["url"]
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        self.sup.close()

    # ---- the pieces ---------------------------------------------------------------------------
    def start_localnet(self) -> None:
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}/api/v2"
        self.progress(f"localnet on {self.api_url}")
        p = self.sup.start(
            "localnet",
            [
                "-m",
                "offchain.ton.localnet",
                "--port",
                str(port),
                "--block-time",
                "0",
                "--wallets",
                str(self.wallet_count),
                *(["--state", self.config.localnet_state] if self.config.localnet_state else ["--memory"]),
                "--quiet",
            ],
        )
        self.sup.wait_ready(p, probe=lambda: http_ok(f"{self.api_url}/getMasterchainInfo"), timeout=60)

    def deploy(self) -> None:
        from scripts._runner import run_script_async

        catalog = builtin_models()
        params = self.workdir / "foundation.toml"
        validators: dict[str, Any] = {}
        if self.config.validators:
            keys = [node_key(self.workdir / f"validator{i}" / "node.key") for i in range(self.config.validators)]
            validators = {
                "validators": [bytes(k.verify_key).hex() for k in keys],
                "threshold": self.config.validator_threshold,
            }
        params.write_text(
            _toml(
                {
                    "compute_unit_price": self.config.compute_unit_price,
                    "data_unit_price": self.config.data_unit_price,
                    "close_delay": self.config.close_delay,
                    "models": [catalog[m].hash.hex() for m in self.config.models],
                    "images": [DEV_IMAGE.hex()],
                    **validators,
                }
            )
            + '[roles.gpu]\nmin_stake = "1"\ncooldown = 60\n'
            + '[roles.bandwidth]\nmin_stake = "1"\ncooldown = 60\n'
            + '[roles.router]\nmin_stake = "1"\ncooldown = 60\n'
            + '[roles.validator]\nmin_stake = "1"\ncooldown = 60\n'
        )
        self.progress("deploying Root and the RewardPool (the foundation's deploy script)")
        log = self.sup.workdir / "deploy.log"  # the script's tables go to its log, as every process's do
        with open(log, "a") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            dep = asyncio.run(
                run_script_async(
                    "deploy",
                    ["--network", "localnet", "--url", self.api_url, "--params", str(params)],
                    env={**wallet_env(FOUNDATION), "COCOON_HOME": str(self.home)},  # recorded in self.home
                )
            )
        self.root = dep.root.address.to_str(is_user_friendly=False)

    @property
    def epochs_dir(self) -> str | None:
        if self.config.epochs_dir:
            return self.config.epochs_dir
        return str(self.workdir / "epochs") if self.config.settle else None

    def _epoch_keys(self, *, claims: bool = True) -> dict[str, Any]:
        """The settlement keys an agent's config gets (none when the devnet does not settle)."""
        out: dict[str, Any] = {}
        if self.config.epoch_seconds is not None:
            out["epoch_seconds"] = self.config.epoch_seconds
        if self.epochs_dir is not None:
            out["epochs_dir"] = self.epochs_dir
            if claims:
                out["claim_threshold"] = self.config.claim_threshold
                out["claim_interval"] = self.config.claim_interval
        return out

    def _agent(self, name: str, command: list[str], values: dict[str, Any], wallet: int, timeout: float,
               *, module: str | None = None, env: dict[str, str] | None = None,
               tables: dict[str, dict[str, Any]] | None = None, wait: bool = True) -> Proc:
        cfg = self.workdir / f"{name}.toml"
        ready = self.workdir / f"{name}.ready.json"
        text = _toml(
            {
                "network": "localnet",
                "url": self.api_url,
                "root": self.root,
                "data_dir": str(self.workdir / name),
                "ready_file": str(ready),
                **values,
            }
        )
        for table, rows in (tables or {}).items():  # TOML tables go after the top-level keys
            text += f"[{table}]\n" + "".join(f'"{k}" = {json.dumps(v)}\n' for k, v in rows.items())
        cfg.write_text(text)
        module = module or self.config.modules.get(name, "offchain.cli")
        p = self.sup.start(
            name, ["-m", module, *command, "--config", str(cfg)], env={**wallet_env(wallet), **(env or {})},
            ready_file=ready,
        )
        if wait:
            self.sup.wait_ready(p, timeout=timeout)
        return p

    def start_router(self, **extra: Any) -> dict[str, Any]:
        self.progress("router")
        p = self._agent(
            "router",
            ["agent", "router"],
            {
                "host": "127.0.0.1",
                "port": 0,
                "redeem_threshold": self.config.redeem_threshold,
                "redeem_interval": self.config.redeem_interval,
                "poll_interval": 0.3,
                "stake": "2",  # its ROUTER Provider, which claims the router's share
                "endpoint": "router://devnet",
                **self._epoch_keys(),
                **extra,
            },
            ROUTER,
            60,
        )
        self.router = p.info
        return p.info

    def start_worker(self, i: int, *, module: str | None = None, env: dict[str, str] | None = None,
                     wait: bool = True, **extra: Any) -> Proc:
        """Worker `i` (wallet FIRST_WORKER + i). `module` runs instead of the `cocoon` command
        (a test's modified worker takes the same arguments); `extra` goes into its config;
        `wait=False` returns before it is ready (`sup.wait_ready` it)."""
        self.progress(f"worker {i} (registers as a gpu provider)")
        coeffs = self.config.coefficients
        p = self._agent(
            f"worker{i}",
            ["agent", "worker"],
            {
                "router": self.router["url"],
                "models": self.config.models,
                "coefficient": coeffs[i % len(coeffs)],
                "stake": "2",
                "endpoint": f"worker://devnet-{i}",
                "image": DEV_IMAGE.hex(),
                **self._epoch_keys(),
                **self.config.worker_extra,
                **extra,
            },
            FIRST_WORKER + i,
            120,
            module=module,
            env=env,
            wait=wait,
        )
        if p not in self.workers:
            self.workers.append(p)
        return p

    def start_gateway(self, *, wait: bool = True) -> Proc:
        """The gateway (the client wallet; opens its channel). With `wait`, `gateway_url` is set."""
        self.progress("gateway (opens a channel and deposits)")
        values: dict[str, Any] = {
            "router_url": self.router["url"],
            "router": self.router["address"],
            "router_key": self.router["router_key"],
            "deposit": self.config.deposit,
            "host": "127.0.0.1",
            "port": 0,
        }
        if self.config.api_key:
            values["api_key"] = self.config.api_key
        p = self._agent("gateway", ["gateway"], values, FIRST_WORKER + self.config.workers, 90, wait=wait)
        if wait:
            self.gateway_url = p.info["url"]
        return p

    def start_web(self, *, slow_delay: float = 1.0, huge_size: int | None = None, wait: bool = True) -> Any:
        """The local web (`python -m offchain.devnet._web`): HTTPS sites on loopback with a test
        CA. Returns its ready info `{port, host, hosts, ca_file, resolve}` (also `self.web`);
        `Resolver.from_dict(info["resolve"])` and `ca_file` reach it. `start()` starts it
        when there are data nodes. `wait=False` returns the Proc (`sup.wait_ready` it)."""
        self.progress("local web (HTTPS sites on loopback)")
        ready = self.workdir / "web.ready.json"
        argv = ["-m", "offchain.devnet._web", "--ready-file", str(ready), "--dir", str(self.workdir / "web"),
                "--slow-delay", str(slow_delay)]
        if huge_size is not None:
            argv += ["--huge-size", str(huge_size)]
        p = self.sup.start("web", argv, ready_file=ready)
        if not wait:
            return p
        self.web = self.sup.wait_ready(p, timeout=30)
        return self.web

    def validator_wallet(self, i: int) -> int:
        return FIRST_WORKER + self.config.workers + 2 + 2 * i

    def start_validator(self, i: int = 0, *, module: str | None = None, env: dict[str, str] | None = None,
                        wait: bool = True, **extra: Any) -> Proc:
        """Validator `i` (its node key made at deploy; wallets `validator_wallet(i)` and the
        next one for probes); `extra` goes into its config (probe_interval, fraud_*, ...).
        `module` runs instead of the `cocoon` command (a test's dissenting validator)."""
        self.progress(f"validator {i} (opens its probe channel)")
        probe = wallet_env(self.validator_wallet(i) + 1)
        p = self._agent(
            f"validator{i}",
            ["agent", "validator"],
            {
                "router_url": self.router["url"],
                "router": self.router["address"],
                "router_key": self.router["router_key"],
                "model": self.config.models[0],
                "stake": "2",  # its VALIDATOR Provider, which claims the validator's share
                "endpoint": f"validator://devnet-{i}",
                **({"ca_file": self.web["ca_file"]} if self.web else {}),
                **({"settle": True} if self.config.settle else {}),
                **self._epoch_keys(),
                **self.config.validator_extra,
                **extra,
            },
            self.validator_wallet(i),
            120,
            module=module,
            env={"PROBE_WALLET_MNEMONIC": probe["WALLET_MNEMONIC"], "PROBE_WALLET_VERSION": probe["WALLET_VERSION"],
                 **(env or {})},
            wait=wait,
        )
        if p not in self.validators:
            self.validators.append(p)
        return p

    def datanode_wallet(self, i: int) -> int:
        return FIRST_WORKER + self.config.workers + 2 + 2 * self.config.validators + i

    def start_datanode(self, i: int = 0, *, module: str | None = None, env: dict[str, str] | None = None,
                       wait: bool = True, **extra: Any) -> Proc:
        """Data node `i` (wallet `datanode_wallet(i)`; registers as a bandwidth provider),
        resolving the local web's names to it (`start_web()` first). `module` runs instead of
        the `cocoon` command (a test's faulty node takes the same arguments)."""
        self.progress(f"data node {i} (registers as a bandwidth provider)")
        p = self._agent(
            f"datanode{i}",
            ["agent", "datanode"],
            {
                "router": self.router["url"],
                "stake": "2",
                "endpoint": f"datanode://devnet-{i}",
                **self._epoch_keys(),
                **extra,
            },
            self.datanode_wallet(i),
            120,
            module=module,
            env=env,
            tables={"resolve": self.web.get("resolve", {})},
            wait=wait,
        )
        if p not in self.datanodes:
            self.datanodes.append(p)
        return p

    @property
    def wallet_count(self) -> int:
        """The localnet's funded wallets (see the module's docstring), with two spare data
        node wallets: tests start extra (faulty) nodes."""
        return FIRST_WORKER + self.config.workers + 2 + 2 * self.config.validators + self.config.datanodes + 2

    @property
    def client_wallet(self) -> int:
        return FIRST_WORKER + self.config.workers
