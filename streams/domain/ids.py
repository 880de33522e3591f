"""Deterministic record ids: name-based UUIDs, so a record emitted again after a crash keeps its id."""

from __future__ import annotations

import hashlib


def uuid5(namespace: bytes, name: bytes) -> str:
    """The text of the version-5 UUID of `name` in `namespace` (its 16 bytes): `str(uuid.uuid5(...))`, faster.

    The uuid module builds a UUID object and formats it in Python; ids are made for every interval and alert.
    """
    b = bytearray(hashlib.sha1(namespace + name, usedforsecurity=False).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
