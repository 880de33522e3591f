"""Static checks of the Dockerfile and docker-compose.yml (no Docker engine runs on our machines)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def test_compose_services_are_pinned_and_wired() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"kafka", "topics", "worker", "producer", "prometheus", "alertmanager", "grafana"}
    for name, svc in services.items():
        if "image" in svc:
            assert re.search(r":v?\d+(\.\d+)+$", svc["image"]), f"{name}: image not pinned to a version"
        else:
            assert svc["build"] == "." and (ROOT / "Dockerfile").is_file()
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: mounts missing path {source}"
        for dependency in svc.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
    for name in ("kafka", "prometheus", "alertmanager", "grafana"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    assert "scale" not in services["worker"] and "container_name" not in services["worker"]  # --scale works
    assert "ports" not in services["worker"]  # replicas cannot share a host port; Prometheus scrapes them inside
    assert services["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert services["worker"]["environment"]["ACW_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert {"9090:9090", "3000:3000", "9093:9093"} <= {p for s in services.values() for p in s.get("ports", [])}
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [worker_job] = [j for j in prometheus["scrape_configs"] if j["job_name"] == "acw-worker"]
    assert worker_job["dns_sd_configs"][0]["names"] == ["worker"]
    assert worker_job["dns_sd_configs"][0]["port"] == int(services["worker"]["expose"][0])


def test_dockerfile_is_pinned_non_root_with_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim", text, re.M)
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "HEALTHCHECK" in text
    for copied in re.findall(r"^COPY (\S+)", text, re.M):
        assert (ROOT / copied).exists(), f"Dockerfile copies missing path {copied}"
