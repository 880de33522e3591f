"""How the worker and its core process pass messages: each a pickle in a memory file, announced by one packet.

A stream socket carries about 200 KB at a time, so a batch of a megabyte or more would cross it in pieces,
each waiting for the writer's event loop to come round again: the core process would sit idle between them
while the worker does other work. Here a message's pickle is written into an anonymous memory file
(`memfd_create`) whose descriptor travels in one small packet of a sequenced-packet socket, so the reader
takes the whole message at once, whatever the writer is doing. Pickles are streamed into and out of the file,
so neither side holds a second copy of a large message (a checkpoint's entries) as one buffer. The file's
memory is freed when the reader closes it. Linux only.
"""

from __future__ import annotations

import array
import os
import pickle
import socket
from typing import Any

# The packet announcing a message; its descriptor travels as ancillary data.
_PACKET = b"m"
_FD_SPACE = socket.CMSG_LEN(array.array("i").itemsize)  # room for one descriptor
_BUFFER = 256 * 1024  # bytes written to or read from a memory file at once


def pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of sequenced-packet sockets: the worker's end, the core process's end."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def post(sock: socket.socket, message: Any) -> None:
    """Send one message; blocks only while the peer's queue of unread packets is full (a few hundred)."""
    fd = os.memfd_create("acw-core-message", os.MFD_CLOEXEC)
    try:
        with open(fd, "wb", buffering=_BUFFER, closefd=False) as file:
            pickle.dump(message, file, protocol=pickle.HIGHEST_PROTOCOL)
        socket.send_fds(sock, [_PACKET], [fd])
    finally:
        os.close(fd)


def receive(sock: socket.socket, flags: int = 0) -> tuple[bool, Any]:
    """(False, None) at end of file, else (True, the next message). With `socket.MSG_DONTWAIT`, BlockingIOError
    when none waits."""
    # socket.recv_fds would do, but before Python 3.12 it ignores `flags`.
    packet, ancillary, _, _ = sock.recvmsg(len(_PACKET), _FD_SPACE, flags)
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if not packet:
        for fd in fds:
            os.close(fd)
        return False, None
    [fd] = fds
    with open(fd, "rb", buffering=_BUFFER) as file:  # closes the descriptor: the memory is freed
        file.seek(0)
        return True, pickle.load(file)
