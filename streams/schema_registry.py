"""The Schema Registry as the product uses it: output schemas registered by subject, writer schemas fetched by id.

A thin layer over `python-schema-registry-client` (async, Confluent's REST API): it maps the registry's
answers to the product's errors (a dead-letter reason per record, a ConfigError naming the setting at start)
and keeps credentials out of every message.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable

import httpx
from schema_registry.client import AsyncSchemaRegistryClient
from schema_registry.client.errors import ClientError

from streams.domain.events import InvalidEvent
from streams.serialization import FramedCodec, WriterSchemas, schema_text
from streams.settings import ConfigError, Settings
from streams.topics import TopicSpec

# After a failed look-up the registry is not asked again for this long: records meanwhile dead-letter at once.
RETRY_AFTER_SECONDS = 5.0


class RegistryUnavailable(RuntimeError):
    """The registry did not answer (connection refused, timeout, 5xx)."""


class SchemaRegistry:
    """One registry client for the worker's lifetime; caches ids by subject and writer schemas by id."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.schema_registry_url.rstrip("/")
        auth = (
            httpx.BasicAuth(settings.schema_registry_username, settings.schema_registry_password)
            if settings.schema_registry_username
            else None
        )
        self._client = AsyncSchemaRegistryClient(
            self.url, auth=auth, timeout=httpx.Timeout(settings.schema_registry_timeout_seconds)
        )
        context = _tls_context(settings)
        if context is not None:
            self._client.client_kwargs["verify"] = context
        self._down_until = 0.0

    async def check(self) -> None:
        """Raise ConfigError naming ACW_SCHEMA_REGISTRY_URL when the registry cannot be used at all."""
        try:
            response = await self._client.request(f"{self.url}/subjects")
        except httpx.HTTPError as exc:
            raise ConfigError(f"ACW_SCHEMA_REGISTRY_URL: cannot reach {self.url}: {_why(exc)}") from None
        if response.status_code in (401, 403):
            raise ConfigError(
                f"ACW_SCHEMA_REGISTRY_USERNAME/ACW_SCHEMA_REGISTRY_PASSWORD: {self.url} refused them "
                f"(HTTP {response.status_code})"
            )
        if response.status_code >= 400:
            raise ConfigError(
                f"ACW_SCHEMA_REGISTRY_URL: {self.url} is not a Confluent-compatible registry "
                f"(GET /subjects: HTTP {response.status_code})"
            )

    async def register(self, spec: TopicSpec) -> FramedCodec:
        """Register the topic's value schema under `<topic>-value`; the codec that frames with its id."""
        assert spec.schema is not None
        try:
            schema_id = await self._client.register(spec.subject, schema_text(spec.schema))
        except httpx.HTTPError as exc:
            raise ConfigError(f"ACW_SCHEMA_REGISTRY_URL: cannot reach {self.url}: {_why(exc)}") from None
        except ClientError as exc:
            raise ConfigError(
                f"ACW_SCHEMA_REGISTRY_URL: {self.url} refused schemas/{spec.schema}.avsc for subject "
                f"{spec.subject}: {exc.message} (HTTP {exc.http_code}): {exc.server_traceback}"
            ) from None
        return FramedCodec(spec.schema, schema_id)

    async def register_all(self, specs: Iterable[TopicSpec]) -> dict[str, FramedCodec]:
        """Check the registry, then register every topic's schema; codecs by topic name."""
        await self.check()
        return {spec.name: await self.register(spec) for spec in specs if spec.schema is not None}

    async def learn(self, schema_id: int, writers: WriterSchemas) -> None:
        """Fetch a writer schema into `writers`; an unknown id is remembered, an outage raises InvalidEvent."""
        if schema_id in writers:
            return
        if time.monotonic() < self._down_until:
            raise InvalidEvent("registry_unavailable", f"{self.url} did not answer recently; schema id {schema_id}")
        try:
            response = await self._client.request(f"{self.url}/schemas/ids/{schema_id}")
        except httpx.HTTPError as exc:
            self._down_until = time.monotonic() + RETRY_AFTER_SECONDS
            raise InvalidEvent("registry_unavailable", f"{self.url}: {_why(exc)}; schema id {schema_id}") from None
        if response.status_code == 404:
            writers.reject(schema_id, InvalidEvent("unknown_schema_id", f"schema id {schema_id} is not in {self.url}"))
            return
        if response.status_code >= 400:
            self._down_until = time.monotonic() + RETRY_AFTER_SECONDS
            raise InvalidEvent(
                "registry_unavailable", f"{self.url}: HTTP {response.status_code} for schema id {schema_id}"
            )
        body = response.json()
        if body.get("schemaType", "AVRO") != "AVRO":
            writers.reject(
                schema_id, InvalidEvent("incompatible_schema", f"schema id {schema_id} is {body['schemaType']}")
            )
            return
        writers.add(schema_id, body["schema"])


def _why(exc: httpx.HTTPError) -> str:
    """What went wrong, without the request (whose URL could carry credentials)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for an https registry with our own CA or a client certificate (None: system defaults)."""
    if not (settings.schema_registry_cafile or settings.schema_registry_certfile):
        return None
    context = ssl.create_default_context(cafile=settings.schema_registry_cafile or None)
    if settings.schema_registry_certfile:
        try:
            context.load_cert_chain(settings.schema_registry_certfile, settings.schema_registry_keyfile)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"ACW_SCHEMA_REGISTRY_CERTFILE/ACW_SCHEMA_REGISTRY_KEYFILE: not a matching certificate and key: "
                f"{type(exc).__name__}"
            ) from None
    return context
