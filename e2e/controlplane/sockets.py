"""Which TCP addresses a process listens on (Linux ``/proc``), for the loopback-only check."""

from __future__ import annotations

import os
import socket
from pathlib import Path

_LISTEN = "0A"


def _decode(addr_hex: str) -> str:
    """``/proc/net/tcp*`` address (little-endian hex) to text."""
    raw = bytes.fromhex(addr_hex)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets ``pid`` holds open (empty when it is gone or unreadable)."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return set()
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def listening_addresses(pids: list[int]) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket held by any of ``pids``."""
    inodes: set[str] = set()
    for pid in pids:
        inodes |= socket_inodes(pid)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _LISTEN and fields[9] in inodes:
                addr, port = fields[1].split(":")
                found.append((_decode(addr), int(port, 16)))
    return sorted(set(found))


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ::1 (and IPv4-mapped loopback)."""
    if address.startswith("::ffff:"):
        address = address[7:]
    return address.startswith("127.") or address == "::1"
