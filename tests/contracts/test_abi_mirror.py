"""The Python mirror matches the Tolk sources: opcodes, exit codes, message and storage layouts,
role/state constants and fee constants. Parses the .tolk files; any drift fails here."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import wrappers
import wrappers.messages as messages
import wrappers.provider as provider
import wrappers.reward_pool as reward_pool
import wrappers.root as root
from wrappers.errors import ExitCode
from wrappers.messages import Struct
from wrappers.opcodes import Op

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
TESTS = Path(__file__).resolve().parent

_STRUCT = re.compile(r"^struct\s+(?:\((0x[0-9a-fA-F]+)\)\s+)?(\w+)\s*\{(.*?)^\}", re.S | re.M)
_CONST = re.compile(r"^const\s+(\w+)\s*=\s*(.+?)\s*$", re.M)


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def tolk_structs(path: Path) -> dict[str, tuple[int | None, list[tuple[str, str]]]]:
    out = {}
    for opcode, name, body in _STRUCT.findall(_strip_comments(path.read_text())):
        fields = []
        for line in body.replace(";", "\n").splitlines():
            line = line.strip()
            if line:
                fname, ftype = line.split(":", 1)
                fields.append((fname.strip(), re.sub(r"\s+", " ", ftype.strip().rstrip(","))))
        out[name] = (int(opcode, 16) if opcode else None, fields)
    return out


def tolk_consts(path: Path) -> dict[str, str]:
    return dict(_CONST.findall(_strip_comments(path.read_text())))


def _ton(expr: str) -> int:
    m = re.fullmatch(r'ton\("([0-9.]+)"\)', expr)
    if m:
        from decimal import Decimal

        return int(Decimal(m.group(1)) * 10**9)
    return int(expr, 0)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def upper_snake(name: str) -> str:
    return snake(name).upper()


MESSAGES = tolk_structs(CONTRACTS / "common" / "messages.tolk")


def test_every_opcode_is_mirrored_by_name_and_value() -> None:
    tolk = {upper_snake(name): op for name, (op, _) in MESSAGES.items() if op is not None}
    assert {m.name: m.value for m in Op} == tolk


def test_every_exit_code_is_mirrored_by_name_and_value() -> None:
    tolk = {n.removeprefix("ERR_"): int(v, 0) for n, v in tolk_consts(CONTRACTS / "common" / "errors.tolk").items()}
    assert {m.name: m.value for m in ExitCode} == tolk
    assert len(set(tolk.values())) == len(tolk), "a number has two meanings"
    ranges = [(1000, 1099), (1100, 1199), (1200, 1299), (1300, 1399), (1900, 1999)]
    for name, code in tolk.items():
        assert any(lo <= code <= hi for lo, hi in ranges), f"{name} = {code} is outside every contract's range"


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_message_struct_is_mirrored(name: str) -> None:
    opcode, fields = MESSAGES[name]
    cls = getattr(messages, name, None)
    assert cls is not None and issubclass(cls, Struct), f"wrappers/messages.py lacks {name}"
    assert opcode == cls.OPCODE
    assert cls.layout() == [(snake(f), t) for f, t in fields]


def test_no_python_message_without_tolk_struct() -> None:
    py = {n for n, c in vars(messages).items() if isinstance(c, type) and issubclass(c, Struct) and c is not Struct}
    assert py == set(MESSAGES)


@pytest.mark.parametrize(
    ("path", "name", "cls"),
    [
        ("common/storage.tolk", "ProviderStorage", provider.ProviderStorage),
        ("root.tolk", "RootStorage", root.RootStorage),
        ("root.tolk", "RootMore", root.RootMore),
        ("root.tolk", "RoleTable", root.RoleTable),
        ("root.tolk", "OtherCodes", root.OtherCodes),
        ("common/storage.tolk", "PoolStorage", reward_pool.PoolStorage),
        ("common/storage.tolk", "PoolEpochs", reward_pool.PoolEpochs),
        ("common/storage.tolk", "PoolRoles", reward_pool.PoolRoles),
        ("common/storage.tolk", "RoleAmounts", reward_pool.RoleAmounts),
    ],
)
def test_storage_struct_is_mirrored(path: str, name: str, cls: type[Struct]) -> None:
    _, fields = tolk_structs(CONTRACTS / path)[name]
    assert cls.layout() == [(snake(f), t) for f, t in fields]


def test_roles_states_and_fees_are_mirrored() -> None:
    storage = tolk_consts(CONTRACTS / "common" / "storage.tolk")
    assert {f"ROLE_{r.name}": r.value for r in provider.Role} == {
        k: int(v) for k, v in storage.items() if k.startswith("ROLE_")
    }
    assert {f"PROVIDER_{s.name}": s.value for s in provider.ProviderState} == {
        k: int(v) for k, v in storage.items() if k.startswith("PROVIDER_") and k != "PROVIDER_STORAGE_RESERVE"
    }
    modules = [importlib.import_module(f"wrappers.{m.name}") for m in pkgutil.iter_modules(wrappers.__path__)]
    for name, expr in tolk_consts(CONTRACTS / "common" / "fees.tolk").items():
        mirrored = {getattr(m, name) for m in modules if hasattr(m, name)}
        assert mirrored == {_ton(expr)}, f"fee constant {name}: Tolk {expr}, wrappers {mirrored or 'nothing'}"


def test_every_exit_code_is_asserted_by_some_test() -> None:
    text = "".join(p.read_text() for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name)
    missing = [m.name for m in ExitCode if f"ExitCode.{m.name}" not in text]
    assert not missing, f"exit codes no test asserts: {missing}"


def test_no_opcode_or_exit_code_literal_outside_the_mirrors() -> None:
    """Opcodes as hex anywhere; exit codes where they are used as such (`exit_code=`, `reason ==`)."""
    ops = {f"0x{m.value:08x}" for m in Op} | {str(m.value) for m in Op}
    codes = {str(m.value) for m in ExitCode}
    for path in [*Path(messages.__file__).parent.glob("*.py"), *TESTS.glob("*.py")]:
        if path.name in ("opcodes.py", "errors.py"):
            continue
        text = path.read_text().lower()
        found = [v for v in ops if re.search(rf"(?<![0-9a-fx_]){re.escape(v)}(?![0-9a-f_])", text)]
        found += [v for v in codes if re.search(rf"(exit_code|reason)\W{{1,4}}{v}\b", text)]
        assert not found, f"{path.name} holds literal(s) {found}"
