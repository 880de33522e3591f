"""How each platform's channel names map to ours; anything else is TASK, and counted."""

from __future__ import annotations

from streams.domain.events import Channel

UNKNOWN_CHANNEL = "unknown_channel"

# Keys are upper-cased platform values. Synchronous media (calls, callbacks, video) take one contact at a
# time and are ended by the next call, like VOICE; messaging is CHAT; co-browse and screen share ride on
# another interaction and have no wrap-up of their own, so they are TASK.
CONNECT = {"VOICE": Channel.VOICE, "CHAT": Channel.CHAT, "TASK": Channel.TASK, "TASKS": Channel.TASK,
           "EMAIL": Channel.EMAIL}  # fmt: skip
GENESYS = {
    "VOICE": Channel.VOICE,
    "CALLBACK": Channel.VOICE,
    "VIDEO": Channel.VOICE,
    "CHAT": Channel.CHAT,
    "MESSAGE": Channel.CHAT,
    "EMAIL": Channel.EMAIL,
    "COBROWSE": Channel.TASK,
    "SCREENSHARE": Channel.TASK,
}
TWILIO = {
    "VOICE": Channel.VOICE,
    "CHAT": Channel.CHAT,
    "SMS": Channel.CHAT,
    "MESSAGING": Channel.CHAT,
    "EMAIL": Channel.EMAIL,
    "DEFAULT": Channel.TASK,
}


def map_channel(table: dict[str, Channel], value: str | None, notes: list[str]) -> Channel | None:
    """Our channel for a platform value (None stays None); an unknown value is TASK and adds a note."""
    if value is None:
        return None
    channel = table.get(value.upper())
    if channel is None:
        notes.append(UNKNOWN_CHANNEL)
        return Channel.TASK
    return channel
