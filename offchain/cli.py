"""The `cocoon` command: a name-to-runner map; each runner lives next to what it runs.

Errors that are ours (CocoonError) end the command with one clear line and exit 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from offchain.errors import BuildError, CocoonError

__all__ = ["main"]


def _cmd_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from offchain.ton.build import BUILD_DIR, CONTRACTS_DIR, build_entries, entry_files

    contracts_dir = Path(args.contracts_dir).resolve() if args.contracts_dir else CONTRACTS_DIR
    out_dir = Path(args.out_dir).resolve() if args.out_dir else BUILD_DIR
    entries = entry_files(contracts_dir)
    if not entries:
        print("no contracts under contracts/")
        return 0
    print(f"compiling {len(entries)} contract(s) with tolk-js ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        built = build_entries(entries, out_dir=out_dir, root=contracts_dir.parent, force=args.force)
    except BuildError as err:
        print(err.compiler_message, file=sys.stderr)
        print(f"error: build failed: {err.entry}", file=sys.stderr)
        return 1
    rows = [("contract", "code hash (hex)", "status")]
    for name, c in sorted(built.items()):
        rows.append((name, c.hash_hex, "compiled" if c.fresh else "up to date"))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w[j]) for j, c in enumerate(r)).rstrip())
        if i == 0:
            print("  ".join("-" * x for x in w))
    print(f"{len(built)} contract(s), {time.perf_counter() - started:.1f}s; artifacts in {out_dir}", file=sys.stderr)
    return 0


_AGENTS = {
    "router": "offchain.router._main:run_router",
    "worker": "offchain.worker._main:run_worker",
    "datanode": "offchain.datanode._main:run_datanode",
    "validator": "offchain.validator._main:run_validator",
}


def _run_agent(target: str, args: argparse.Namespace) -> int:
    import importlib

    from offchain.agentkit import load_config, run_agent, setup_logging

    module, func = target.split(":")
    main = getattr(importlib.import_module(module), func)
    cfg = load_config(args.config)
    setup_logging(args.verbose)
    return run_agent(lambda stop: main(cfg, stop))


def _cmd_agent(args: argparse.Namespace) -> int:
    return _run_agent(_AGENTS[args.kind], args)


def _cmd_gateway(args: argparse.Namespace) -> int:
    return _run_agent("offchain.client._gateway_cmd:run_gateway", args)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    p = argparse.ArgumentParser(prog="cocoon", description="Cocoon 2.0: contracts, local chain, agents")
    sub = p.add_subparsers(dest="command", required=True)
    runners: dict[str, Callable[[argparse.Namespace], int]] = {}

    b = sub.add_parser("build", help="compile every contract under contracts/ into build/")
    b.add_argument("--force", action="store_true", help="recompile even when sources did not change")
    b.add_argument("--contracts-dir", help="folder of entry contracts (default: contracts/)")
    b.add_argument("--out-dir", help="artifact folder (default: build/)")
    b.add_argument("--print-hashes", action="store_true", help="(default) print each contract's code hash")
    runners["build"] = _cmd_build

    from offchain.ton.localnet import add_localnet_command

    runners["localnet"] = add_localnet_command(sub)

    a = sub.add_parser(
        "agent", help="run an agent: router, worker or validator (config: TOML + COCOON_* env, WALLET_MNEMONIC)"
    )
    a.add_argument("kind", choices=sorted(_AGENTS), help="which agent")
    a.add_argument("--config", help="TOML config file")
    a.add_argument("-v", "--verbose", action="count", default=0)
    runners["agent"] = _cmd_agent

    from offchain.devnet._command import add_devnet_command

    runners["devnet"] = add_devnet_command(sub)  # type: ignore[assignment]

    from offchain.dataset._command import add_dataset_command

    runners["dataset"] = add_dataset_command(sub)
    runners["epoch"] = __import__("offchain.settlement._command", fromlist=["_"]).add_epoch_command(sub)

    from offchain.index._command import add_index_commands

    runners.update(add_index_commands(sub))
    from offchain.status import add_status_command

    runners["status"] = add_status_command(sub)

    g = sub.add_parser("gateway", help="OpenAI-compatible HTTP API paid through a channel (config: TOML + env)")
    g.add_argument("--config", help="TOML config file")
    g.add_argument("-v", "--verbose", action="count", default=0)
    runners["gateway"] = _cmd_gateway

    # Blueprint-style scripts: their own options (--network, --wallet, ...) follow the name.
    for name, text in (
        ("deploy", "foundation: deploy Root (and the RewardPool) from a TOML file; idempotent"),
        ("provider", "providers: register, status, unstake, withdraw, claim"),
        ("config", "foundation: owner updates (prices, splits, allowlists, validators)"),
    ):
        sp = sub.add_parser(name, help=text, add_help=False)
        sp.add_argument("rest", nargs=argparse.REMAINDER)
        runners[name] = _script_runner(name)
    return p, runners


def _script_runner(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from scripts import run_script

        return run_script(name, list(args.rest))

    return run


_SCRIPTS = ("deploy", "provider", "config")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, runners = _parser()
    if argv and argv[0] in _SCRIPTS:
        # a script parses its own options (argparse's REMAINDER would swallow --help)
        try:
            from scripts import run_script

            return run_script(argv[0], argv[1:])
        except CocoonError as err:
            print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
            return 1
    args = parser.parse_args(argv)
    try:
        return runners[args.command](args)
    except CocoonError as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
