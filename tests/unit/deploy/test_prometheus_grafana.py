"""Prometheus rules (promtool check and unit tests) and the Grafana provisioning, checked without servers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PROM = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: scripts/setup.sh installs Debian's `prometheus` package"
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=PROM, check=False)


def test_promtool_accepts_the_rules_and_the_config(tmp_path: Path) -> None:
    checked = _promtool("check", "rules", *sorted(str(p) for p in (PROM / "rules").glob("*.yml")))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The config names the rules where the container mounts them; point it at the repository's copies.
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    config["rule_files"] = [str(PROM / "rules" / Path(p).name) for p in config["rule_files"]]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = _promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rule_unit_tests_pass() -> None:
    tested = _promtool("test", "rules", "tests/acw-rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_alertmanager_config_passes_amtool() -> None:
    binary = shutil.which("amtool")
    assert binary, "amtool is missing: scripts/setup.sh installs Debian's `prometheus-alertmanager` package"
    checked = subprocess.run(
        [binary, "check-config", str(ROOT / "deploy" / "alertmanager" / "alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_runbook_links_start_at_the_configured_base_url() -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert config["global"]["external_labels"]["runbook_base_url"].startswith("https://")
    groups = yaml.safe_load((PROM / "rules" / "acw-alerts.yml").read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("{{ $externalLabels.runbook_base_url }}#"), rule["alert"]


def test_every_alert_has_a_runbook_section_summary_and_severity() -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text().lower()
    groups = yaml.safe_load((PROM / "rules" / "acw-alerts.yml").read_text())["groups"]
    alerts = [r for g in groups for r in g["rules"]]
    assert len(alerts) >= 6
    for rule in alerts:
        anchor = rule["annotations"]["runbook_url"].split("#")[1]
        assert f"## {rule['alert'].lower()}" in runbook, f"docs/runbook.md has no section for {rule['alert']}"
        assert anchor == rule["alert"].lower()
        assert rule["annotations"]["summary"] and rule["labels"]["severity"] in ("warning", "critical")


def test_the_dashboard_uses_the_provisioned_datasource_and_its_variables() -> None:
    dashboard = json.loads((GRAFANA / "dashboards" / "acw.json").read_text())
    [datasource] = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "acw.yml").read_text())["providers"][0]
    assert provider["type"] == "file"
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert names == {"datasource", "team", "queue", "channel", "runbook_base"}
    titles = {p["title"] for p in dashboard["panels"] if p["type"] != "row"}
    for wanted in (
        "Agents in ACW now",
        "Oldest open ACW",
        "ACW p50 / p90 by team",
        "ACW p50 / p90 by queue",
        "ACW % of handle time by team",
        "AHT by team",
        "Intervals per minute by end reason",
        "Alerts firing",
        "Dead letters, late and duplicate events",
        "Throughput",
        "Consumer lag",
        "Processing lag",
    ):
        assert wanted in titles, f"the dashboard has no panel {wanted!r}"
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": datasource["type"], "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
    uses = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for name in names - {"datasource", "runbook_base"}:  # those two are used outside the queries
        assert f"${name}" in uses, f"variable {name} is not used by any panel"


@pytest.mark.parametrize("path", ["prometheus.yml", "rules/acw-recording.yml", "rules/acw-alerts.yml"])
def test_prometheus_files_are_yaml(path: str) -> None:
    assert yaml.safe_load((PROM / path).read_text())
