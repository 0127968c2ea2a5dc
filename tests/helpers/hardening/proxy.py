"""A TCP proxy between Glue and PostgreSQL that plays the database up, down or
stalled, without touching the real server (other test runs share it)."""

from __future__ import annotations

import socket
import struct
import threading
from typing import Literal

Mode = Literal["pass", "down", "stall"]


class DbProxy:
    """Listens on 127.0.0.1:`port` and forwards to `target`, as `mode` says:

    - pass: bytes flow both ways;
    - down: new connections are reset and open ones cut (the server crashed);
    - stall: connections are accepted but nothing flows either way (a hung
      server, or a network that drops everything).
    """

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.target = target
        self.mode: Mode = "pass"
        self._changed = threading.Condition()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="db-proxy", daemon=True).start()

    def set_mode(self, mode: Mode) -> None:
        if mode not in ("pass", "down", "stall"):
            raise ValueError(f"no proxy mode {mode!r}")
        with self._changed:
            self.mode = mode
            self._changed.notify_all()
            if mode == "down":
                for sock in list(self._sockets):
                    _reset(sock)
                self._sockets.clear()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            for sock in list(self._sockets):
                _reset(sock)
            self._sockets.clear()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if self.mode == "down":
                _reset(client)
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        with self._changed:
            self._sockets.add(client)
            if not self._wait_unless_stalled():
                _reset(client)
                return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
        except OSError:
            _reset(client)
            return
        with self._changed:
            self._sockets.add(upstream)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                break
            if not data:
                break
            with self._changed:
                if not self._wait_unless_stalled():
                    break
            try:
                sink.sendall(data)
            except OSError:
                break
        _reset(source)
        _reset(sink)

    def _wait_unless_stalled(self) -> bool:
        """Hold on while stalled (the lock held); False if the link must be cut."""
        self._changed.wait_for(lambda: self.mode != "stall" or self._closed)
        return self.mode == "pass" and not self._closed


def _reset(sock: socket.socket) -> None:
    """Close with a reset, as a crashed server's host would."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)  # wakes a thread blocked reading it; close does not
    except OSError:
        pass
    sock.close()
