"""The schema files as a contract: the evolution policy against every released version, enum defaults, packaging."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from streams.domain.aggregates import Scope
from streams.domain.alerts import RuleKind
from streams.domain.events import Channel, EventType
from streams.domain.intervals import EndReason

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "schemas"
CURRENT = sorted(p.stem for p in SCHEMAS.glob("*.avsc"))
HISTORY = sorted(SCHEMAS.glob("history/*.avsc"))
# Enums that take no default, and why (README, Schema evolution).
NO_DEFAULT = {"AlertState": "an episode has exactly two transitions; a third state is a new major version"}


def _parse(path: Path) -> avro.schema.Schema:
    return avro.schema.parse(path.read_text())


def _enums(node: object) -> list[dict[str, object]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "enum" else []
        return found + [e for v in node.values() for e in _enums(v)]
    if isinstance(node, list):
        return [e for v in node for e in _enums(v)]
    return []


def test_every_schema_has_a_released_version_and_every_released_version_a_schema() -> None:
    released = {p.name.split(".v")[0] for p in HISTORY}
    assert released == set(CURRENT)


@pytest.mark.parametrize("old", HISTORY, ids=lambda p: p.stem)
def test_policy_backward_transitive_the_current_reader_reads_every_released_writer(old: Path) -> None:
    current = _parse(SCHEMAS / f"{old.name.split('.v')[0]}.avsc")
    result = ReaderWriterCompatibilityChecker().get_compatibility(current, _parse(old))
    assert result.compatibility is SchemaCompatibilityType.compatible, (result.messages, result.locations)


def test_the_checker_catches_a_breaking_change() -> None:
    schema = json.loads((SCHEMAS / "acw_interval.avsc").read_text())
    schema["fields"].append({"name": "site", "type": "string"})  # required, no default: old records lack it
    broken = avro.schema.parse(json.dumps(schema))
    result = ReaderWriterCompatibilityChecker().get_compatibility(broken, _parse(SCHEMAS / "acw_interval.avsc"))
    assert result.compatibility is SchemaCompatibilityType.incompatible


@pytest.mark.parametrize("name", CURRENT)
def test_every_enum_a_newer_writer_could_extend_has_a_default(name: str) -> None:
    for enum in _enums(json.loads((SCHEMAS / f"{name}.avsc").read_text())):
        if enum["name"] in NO_DEFAULT:
            assert "default" not in enum
        else:
            assert enum.get("default") in enum["symbols"], f"{name}: enum {enum['name']} has no default"


@pytest.mark.parametrize(
    ("schema", "enum", "domain", "placeholder"),
    [
        ("call_event", "EventType", [t.name for t in EventType], None),
        ("call_event", "Channel", [c.value for c in Channel], None),
        ("acw_interval", "EndReason", [r.value for r in EndReason], None),
        ("acw_aggregate", "Scope", [s.value for s in Scope], "OTHER"),
        ("acw_alert", "RuleKind", [k.value for k in RuleKind], "other"),
    ],
)
def test_schema_enums_are_the_domain_enums_in_the_same_order(
    schema: str, enum: str, domain: list[str], placeholder: str | None
) -> None:
    [found] = [e for e in _enums(json.loads((SCHEMAS / f"{schema}.avsc").read_text())) if e["name"] == enum]
    assert found["symbols"] == domain + ([placeholder] if placeholder else [])


def test_the_wheel_carries_the_schemas_and_the_package_finds_them_there(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("streams", "schemas"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path, source],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"streams/schemas/{n}.avsc" for n in CURRENT} | {f"streams/schemas/history/{p.name}" for p in HISTORY}
    assert expected <= names
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    probe = (
        "import streams.serialization as s; print(s.schemas_dir()); "
        "print(s.load_schema('acw_interval')['name'], s.load_schema('history/call_event.v1')['name'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(unpacked)}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    where, names_line = out.stdout.splitlines()
    assert str(unpacked / "streams" / "schemas") in where and names_line == "AcwInterval CallEvent"
