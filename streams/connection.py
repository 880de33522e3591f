"""How every Kafka client of ours connects: security options, Faust credentials, a start-up check, redaction.

One place turns the ACW_SECURITY_PROTOCOL / ACW_SASL_* / ACW_SSL_* settings into aiokafka options, so
the worker, its plain consumers and producers, the CLI's producers and `acw top` all connect alike.
`check_connection` runs before the worker starts: an authentication or certificate problem is not
transient, so it stops the program at once with a message that names the settings to look at.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any

from streams.settings import ConfigError, Settings

log = logging.getLogger("acw.connection")


class ConnectionCheckFailed(RuntimeError):
    """The broker cannot be used with these settings; the message says why and which settings to check."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL (None otherwise); bad files raise ConfigError naming the setting."""
    if not settings.security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.ssl_cafile:
        try:
            context.load_verify_locations(cafile=settings.ssl_cafile)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"ACW_SSL_CAFILE: {settings.ssl_cafile} holds no usable CA certificate: {exc}") from None
    if settings.ssl_certfile:
        try:
            context.load_cert_chain(
                settings.ssl_certfile, settings.ssl_keyfile, password=settings.ssl_key_password or None
            )
        except (ssl.SSLError, OSError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ConfigError(
                f"ACW_SSL_CERTFILE/ACW_SSL_KEYFILE: {settings.ssl_certfile} and {settings.ssl_keyfile} "
                f"are not a matching certificate and key (or ACW_SSL_KEY_PASSWORD is wrong): {why}"
            ) from None
    context.check_hostname = settings.ssl_check_hostname
    return context


def client_options(settings: Settings, context: ssl.SSLContext | None = None) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client: bootstrap servers and security."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol.endswith("SSL"):
        options["ssl_context"] = context if context is not None else ssl_context(settings)
    if settings.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password
    return options


def faust_credentials(settings: Settings, context: ssl.SSLContext | None = None) -> Any:
    """Faust's `broker_credentials` for these settings (None for PLAINTEXT)."""
    import faust

    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = context if context is not None else ssl_context(settings)
    if protocol == "SSL":
        assert context is not None
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=settings.sasl_username,
        password=settings.sasl_password,
        ssl_context=context,
        mechanism=settings.sasl_mechanism,
    )


def secrets(settings: Settings) -> list[str]:
    """The secret values in the settings, to be kept out of logs."""
    return [v for v in (settings.sasl_password, settings.ssl_key_password, settings.schema_registry_password) if v]


def redact(text: str, values: list[str]) -> str:
    """The text with every secret value replaced by `***`."""
    for value in values:
        if value:
            text = text.replace(value, "***")
    return text


def install_redaction(settings: Settings) -> None:
    """Redact the settings' secrets from every log record this process creates, whatever handler writes it.

    A record factory rather than a handler filter: Faust's worker replaces the root handlers at start.
    """
    values = secrets(settings)
    if not values:
        return
    make_record = logging.getLogRecordFactory()

    def redacting_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        text = record.getMessage()
        exc_text = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        if any(v in text or v in exc_text for v in values):
            record.msg, record.args = redact(text, values), None
            if exc_text:
                record.exc_info, record.exc_text = None, redact(exc_text, values)
        return record

    logging.setLogRecordFactory(redacting_record)


def explain(error: BaseException, settings: Settings, host: str) -> str:
    """A connection error in words, with the settings to check; never includes a secret."""
    from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed, UnsupportedSaslMechanismError

    if isinstance(error, ssl.SSLCertVerificationError):
        if "hostname" in str(error.verify_message or error):
            return (
                f"TLS: the certificate of {host} does not name that host ({error.verify_message}); "
                "check ACW_BOOTSTRAP_SERVERS or, only for testing, ACW_SSL_CHECK_HOSTNAME=false"
            )
        return (
            f"TLS: the certificate of {host} is not trusted ({error.verify_message}); "
            f"check ACW_SSL_CAFILE (now {settings.ssl_cafile or 'the system CAs'})"
        )
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake with {host} failed ({error.reason or error}); check ACW_SECURITY_PROTOCOL and ACW_SSL_*"
    if isinstance(error, SaslAuthenticationFailed):
        return (
            f"SASL {settings.sasl_mechanism} authentication as {settings.sasl_username!r} failed at {host}; "
            "check ACW_SASL_USERNAME and ACW_SASL_PASSWORD"
        )
    if isinstance(error, UnsupportedSaslMechanismError):
        return f"{host} does not accept SASL {settings.sasl_mechanism}; check ACW_SASL_MECHANISM"
    if isinstance(error, asyncio.TimeoutError):
        return (
            f"{host} did not answer in time; check ACW_BOOTSTRAP_SERVERS and that ACW_SECURITY_PROTOCOL "
            f"({settings.security_protocol}) matches the broker's listener"
        )
    if isinstance(error, KafkaConnectionError) and "closed" in str(error):
        return (
            f"{host} closed the connection; check that ACW_SECURITY_PROTOCOL ({settings.security_protocol}) "
            "matches the broker's listener"
        )
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error) or type(error).__name__
    return f"cannot reach {host}: {reason}; check ACW_BOOTSTRAP_SERVERS"


def _permanent(error: BaseException) -> bool:
    from aiokafka.errors import SaslAuthenticationFailed, UnsupportedSaslMechanismError

    return isinstance(error, ssl.SSLError | SaslAuthenticationFailed | UnsupportedSaslMechanismError)


async def probe(settings: Settings, context: ssl.SSLContext | None, host: str, port: int) -> None:
    """Connect, authenticate and read metadata from one server; raises what went wrong."""
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    options = client_options(settings, context)
    options.pop("bootstrap_servers")
    conn = await create_conn(host, port, request_timeout_ms=10_000, **options)
    try:
        await conn.send(MetadataRequest([]))
    finally:
        conn.close()


def bootstrap_hosts(settings: Settings) -> list[tuple[str, int]]:
    """ACW_BOOTSTRAP_SERVERS as (host, port) pairs."""
    hosts = []
    for server in settings.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"ACW_BOOTSTRAP_SERVERS: {server.strip()!r} is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    return hosts


async def _first_answer(
    settings: Settings, context: ssl.SSLContext | None, hosts: list[tuple[str, int]], timeout_s: float
) -> list[tuple[BaseException, str]]:
    """Probe the bootstrap servers in turn until one answers; [] then, else each one's error and its explanation."""
    failures: list[tuple[BaseException, str]] = []
    for host, port in hosts:
        try:
            await asyncio.wait_for(probe(settings, context, host, port), timeout=timeout_s)
            return []
        except Exception as exc:
            failures.append((exc, explain(exc, settings, f"{host}:{port}")))
    return failures


class BrokerWatch:
    """Tells whether the broker answers, for the worker's logs and metrics during an outage."""

    def __init__(self, settings: Settings, context: ssl.SSLContext | None) -> None:
        self.settings = settings
        self.context = context
        self.hosts = bootstrap_hosts(settings)
        self.down_since: float | None = None

    async def check(self, timeout_s: float = 5.0) -> bool:
        """True when some bootstrap server answered; logs once when an outage starts and when it ends."""
        failures = await _first_answer(self.settings, self.context, self.hosts, timeout_s)
        if not failures:
            if self.down_since is not None:
                log.warning("broker reachable again after %.0f s of outage", time.monotonic() - self.down_since)
                self.down_since = None
            return True
        if self.down_since is None:
            self.down_since = time.monotonic()
            problem = "; ".join(why for _, why in failures)
            log.warning("broker unreachable: %s; the worker keeps retrying", problem)
        return False


async def check_connection(settings: Settings) -> None:
    """Connect, authenticate and read metadata from one bootstrap server, or raise ConnectionCheckFailed.

    Authentication and certificate errors fail at once; an unreachable broker is retried until
    ACW_CONNECT_TIMEOUT_SECONDS, since it may still be starting.
    """
    context = ssl_context(settings)
    hosts = bootstrap_hosts(settings)
    deadline = time.monotonic() + settings.connect_timeout_seconds
    while True:
        failures = await _first_answer(settings, context, hosts, 15)
        if not failures:
            return
        for exc, why in failures:
            if _permanent(exc):
                raise ConnectionCheckFailed(why) from None
        problems = "; ".join(why for _, why in failures)
        if time.monotonic() >= deadline:
            within = f"ACW_CONNECT_TIMEOUT_SECONDS={settings.connect_timeout_seconds:g}"
            raise ConnectionCheckFailed(f"no bootstrap server answered within {within}: {problems}")
        log.warning("waiting for the broker: %s", problems)
        await asyncio.sleep(1.0)
