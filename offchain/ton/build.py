"""Compile Tolk contracts into Blueprint-format artifacts and hand code cells to Python.

The compiler is `@ton/tolk-js` (WASM) run by the machine's Node through `tolkc.js`,
one Node process per batch so the WASM loads once. An artifact records the hash of
every source file the compiler read (imports included); a contract is recompiled only
when one of them changed, so `code_cell()` is always fresh and usually free.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pytoniq_core import Cell

from offchain.errors import BuildError

__all__ = [
    "BUILD_DIR",
    "CONTRACTS_DIR",
    "PROJECT_ROOT",
    "CompiledContract",
    "build_all",
    "build_entries",
    "code_cell",
    "contract_name",
    "entry_files",
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
BUILD_DIR = PROJECT_ROOT / "build"
_TOLKC = Path(__file__).with_name("tolkc.js")


@dataclass(frozen=True)
class CompiledContract:
    name: str
    entry: Path
    code_boc64: str
    hash_hex: str
    tolk_version: str
    fresh: bool  # compiled by this call (False: reused an up-to-date artifact)

    @property
    def code(self) -> Cell:
        return _cell_from_b64(self.code_boc64)


@cache
def _cell_from_b64(boc64: str) -> Cell:
    return Cell.one_from_boc(base64.b64decode(boc64))


def contract_name(entry: Path) -> str:
    """`reward_pool.tolk` -> `RewardPool`: the one name used by wrapper, artifact and tests."""
    return "".join(part.capitalize() for part in entry.stem.split("_"))


def entry_files(contracts_dir: Path = CONTRACTS_DIR) -> list[Path]:
    """Entry contracts are the top-level `.tolk` files; shared code lives in subfolders."""
    return sorted(p for p in contracts_dir.glob("*.tolk") if p.is_file())


def _artifact_path(name: str, out_dir: Path) -> Path:
    return out_dir / f"{name}.compiled.json"


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _up_to_date(artifact: dict, root: Path) -> bool:
    sources = artifact.get("sources") or []
    return bool(sources) and all(_sha256(root / s["filename"]) == s["sha256"] for s in sources)


def _load_artifact(name: str, entry: Path, out_dir: Path, root: Path) -> CompiledContract | None:
    path = _artifact_path(name, out_dir)
    try:
        artifact = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not _up_to_date(artifact, root):
        return None
    return CompiledContract(
        name=name,
        entry=entry,
        code_boc64=base64.b64encode(bytes.fromhex(artifact["hex"])).decode(),
        hash_hex=artifact["hash"],
        tolk_version=artifact.get("tolkVersion", ""),
        fresh=False,
    )


def _run_compiler(entries: list[str], root: Path) -> dict:
    request = json.dumps({"root": str(root), "entries": entries})
    try:
        proc = subprocess.run(
            ["node", str(_TOLKC)],
            input=request,
            capture_output=True,
            text=True,
            cwd=root,
            check=False,
        )
    except FileNotFoundError as err:
        raise BuildError("(all)", "node not found: Node 20 is needed to run tolk-js") from err
    if proc.returncode != 0:
        raise BuildError("(all)", proc.stderr or f"tolk-js exited with {proc.returncode}")
    return json.loads(proc.stdout)


def build_entries(
    entries: list[Path],
    *,
    out_dir: Path = BUILD_DIR,
    root: Path = PROJECT_ROOT,
    force: bool = False,
) -> dict[str, CompiledContract]:
    """Compile `entries` (skipping up-to-date ones unless `force`); raise BuildError on failure.

    Artifacts are written as `<out_dir>/<Name>.compiled.json` (Blueprint's `hash`,
    `hashBase64`, `hex`, plus our `sources` list) and `<Name>.fif`.
    """
    result: dict[str, CompiledContract] = {}
    stale: list[tuple[str, Path]] = []
    for entry in entries:
        entry = entry.resolve()
        name = contract_name(entry)
        cached = None if force else _load_artifact(name, entry, out_dir, root)
        if cached is not None:
            result[name] = cached
        else:
            stale.append((name, entry))
    if not stale:
        return result

    rel = [str(entry.relative_to(root)) for _, entry in stale]
    out = _run_compiler(rel, root)
    out_dir.mkdir(parents=True, exist_ok=True)
    for (name, entry), key in zip(stale, rel, strict=True):
        res = out["results"][key]
        if res["status"] != "ok":
            raise BuildError(key, res["message"])
        code_hex = base64.b64decode(res["codeBoc64"]).hex()
        hash_bytes = bytes.fromhex(res["codeHashHex"])
        artifact = {
            "hash": hash_bytes.hex(),
            "hashBase64": base64.b64encode(hash_bytes).decode(),
            "hex": code_hex,
            "tolkVersion": out["tolkVersion"],
            "sources": res["sources"],
        }
        tmp = _artifact_path(name, out_dir).with_suffix(".tmp")
        tmp.write_text(json.dumps(artifact, indent=2))
        tmp.replace(_artifact_path(name, out_dir))
        (out_dir / f"{name}.fif").write_text(res["fiftCode"])
        result[name] = CompiledContract(
            name=name,
            entry=entry,
            code_boc64=res["codeBoc64"],
            hash_hex=hash_bytes.hex(),
            tolk_version=out["tolkVersion"],
            fresh=True,
        )
    return result


def build_all(*, force: bool = False) -> dict[str, CompiledContract]:
    """Compile every entry contract under `contracts/`."""
    return build_entries(entry_files(), force=force)


def code_cell(name_or_path: str | Path) -> Cell:
    """Fresh code cell of a contract: `"Root"` (an entry under contracts/) or a path to a .tolk file."""
    if isinstance(name_or_path, Path) or str(name_or_path).endswith(".tolk"):
        path = Path(name_or_path)
        entry = path if path.is_absolute() else PROJECT_ROOT / path
        out_dir = BUILD_DIR if entry.parent == CONTRACTS_DIR else BUILD_DIR / "extra"
        root = PROJECT_ROOT if entry.is_relative_to(PROJECT_ROOT) else entry.parent
        return build_entries([entry], out_dir=out_dir, root=root)[contract_name(entry)].code
    by_name = {contract_name(e): e for e in entry_files()}
    if name_or_path not in by_name:
        known = ", ".join(sorted(by_name)) or "none"
        raise BuildError(str(name_or_path), f"no such contract under contracts/ (known: {known})")
    return build_entries([by_name[name_or_path]])[str(name_or_path)].code
