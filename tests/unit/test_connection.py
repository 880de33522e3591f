"""Kafka security settings: validation, client options, Faust credentials, redaction and error messages."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import faust
import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

from streams.connection import client_options, explain, faust_credentials, install_redaction, redact
from streams.settings import ConfigError, Settings

HERE = __file__  # any readable file
SASL = {"ACW_SECURITY_PROTOCOL": "SASL_SSL", "ACW_SASL_USERNAME": "u", "ACW_SASL_PASSWORD": "s3cret-value"}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ACW_SECURITY_PROTOCOL": "TLS"}, "ACW_SECURITY_PROTOCOL"),
        ({**SASL, "ACW_SASL_MECHANISM": "GSSAPI"}, "ACW_SASL_MECHANISM"),
        ({**SASL, "ACW_SASL_USERNAME": ""}, "ACW_SASL_USERNAME"),
        ({**SASL, "ACW_SASL_PASSWORD": ""}, "ACW_SASL_PASSWORD"),
        ({"ACW_SASL_USERNAME": "u", "ACW_SASL_PASSWORD": "p"}, "ACW_SECURITY_PROTOCOL"),
        ({"ACW_SSL_CAFILE": HERE}, "ACW_SECURITY_PROTOCOL"),
        ({"ACW_SECURITY_PROTOCOL": "SSL", "ACW_SSL_CAFILE": "/no/such/ca.pem"}, "ACW_SSL_CAFILE"),
        ({"ACW_SECURITY_PROTOCOL": "SSL", "ACW_SSL_CERTFILE": HERE}, "ACW_SSL_KEYFILE"),
        ({**SASL, "ACW_SASL_PASSWORD_FILE": HERE}, "ACW_SASL_PASSWORD_FILE"),
        ({"ACW_SECURITY_PROTOCOL": "SASL_SSL", "ACW_SASL_USERNAME": "u", "ACW_SASL_PASSWORD_FILE": "/nope"}, "/nope"),
        ({"ACW_CONNECT_TIMEOUT_SECONDS": "0"}, "ACW_CONNECT_TIMEOUT_SECONDS"),
    ],
)
def test_inconsistent_security_settings_are_refused_naming_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as refused:
        Settings.from_env(env)
    assert "s3cret-value" not in str(refused.value)


def test_the_password_is_read_from_a_file_and_never_shown_in_the_settings_repr(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-a-file\n")
    env = {k: v for k, v in SASL.items() if k != "ACW_SASL_PASSWORD"}
    settings = Settings.from_env({**env, "ACW_SASL_PASSWORD_FILE": str(tmp_path / "pw")})
    assert settings.sasl_password == "from-a-file"
    assert "from-a-file" not in repr(settings)
    assert "s3cret-value" not in repr(Settings.from_env(SASL))


def test_protocol_and_mechanism_are_case_insensitive() -> None:
    settings = Settings.from_env({**SASL, "ACW_SECURITY_PROTOCOL": "sasl_ssl", "ACW_SASL_MECHANISM": "scram-sha-256"})
    assert (settings.security_protocol, settings.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-256")


def test_client_options_and_faust_credentials_follow_the_protocol() -> None:
    assert client_options(Settings()) == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert faust_credentials(Settings()) is None

    sasl_ssl = Settings.from_env({**SASL, "ACW_SSL_CHECK_HOSTNAME": "false"})
    options = client_options(sasl_ssl)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("u", "s3cret-value")
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].check_hostname is False
    credentials = faust_credentials(sasl_ssl)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-512"
    assert "s3cret-value" not in repr(credentials)

    sasl_plaintext = Settings.from_env({**SASL, "ACW_SECURITY_PROTOCOL": "SASL_PLAINTEXT"})
    assert "ssl_context" not in client_options(sasl_plaintext)
    assert faust_credentials(sasl_plaintext).protocol.value == "SASL_PLAINTEXT"

    tls = Settings.from_env({"ACW_SECURITY_PROTOCOL": "SSL"})
    assert isinstance(faust_credentials(tls), faust.SSLCredentials)
    assert client_options(tls)["ssl_context"].check_hostname is True


def test_a_ca_file_that_is_not_a_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    settings = Settings.from_env({"ACW_SECURITY_PROTOCOL": "SSL", "ACW_SSL_CAFILE": str(tmp_path / "ca.pem")})
    with pytest.raises(ConfigError, match="ACW_SSL_CAFILE"):
        client_options(settings)


def test_redaction_replaces_secrets_in_messages_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert redact("user=u password=s3cret-value", ["s3cret-value"]) == "user=u password=***"
    before = logging.getLogRecordFactory()
    try:
        install_redaction(Settings.from_env(SASL))
        log = logging.getLogger("acw.test")
        with caplog.at_level(logging.INFO):
            log.info("connecting with %s", "s3cret-value")
            try:
                raise RuntimeError("bad s3cret-value")
            except RuntimeError:
                log.exception("failed")
        text = caplog.text
    finally:
        logging.setLogRecordFactory(before)
    assert "s3cret-value" not in text
    assert "connecting with ***" in text and "RuntimeError: bad ***" in text


def test_connection_errors_are_explained_with_the_settings_to_check() -> None:
    settings = Settings.from_env(SASL)
    auth = explain(SaslAuthenticationFailed("bad"), settings, "h:1")
    assert "authentication as 'u' failed at h:1" in auth and "ACW_SASL_PASSWORD" in auth
    closed = explain(KafkaConnectionError("Connection at h:1 closed"), settings, "h:1")
    assert "ACW_SECURITY_PROTOCOL (SASL_SSL)" in closed
    refused = explain(ConnectionRefusedError(111, "Connection refused"), settings, "h:1")
    assert refused == "cannot reach h:1: Connection refused; check ACW_BOOTSTRAP_SERVERS"
    untrusted = ssl.SSLCertVerificationError("certificate verify failed")
    untrusted.verify_message = "self-signed certificate"
    assert "not trusted (self-signed certificate); check ACW_SSL_CAFILE" in explain(untrusted, settings, "h:1")


def test_a_client_certificate_and_key_load_and_a_mismatched_pair_is_a_configuration_error(tmp_path: Path) -> None:
    from tests.integration.secured_broker import make_certificates

    make_certificates(tmp_path, "store-password")
    env = {
        "ACW_SECURITY_PROTOCOL": "SSL",
        "ACW_SSL_CAFILE": str(tmp_path / "ca.crt"),
        "ACW_SSL_CERTFILE": str(tmp_path / "broker.crt"),
        "ACW_SSL_KEYFILE": str(tmp_path / "broker.key"),
    }
    assert client_options(Settings.from_env(env))["ssl_context"] is not None
    mismatched = {**env, "ACW_SSL_KEYFILE": str(tmp_path / "ca.key")}
    with pytest.raises(ConfigError, match="ACW_SSL_CERTFILE/ACW_SSL_KEYFILE"):
        client_options(Settings.from_env(mismatched))
