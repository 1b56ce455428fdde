"""awork over HTTP: serves a stand-in's `handle` (the sandbox's for `invite-bot sandbox`, or a
test fake's) at `/api/v1/...`, as a real API would take connections."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from bot.awork import sandbox_records as records


class Backlogged(ThreadingHTTPServer):
    """A listen backlog of 128, not socketserver's 5: under a burst from several bot
    processes, connections wait to be accepted instead of being reset, as a real API's would."""

    request_queue_size = 128


def http_server(
    handle: Callable[[httpx.Request], httpx.Response], host: str, port: int
) -> ThreadingHTTPServer:
    """An awork stand-in's `handle` (the sandbox's, or a test fake's) over HTTP at `/api/v1/...`,
    keep-alive, one thread per connection. A `handle` that raises `httpx.ConnectError` drops
    the connection. Call `serve_forever()`; `server_address` has the port (0: a free one)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as awork's gateway: no connect per call
        server_version = "awork-sandbox"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            content = self.rfile.read(length) if length else b""
            if len(content) < length:  # the client went away mid-request: nothing to answer
                self.close_connection = True
                return
            request = httpx.Request(
                self.command,
                f"http://{host}{self.path}",
                headers=dict(self.headers.items()),
                content=content,
            )
            if not self.path.startswith("/api/v1/"):
                response = records.error(404, "not-found", "awork's API lives under /api/v1/.")
            else:
                try:
                    response = handle(request)
                except httpx.ConnectError:
                    self.close_connection = True
                    return
            body = response.content
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # The caller may have gone (killed mid-call); the work is done all the same.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = Backlogged((host, port), Handler)
    server.daemon_threads = True
    return server
