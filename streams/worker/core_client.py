"""The worker's end of the core process: requests written in order, each reply handed to its callback in order.

Requests are written without waiting for their replies, so the worker fetches, encodes and sends one batch's
outputs while the core process applies the next; at most MAX_IN_FLIGHT wait at once. Replies come back in the
order of the requests; a task hands each to the callback given with its request and waits for it before
taking the next, so outputs reach the sink in the order the core produced them. A child that dies, or fails
a request, fails the worker: its next start restores the last checkpoint and repeats what followed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import fields
from typing import Any

from streams.settings import Settings
from streams.worker import core_wire
from streams.worker.core_process import CoreFailure

log = logging.getLogger("acw.worker")

# Requests sent and not yet answered before a request waits: a few batches ahead of the core process.
MAX_IN_FLIGHT = 16
# How long a stopping worker waits for the core process to end before killing it.
STOP_SECONDS = 5.0

OnReply = Callable[[Any], Awaitable[None] | None]
_END = object()  # the core process's end of the socket closed


class CoreProcessDied(Exception):
    """The core process ended, or failed a request: the cores' state past the last checkpoint is gone."""


class CoreClient:
    """Starts the core process, sends it requests and hands out its replies in order."""

    def __init__(self, settings: Settings, on_death: Callable[[BaseException], None]) -> None:
        self.settings = settings
        self._on_death = on_death
        self._pending: deque[OnReply | None] = deque()
        self._asked: set[asyncio.Future[Any]] = set()  # replies awaited by `ask`
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._replies: asyncio.Queue[Any] = asyncio.Queue()
        self._room = asyncio.Event()
        self._task: asyncio.Future[None] | None = None
        self.failure: BaseException | None = None

    async def start(self) -> None:
        """Start the child with one end of a socket pair, and send it the settings (their fields: derived values
        hold compiled objects, which do not pickle)."""
        ours, theirs = core_wire.pair()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "streams.worker.core_process", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        self._sock = ours
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(ours.fileno(), self._readable)
        core_wire.post(ours, {f.name: getattr(self.settings, f.name) for f in fields(self.settings)})
        self._task = asyncio.ensure_future(self._handle())
        log.info("core process started: pid=%d", self._proc.pid)

    @property
    def started(self) -> bool:
        """Whether the child was started (at the first request)."""
        return self._sock is not None

    @property
    def pid(self) -> int | None:
        """The child's process id, once started."""
        return self._proc.pid if self._proc is not None else None

    def send(self, message: tuple[Any, ...], on_reply: OnReply | None) -> None:
        """Write a request now, in order with every other (the child has started); nothing once it failed."""
        if self.failure is not None:
            return
        assert self._sock is not None
        self._pending.append(on_reply)
        try:
            core_wire.post(self._sock, message)
        except OSError as exc:
            self._died(CoreProcessDied(f"the core process ended: {exc!r}"))

    async def request(self, message: tuple[Any, ...], on_reply: OnReply | None) -> None:
        """Send a request, once fewer than MAX_IN_FLIGHT wait; `on_reply` gets its reply after every earlier one's."""
        if not self.started and self.failure is None:
            await self.start()
        while len(self._pending) >= MAX_IN_FLIGHT and self.failure is None:
            self._room.clear()
            await self._room.wait()
        if self.failure is not None:
            raise CoreProcessDied(str(self.failure))
        self.send(message, on_reply)

    async def ask(self, message: tuple[Any, ...]) -> Any:
        """Send a request and wait for its reply (after every earlier request's)."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._asked.add(reply)
        try:
            await self.request(message, reply.set_result)
            return await reply
        finally:
            self._asked.discard(reply)

    def _readable(self) -> None:
        """Take every reply waiting on the socket (the event loop calls this when one came)."""
        assert self._sock is not None and self._loop is not None
        while True:
            try:
                more, reply = core_wire.receive(self._sock, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                more, reply = False, None
            if not more:
                self._loop.remove_reader(self._sock.fileno())
                self._replies.put_nowait(_END)
                return
            self._replies.put_nowait(reply)

    async def _handle(self) -> None:
        """Hand each reply to its request's callback, in order, until the child ends or fails."""
        try:
            while True:
                reply = await self._replies.get()
                if reply is _END:
                    code = self._proc.poll() if self._proc is not None else None
                    raise CoreProcessDied(f"the core process ended (exit code {code})")
                on_reply = self._pending.popleft()
                self._room.set()
                if isinstance(reply, CoreFailure):
                    raise CoreProcessDied(f"the core process failed a request:\n{reply.text}")
                if on_reply is None:
                    continue
                done = on_reply(reply)
                if done is not None:
                    await done
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a failed request, or a callback that raised: the state is no longer sure
            self._died(exc)

    def _died(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            log.critical("%s; stopping so that a restart restores the last checkpoint", exc)
            self._on_death(exc)
        self._room.set()
        for reply in self._asked:  # their replies will not come
            if not reply.done():
                reply.set_exception(CoreProcessDied(str(exc)))

    def _disconnect(self) -> None:
        """Stop reading and close our end: the child sees end of file."""
        if self._sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    def kill(self) -> None:
        """End the child at once (a test's clean-up; the worker stops it with `close`)."""
        if self._task is not None and not self._task.done() and not self._task.get_loop().is_closed():
            self._task.cancel()
        self._disconnect()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    async def close(self) -> None:
        """Close our end (the child ends at end of file) and wait for the child, killing it if it lingers."""
        if self._task is not None:
            self._task.cancel()
        self._disconnect()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, proc.wait, STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
