"""Slack's response URLs on loopback: what the bot posts to an action's `response_url`
(`url`, or any path under it, set on the clicks a test sends) is recorded in `answers`, the
path it was posted to in `paths` (so a bench can tell whose click was answered), and answered
"ok"."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ResponseUrls:
    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []
        self.paths: list[str] = []  # where each answer was posted, as in `answers`
        self._arrived = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._arrived:
                    fake.answers.append(body)
                    fake.paths.append(self.path)
                    fake._arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/actions/T1/1/secret"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.005}, daemon=True
        ).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The first `count` answers, once they have arrived."""
        with self._arrived:
            arrived = self._arrived.wait_for(lambda: len(self.answers) >= count, timeout)
            assert arrived, f"expected {count} answers, got {self.answers}"
            return self.answers[:count]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
