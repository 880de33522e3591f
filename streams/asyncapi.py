"""The published contract: an AsyncAPI 3.0 document made from the same topic specification the code uses.

`acw asyncapi` prints it; the repository keeps it as `asyncapi.yaml`, and the suite fails when the two
drift apart and validates the file with the AsyncAPI CLI.
"""

from __future__ import annotations

from typing import Any

import yaml

from streams import __version__
from streams.serialization import load_schema
from streams.settings import Settings
from streams.topics import TopicSpec, topic_specs

BINDING_VERSION = "0.5.0"
AVRO = "application/vnd.apache.avro;version=1.9.0"
# Kafka's topic configurations the Kafka channel binding 0.5.0 names; others stay in the description.
BINDING_CONFIGS = {"cleanup.policy", "retention.ms", "retention.bytes", "delete.retention.ms", "max.message.bytes"}
OPERATIONS = {
    "input": ("receive", "The worker consumes"),
    "rekey": ("send", "The worker re-keys to, and consumes"),
    "panes": ("send", "The interval stage sends, the merge stage consumes"),
    "intervals": ("send", "The worker publishes"),
    "aggregates": ("send", "The worker publishes"),
    "alerts": ("send", "The worker publishes"),
    "agent_state": ("send", "The worker publishes"),
    "dead_letter": ("send", "The worker publishes"),
}


def _channel_id(spec: TopicSpec) -> str:
    return spec.role if spec.role != "input" else f"input-{spec.name}"


def _message_id(spec: TopicSpec) -> str:
    if spec.role == "rekey":
        return "RekeyedCallEvent"
    if spec.schema is not None:
        return str(load_schema(spec.schema)["name"])
    return "AggregatePane" if spec.role == "panes" else f"PlatformRecord-{spec.value_format}"


def _message(spec: TopicSpec) -> dict[str, Any]:
    key = {"type": "string", "description": spec.key}
    kafka = {"key": key, "bindingVersion": BINDING_VERSION}
    if spec.schema is not None:
        schema = load_schema(spec.schema)
        kafka.update({"schemaIdLocation": "payload", "schemaIdPayloadEncoding": "confluent"})
        return {
            "name": schema["name"],
            "title": f"{schema['namespace']}.{schema['name']}",
            "summary": schema["doc"],
            "contentType": "application/octet-stream",
            "headers": {
                "type": "object",
                "properties": {
                    "acw-schema": {"type": "string", "description": "The value schema's full name."},
                    "acw-version": {"type": "string", "description": "acw-streams/VERSION that wrote the record."},
                },
            },
            "payload": {"schemaFormat": AVRO, "schema": {"$ref": f"./schemas/{spec.schema}.avsc"}},
            "bindings": {"kafka": kafka},
        }
    what = (
        "internal JSON: a pane of one partition, or its progress marker"
        if spec.role == "panes"
        else (f"one {spec.value_format} record, JSON, as the platform sends it")
    )
    return {
        "name": _message_id(spec),
        "summary": what,
        "contentType": "application/json",
        "payload": {"type": "object"},
        "bindings": {"kafka": kafka},
    }


def _channel(spec: TopicSpec) -> dict[str, Any]:
    configs: dict[str, Any] = {}
    for name, value in spec.configs.items():
        if name == "cleanup.policy":
            configs[name] = value.split(",")
        elif name in BINDING_CONFIGS:
            configs[name] = int(value)
    others = ", ".join(f"{k}={v}" for k, v in spec.configs.items() if k not in BINDING_CONFIGS)
    description = spec.summary + (f" Also: {others}." if others else "")
    channel: dict[str, Any] = {
        "address": spec.name,
        "title": spec.name,
        "description": description,
        "messages": {_message_id(spec): {"$ref": f"#/components/messages/{_message_id(spec)}"}},
        "bindings": {
            "kafka": {
                "topic": spec.name,
                "partitions": spec.partitions,
                "replicas": spec.replication_factor,
                "topicConfiguration": configs,
                "bindingVersion": BINDING_VERSION,
            }
        },
    }
    if not spec.public:
        channel["tags"] = [{"name": "internal", "description": "Under the application id; not for consumers."}]
    return channel


def document(settings: Settings) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the product as configured by `settings`."""
    specs = topic_specs(settings)
    registry = settings.schema_registry_url or "http://127.0.0.1:8081/apis/ccompat/v7"
    return {
        "asyncapi": "3.0.0",
        "id": "urn:io:acwstreams",
        "info": {
            "title": "ACW Streams",
            "version": __version__,
            "description": "After-call-work intervals, window aggregates, alerts and dead letters from call-lifecycle "
            "events. Values are Avro in the Confluent wire format when a Schema Registry is configured "
            "(subjects TOPIC-value, TopicNameStrategy), plain Avro otherwise; keys are UTF-8 strings. Schemas "
            "evolve BACKWARD_TRANSITIVE; every enum a newer writer could extend has a default.",
        },
        "servers": {
            "cluster": {
                "host": settings.bootstrap_servers,
                "protocol": "kafka-secure",
                "description": "A secured cluster: SASL/SCRAM over TLS, or mutual TLS (ACW_SECURITY_PROTOCOL).",
                "security": [
                    {"$ref": "#/components/securitySchemes/scram"},
                    {"$ref": "#/components/securitySchemes/mtls"},
                ],
                "bindings": {
                    "kafka": {
                        "schemaRegistryUrl": registry,
                        "schemaRegistryVendor": "confluent",
                        "bindingVersion": BINDING_VERSION,
                    }
                },
            },
            "local": {
                "host": settings.bootstrap_servers,
                "protocol": "kafka",
                "description": "deploy/kafka/broker.sh and deploy/registry/registry.sh on one machine, PLAINTEXT.",
                "bindings": {
                    "kafka": {
                        "schemaRegistryUrl": registry,
                        "schemaRegistryVendor": "confluent",
                        "bindingVersion": BINDING_VERSION,
                    }
                },
            },
        },
        "channels": {_channel_id(s): _channel(s) for s in specs},
        "operations": {
            f"{OPERATIONS[s.role][0]}-{_channel_id(s)}": {
                "action": OPERATIONS[s.role][0],
                "summary": f"{OPERATIONS[s.role][1]} {s.name}.",
                "channel": {"$ref": f"#/channels/{_channel_id(s)}"},
                "messages": [{"$ref": f"#/channels/{_channel_id(s)}/messages/{_message_id(s)}"}],
            }
            for s in specs
        },
        "components": {
            "messages": {_message_id(s): _message(s) for s in specs},
            "securitySchemes": {
                "scram": {"type": "scramSha512", "description": "ACW_SASL_USERNAME / ACW_SASL_PASSWORD."},
                "mtls": {"type": "X509", "description": "ACW_SSL_CERTFILE / ACW_SSL_KEYFILE."},
            },
        },
    }


def render(settings: Settings) -> str:
    """The document as YAML, keys in the order written."""
    header = "# Generated by `acw asyncapi` from streams/topics.py: edit the code, then regenerate.\n"
    return header + yaml.safe_dump(document(settings), sort_keys=False, allow_unicode=True, width=110)
