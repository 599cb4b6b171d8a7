"""A real HTTP server on 127.0.0.1 that replays recorded payloads, for provider tests.

Routes map (method, path) to a script of responses: a single Reply, a list consumed in order (the
last one repeats), or a callable that builds a Reply from the Request. A reply with `hang=True`
holds the connection open until the test releases it (or the server stops), which is how a
timeout is produced without sleeping. A reply with `stream` sends the chunks it yields until
they run out or the client hangs up, with no Content-Length, and records how many bytes the
server managed to send (`streamed`): how a huge body is served without holding it anywhere.
Every request is recorded for assertions.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["ReplayServer", "Reply", "Request"]


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    stream: Callable[[], Iterable[bytes]] | None = None

    @classmethod
    def json(cls, doc: Any, status: int = 200, **headers: str) -> Reply:
        return cls(
            status, json.dumps(doc).encode(), {"Content-Type": "application/json", **headers}
        )

    @classmethod
    def file(cls, path: Path, status: int = 200, content_type: str | None = None) -> Reply:
        ctype = content_type or (
            "application/json" if path.suffix == ".json" else "text/html; charset=utf-8"
        )
        return cls(status, path.read_bytes(), {"Content-Type": ctype})

    @classmethod
    def text(cls, text: str, status: int = 200) -> Reply:
        return cls(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Script = Reply | list[Reply] | Callable[[Request], Reply]


class ReplayServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Script] = {}
        self.requests: list[Request] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._cursor: dict[tuple[str, str], int] = {}
        # Bytes each streamed reply got out before it ended; `stream_done` is set as each ends.
        self.streamed: list[int] = []
        self.stream_done = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def handle(self) -> None:
                # A client may hang up mid-answer (as the byte cap makes it do).
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = Request(
                    self.command, parts.path, parse_qs(parts.query), dict(self.headers), body
                )
                reply = server._reply_for(req)
                if reply.hang:
                    server.release.wait(30)
                    return
                if reply.stream is not None:
                    self._stream(reply)
                    return
                payload = reply.body
                if not isinstance(payload, bytes | str):
                    payload = json.dumps(payload)
                data = payload.encode() if isinstance(payload, str) else payload
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: Reply) -> None:
                assert reply.stream is not None
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                sent = 0
                try:
                    for chunk in reply.stream():
                        self.wfile.write(chunk)
                        sent += len(chunk)
                except OSError:  # the client hung up: what it cost is what got out
                    pass
                finally:
                    with server._lock:
                        server.streamed.append(sent)
                    server.stream_done.set()

            do_GET = do_POST = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path: str, script: Script) -> None:
        with self._lock:
            self.routes[(method.upper(), path)] = script
            self._cursor[(method.upper(), path)] = 0

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _reply_for(self, req: Request) -> Reply:
        with self._lock:
            self.requests.append(req)
            key = (req.method, req.path)
            script = self.routes.get(key)
            if script is None:
                return Reply.text(f"no route for {req.method} {req.path}", 404)
            if isinstance(script, list):
                i = self._cursor[key]
                self._cursor[key] = i + 1
                return script[min(i, len(script) - 1)]
        return script(req) if callable(script) else script

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
