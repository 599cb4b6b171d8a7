"""Loopback sinks for notification tests: an HTTP server that records every request (and answers
500 on demand) and an SMTP server (aiosmtpd) that records every message. Both listen on
127.0.0.1 on an ephemeral port, run in their own thread, and let a test wait for the n-th
arrival on a condition — no sleeping.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

__all__ = ["CaptureServer", "Captured", "SmtpSink"]


@dataclass(frozen=True)
class Captured:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int  # what the server answered
    at: float = field(default_factory=time.perf_counter)

    def json(self) -> Any:
        return json.loads(self.body)


class CaptureServer:
    """Answers 200 to any POST/GET and records it. `fail(path)` makes a path answer 500 always,
    `fail(path, times=n)` the next n times only (then 200 again); `hold(path)` keeps its
    requests waiting for `release()`."""

    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self._failures: dict[str, int | None] = {}
        self._holds: dict[str, threading.Event] = {}
        self._cond = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                status = server._status_for(parts.path)
                # Recorded before answering: once the client has its answer, the test sees it.
                server._record(
                    Captured(
                        self.command,
                        parts.path,
                        parse_qs(parts.query),
                        dict(self.headers),
                        body,
                        status,
                    )
                )
                held = server._holds.get(parts.path)
                if held is not None:
                    held.wait(30)
                payload = b"ok" if status == 200 else b"internal error"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def do_CONNECT(self) -> None:
                # Used as the HTTPS proxy of a process under test: a service whose host is
                # fixed (api.telegram.org, discord.com) is asked for here and refused, so the
                # request is seen and goes nowhere — no DNS, no internet.
                server._record(Captured("CONNECT", self.path, {}, dict(self.headers), b"", 403))
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # ------------------------------------------------------------------ set-up and tear-down

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def json_url(self, path: str, query: str = "") -> str:
        """An Apprise json:// URL posting to `path` on this server."""
        return f"json://127.0.0.1:{self.port}/{path.lstrip('/')}" + (f"?{query}" if query else "")

    @property
    def proxy_env(self) -> dict[str, str]:
        """Environment that makes a process's HTTP(S) to any host but loopback come here: a
        plain-HTTP request is answered and recorded, an HTTPS tunnel (CONNECT) recorded and
        refused."""
        proxy = f"http://127.0.0.1:{self.port}"
        loopback = "127.0.0.1,localhost"
        return {
            "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy,
            "https_proxy": proxy, "NO_PROXY": loopback, "no_proxy": loopback,
        }  # fmt: skip

    def tunnels(self) -> list[str]:
        """The host:port of every CONNECT asked of this server as a proxy."""
        with self._cond:
            return [r.path for r in self.requests if r.method == "CONNECT"]

    def fail(self, path: str, times: int | None = None) -> None:
        with self._cond:
            self._failures["/" + path.lstrip("/")] = times

    def hold(self, path: str) -> None:
        """Requests to `path` are recorded at once but answered only after `release()`."""
        self._holds["/" + path.lstrip("/")] = threading.Event()

    def release(self) -> None:
        for event in self._holds.values():
            event.set()

    # ------------------------------------------------------------------------------ reading

    def _status_for(self, path: str) -> int:
        with self._cond:
            if path not in self._failures:
                return 200
            left = self._failures[path]
            if left is None:
                return 500
            if left <= 0:
                del self._failures[path]
                return 200
            self._failures[path] = left - 1
            return 500

    def _record(self, captured: Captured) -> None:
        with self._cond:
            self.requests.append(captured)
            self._cond.notify_all()

    def hits(self, path: str) -> list[Captured]:
        path = "/" + path.lstrip("/")
        with self._cond:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 10) -> list[Captured]:
        """Block until `count` requests (to `path`, or any) have arrived; return them."""

        def matching() -> list[Captured]:
            want = None if path is None else "/" + path.lstrip("/")
            return [r for r in self.requests if want is None or r.path == want]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matching()) >= count, timeout):
                raise TimeoutError(f"{len(matching())} of {count} request(s) to {path or '*'}")
            return matching()

    async def await_for(self, count: int, path: str | None = None) -> list[Captured]:
        """`wait_for` from async code, without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for, count, path)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """An aiosmtpd SMTP server on 127.0.0.1 that keeps every message (no TLS). With
    `logins=True` it offers AUTH (over plain text, which only a test may) and accepts any user
    and password, recording them in `logins`."""

    def __init__(self, *, logins: bool = False) -> None:
        self.logins: list[tuple[str, str]] = []
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._cond = threading.Condition()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with sink._cond:
                    sink.messages.append(msg)  # type: ignore[arg-type]
                    sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                    sink._cond.notify_all()
                return "250 Message accepted for delivery"

        def accept(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            from aiosmtpd.smtp import AuthResult, LoginPassword

            if isinstance(data, LoginPassword):
                with sink._cond:
                    sink.logins.append((data.login.decode(), data.password.decode()))
            return AuthResult(success=True)

        auth: dict[str, Any] = (
            {"authenticator": accept, "auth_require_tls": False} if logins else {}
        )
        self.port = _free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **auth)

    def start(self) -> Self:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def mailto_url(self, sender: str = "optterm@localhost", to: str = "trader@localhost") -> str:
        return f"mailto://127.0.0.1:{self.port}?from={sender}&to={to}&mode=insecure"

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"{len(self.messages)} of {count} message(s)")
            return list(self.messages)
