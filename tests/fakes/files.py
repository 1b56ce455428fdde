"""Slack's file host (`https://files.slack.com`) as an httpx transport, for the bulk form's CSV.

Put `transport` into `handlers.files.TRANSPORT` (the `files` fixture does): the bot's download
then never leaves the process. `files` maps a name to its content (bytes, or a callable giving
a fresh iterator of chunks, for endless or slow bodies), `answers` to a whole response of its
own (a redirect, an error); `requests` records each request as it arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx

HOST = "https://files.slack.com"


class FakeFiles:
    def __init__(self) -> None:
        self.files: dict[str, bytes | Callable[[], Iterator[bytes]]] = {}
        self.answers: dict[str, httpx.Response] = {}
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self.handler)

    def url(self, name: str) -> str:
        """The file's `url_private` as Slack gives it."""
        return f"{HOST}/files-pri/T111-F0123/{name}"

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        name = request.url.path.rsplit("/", 1)[-1]
        if name in self.answers:
            return self.answers[name]
        content = self.files.get(name)
        authorized = request.headers.get("Authorization", "").startswith("Bearer xoxb-")
        if content is None or not authorized:
            return httpx.Response(404, content=b"not found")
        return httpx.Response(200, content=content() if callable(content) else content)

    def file(self, name: str, content: bytes | str, url: str | None = None) -> list[dict]:
        """Serve `content` as `name`; the file object as Slack puts it in a file_input's state."""
        data = content.encode() if isinstance(content, str) else content
        self.files[name] = data
        return [
            {
                "id": "F0123",
                "name": name,
                "title": name,
                "mimetype": "text/csv",
                "filetype": "csv",
                "size": len(data),
                "url_private": url or self.url(name),
                "url_private_download": url or self.url(name),
            }
        ]
