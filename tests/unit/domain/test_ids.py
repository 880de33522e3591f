"""Record ids are the standard library's version-5 UUIDs, in its text."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from streams.domain.alerts import alert_id_for
from streams.domain.ids import uuid5

ALERT_NAMESPACE = uuid.UUID("0d8a5c9e-2b71-5f4a-8e3d-7c1b9a2f4e60")


@given(st.uuids(), st.text())
def test_uuid5_is_the_uuid_modules(namespace: uuid.UUID, name: str) -> None:
    assert uuid5(namespace.bytes, name.encode()) == str(uuid.uuid5(namespace, name))


def test_alert_ids_are_uuid5_of_their_parts_in_the_alert_namespace() -> None:
    parts = ("acw_over_10m", "AGENT", "agent-7", 1772438400000)
    assert alert_id_for(*parts) == str(uuid.uuid5(ALERT_NAMESPACE, "\x1f".join(map(str, parts))))
