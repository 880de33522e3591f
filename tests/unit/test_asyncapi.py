"""`asyncapi.yaml`: made from the topic specification (a drift fails here) and valid for the AsyncAPI CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from streams.asyncapi import render
from streams.settings import Settings
from streams.topics import topic_specs

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".cache" / "asyncapi" / "node_modules" / ".bin" / "asyncapi"


def test_the_committed_contract_is_what_the_code_generates() -> None:
    assert (ROOT / "asyncapi.yaml").read_text() == render(Settings()), "run: acw asyncapi --out asyncapi.yaml"


def test_every_topic_is_a_channel_with_its_partitions_replicas_configs_and_schema() -> None:
    doc = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
    channels = {c["address"]: c for c in doc["channels"].values()}
    for spec in topic_specs(Settings()):
        kafka = channels[spec.name]["bindings"]["kafka"]
        assert (kafka["partitions"], kafka["replicas"]) == (spec.partitions, spec.replication_factor)
        if "cleanup.policy" in spec.configs:
            assert kafka["topicConfiguration"]["cleanup.policy"] == spec.configs["cleanup.policy"].split(",")
        assert ("tags" in channels[spec.name]) == (not spec.public)
        [ref] = channels[spec.name]["messages"].values()
        message = doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
        if spec.schema is not None:
            assert message["payload"]["schema"]["$ref"] == f"./schemas/{spec.schema}.avsc"
            assert message["bindings"]["kafka"]["schemaIdPayloadEncoding"] == "confluent"


def _validate(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    settings = tmp_path / "analytics.json"  # no usage reporting from the suite
    settings.write_text(json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "ci"}))
    env = {**os.environ, "ASYNCAPI_METRICS_CONFIG_PATH": str(settings), "CI": "true"}
    return subprocess.run(
        [str(CLI), "validate", str(path), "--fail-severity", "error"],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_asyncapi_cli_finds_the_contract_valid_and_a_broken_copy_invalid(tmp_path: Path) -> None:
    assert CLI.exists(), "scripts/setup.sh installs the AsyncAPI CLI into .cache/asyncapi"
    good = _validate(ROOT / "asyncapi.yaml", tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    broken = tmp_path / "asyncapi.yaml"
    broken.write_text((ROOT / "asyncapi.yaml").read_text().replace("./schemas/acw_alert.avsc", "./schemas/gone.avsc"))
    (tmp_path / "schemas").symlink_to(ROOT / "schemas")
    bad = _validate(broken, tmp_path)
    assert bad.returncode != 0 and "gone.avsc" in bad.stdout + bad.stderr
