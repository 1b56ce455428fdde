"""A loopback TCP proxy in front of a server (PostgreSQL at 127.0.0.1:5432 by default) that
fails the way a network and a database do: `cut` drops every connection at once (a restart,
a failover, pg_terminate_backend for all), `down` makes new connections fail - refused, or
accepted and never answered - and `up` brings it back; `outage(seconds)` is `down`, then `up`
after that long, on a timer. Point the bot at `route(url)` instead of `url`.

Used by the tests (short outages) and by the fault benchmarks (long ones).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from urllib.parse import urlsplit, urlunsplit

REFUSE = "refuse"  # connecting fails at once: nothing listens (a stopped server)
HANG = "hang"  # connecting is accepted and never answered (a host that vanished)


class TcpProxy:
    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self.port = 0
        self.mode = "up"  # "up", REFUSE or HANG
        self.accepted = 0  # connections accepted so far, passed on or held
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()  # both ends of every connection passed on
        self._held: set[socket.socket] = set()  # connections accepted while hanging
        self._listener: socket.socket | None = None
        self._closed = False
        self._listen()

    @classmethod
    def route(cls, url: str) -> tuple[TcpProxy, str]:
        """A proxy in front of the server `url` names, and `url` pointed at the proxy."""
        parts = urlsplit(url)
        proxy = cls((parts.hostname or "127.0.0.1", parts.port or 5432))
        netloc = parts.netloc.rsplit("@", 1)
        where = f"127.0.0.1:{proxy.port}"
        netloc = f"{netloc[0]}@{where}" if len(netloc) == 2 else where
        return proxy, urlunsplit(parts._replace(netloc=netloc))

    # -- faults --------------------------------------------------------------------------------

    def cut(self) -> int:
        """Drop every open connection (a reset on both sides); how many there were."""
        with self._lock:
            ends, self._open = self._open, set()
            held, self._held = self._held, set()
        for end in ends | held:
            _reset(end)
        return len(ends) // 2 + len(held)

    def down(self, mode: str = REFUSE) -> None:
        """Drop every connection, and fail new ones as `mode` says until `up`."""
        if mode not in (REFUSE, HANG):
            raise ValueError(mode)
        with self._lock:
            self.mode = mode
            listener = self._listener if mode == REFUSE else None
            if listener is not None:
                self._listener = None
        if listener is not None:
            _stop_listening(listener)
        self.cut()

    def up(self) -> None:
        """Pass connections on again; those held while hanging are dropped."""
        with self._lock:
            self.mode = "up"
            held, self._held = self._held, set()
        for end in held:
            _reset(end)
        if self._listener is None and not self._closed:
            self._listen()

    def outage(self, seconds: float, mode: str = REFUSE) -> threading.Event:
        """`down` now and `up` after `seconds`; the event is set once it is back."""
        back = threading.Event()

        def end() -> None:
            self.up()
            back.set()

        self.down(mode)
        timer = threading.Timer(seconds, end)
        timer.daemon = True
        timer.start()
        return back

    def close(self) -> None:
        self._closed = True
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            _stop_listening(listener)
        self.cut()

    # -- passing bytes on ----------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: refusing, or the proxy is done
            self.accepted += 1
            with self._lock:
                hanging = self.mode == HANG
                if hanging:
                    self._held.add(client)
            if not hanging:
                threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
            server.settimeout(None)
        except OSError:
            _reset(client)
            return
        with self._lock:
            if self.mode != "up":
                ends: tuple[socket.socket, ...] = (client, server)
            else:
                self._open |= {client, server}
                ends = ()
        for end in ends:
            _reset(end)
        if ends:
            return
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        with self._lock:
            gone = source in self._open
            self._open -= {source, sink}
        if gone:
            _reset(source)
            _reset(sink)


def _reset(end: socket.socket) -> None:
    """Close with a reset (no orderly goodbye), as a dropped connection looks."""
    with contextlib.suppress(OSError):
        end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    end.close()


def _stop_listening(listener: socket.socket) -> None:
    """Refuse new connections at once; the accepting thread wakes up (a plain close would
    leave it blocked in accept)."""
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()
