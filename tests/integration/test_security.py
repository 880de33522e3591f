"""Against a real broker with a SCRAM listener over TLS: the worker connects and processes, bad credentials and
untrusted certificates stop it at once with a clear message, and no secret reaches logs or metrics."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.connection import ConnectionCheckFailed, check_connection
from streams.settings import Settings
from streams.traffic import TrafficShape
from tests.integration import secured_broker
from tests.integration.conftest import ROOT, WorkerProcess
from tests.integration.outputs import assert_equal, prepare, wait_for_outputs
from tests.integration.secured_broker import USER, SecuredBroker
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

SHAPE = TrafficShape(agents=60, contacts_per_agent=10, stagger_ms=3_600_000)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    """A broker of its own with PLAINTEXT (for the test's reads) and SASL_SSL (for the product) listeners."""
    run_dir = tmp_path_factory.mktemp("secured")
    broker = secured_broker.start(run_dir)
    try:
        yield broker
    finally:
        secured_broker.stop(run_dir)


def _secured_env(env: dict[str, str], broker: SecuredBroker, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
    return {
        **env,
        "ACW_BOOTSTRAP_SERVERS": broker.sasl_ssl,
        "ACW_SECURITY_PROTOCOL": "SASL_SSL",
        "ACW_SASL_MECHANISM": mechanism,
        "ACW_SASL_USERNAME": USER,
        "ACW_SASL_PASSWORD": broker.password,
        "ACW_SSL_CAFILE": str(broker.ca),
    }


def _settings(broker: SecuredBroker, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "bootstrap_servers": broker.sasl_ssl,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": USER,
        "sasl_password": broker.password,
        "ssl_cafile": str(broker.ca),
        "connect_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_each_sasl_mechanism_connects_over_tls(secured: SecuredBroker, mechanism: str) -> None:
    asyncio.run(check_connection(_settings(secured, sasl_mechanism=mechanism)))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"sasl_password": "not-the-password-1234"}, "authentication as 'acw-worker' failed"),
        ({"sasl_username": "intruder"}, "authentication as 'intruder' failed"),
        ({"ssl_cafile": "ROGUE"}, "is not trusted"),
        ({"security_protocol": "SASL_PLAINTEXT", "ssl_cafile": ""}, "matches the broker's listener"),
    ],
    ids=["wrong-password", "unknown-user", "untrusted-certificate", "no-tls-on-a-tls-listener"],
)
def test_a_bad_connection_setting_fails_the_check_with_a_clear_message(
    secured: SecuredBroker, overrides: dict[str, str], expected: str
) -> None:
    if overrides.get("ssl_cafile") == "ROGUE":
        overrides = {**overrides, "ssl_cafile": str(secured.rogue_ca)}
    with pytest.raises(ConnectionCheckFailed, match=expected) as failure:
        asyncio.run(check_connection(_settings(secured, **overrides)))
    assert secured.password not in str(failure.value)
    assert "not-the-password-1234" not in str(failure.value)


def test_worker_processes_over_scram_and_tls_and_no_secret_leaks(
    secured: SecuredBroker, worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    plain = {**worker_env, "ACW_BOOTSTRAP_SERVERS": secured.plaintext}
    env = {**_secured_env(plain, secured), "ACW_LOG_LEVEL": "DEBUG"}
    port = free_port()
    env["ACW_METRICS_PORT"] = str(port)
    settings, _, expected = prepare(plain, tmp_path, SHAPE, produce_env=env)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    workers.append(worker)
    assert_equal(wait_for_outputs(settings, expected, timeout_s=120), expected)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "acw_events_applied_total" in metrics
    worker.stop()
    logged = (tmp_path / "worker.log").read_text(errors="replace")
    assert "level=DEBUG" in logged, "the worker logged nothing at DEBUG: the leak check would prove nothing"
    assert secured.password not in logged
    assert secured.password not in metrics


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"ACW_SASL_PASSWORD": "not-the-password-5678"}, "check ACW_SASL_USERNAME and ACW_SASL_PASSWORD"),
        ({"ACW_SSL_CAFILE": "ROGUE"}, "check ACW_SSL_CAFILE"),
    ],
    ids=["wrong-password", "untrusted-certificate"],
)
def test_worker_with_bad_credentials_exits_at_once_with_a_clear_message(
    secured: SecuredBroker, worker_env: dict[str, str], tmp_path: Path, overrides: dict[str, str], expected: str
) -> None:
    env = _secured_env(worker_env, secured)
    env.update(overrides)
    if env["ACW_SSL_CAFILE"] == "ROGUE":
        env["ACW_SSL_CAFILE"] = str(secured.rogue_ca)
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env={**env, "ACW_LOG_LEVEL": "DEBUG"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert expected in done.stderr
    assert secured.password not in done.stderr + done.stdout
    assert "not-the-password-5678" not in done.stderr + done.stdout


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_a_password_from_a_file_connects_and_is_not_logged(
    secured: SecuredBroker, tmp_path: Path, mechanism: str
) -> None:
    """ACW_SASL_PASSWORD_FILE, as a mounted secret would be; `acw topics create` runs with it at DEBUG.

    With PLAIN, aiokafka's DEBUG log of the authentication request holds the password: it must be redacted.
    """
    secret_file = tmp_path / "password"
    secret_file.write_text(secured.password + "\n")
    env = {k: v for k, v in _secured_env({}, secured, mechanism).items() if k != "ACW_SASL_PASSWORD"}
    env.update({"ACW_SASL_PASSWORD_FILE": str(secret_file), "ACW_LOG_LEVEL": "DEBUG", "PYTHONPATH": str(ROOT)})
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "topics", "create"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "topic(s)" in done.stdout
    assert "level=DEBUG" in done.stderr
    assert secured.password not in done.stdout + done.stderr
    if mechanism == "PLAIN":
        assert f"{USER}\\x00***" in done.stderr, "the PLAIN request was not logged, so redaction went untested"
