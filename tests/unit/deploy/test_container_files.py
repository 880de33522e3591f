"""Static checks of the Dockerfile and docker-compose.yml (no Docker engine runs on our machines)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def test_compose_services_are_pinned_and_wired() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "topics", "worker"} <= services.keys()
    for name, svc in services.items():
        if "image" in svc:
            assert re.search(r":\d+(\.\d+)+$", svc["image"]), f"{name}: image not pinned to a version"
        else:
            assert svc["build"] == "." and (ROOT / "Dockerfile").is_file()
    assert "healthcheck" in services["kafka"]
    assert services["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert services["worker"]["environment"]["ACW_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_dockerfile_is_pinned_non_root_with_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim", text, re.M)
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "HEALTHCHECK" in text
    for copied in re.findall(r"^COPY (\S+)", text, re.M):
        assert (ROOT / copied).exists(), f"Dockerfile copies missing path {copied}"
