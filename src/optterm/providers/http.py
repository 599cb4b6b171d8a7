"""What every HTTP provider shares: one client factory, and mapping transport failures and
non-JSON answers onto the typed errors of `base` so nothing else ever escapes a provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from optterm.providers.base import (
    BadPayload,
    ProviderConnectionError,
    ProviderTimeout,
    ServerError,
)

__all__ = ["decode_json", "make_client", "send", "transport_errors"]


def _accept_encoding() -> str:
    # httpx decodes brotli only when a brotli package is importable; advertising `br` without it
    # gets a body we cannot read.
    try:
        import brotli  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        try:
            import brotlicffi  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            return "gzip, deflate"
    return "gzip, deflate, br"


def make_client(
    base_url: str, *, timeout: float, headers: dict[str, str] | None = None, **kw: Any
) -> httpx.AsyncClient:
    hdrs = {"Accept-Encoding": _accept_encoding(), **(headers or {})}
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        headers=hdrs,
        transport=httpx.AsyncHTTPTransport(
            retries=1
        ),  # reconnects only; retries are the failover's job
        follow_redirects=False,
        **kw,
    )


@contextmanager
def transport_errors(provider: str, where: str) -> Iterator[None]:
    """Transport failures inside the block become ProviderTimeout / ProviderConnectionError.

    `where` ("GET /path") starts the message; for a streamed download the whole transfer sits
    inside the block, so a connection lost half-way is mapped too.
    """
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(
            provider, f"{where}: no answer in time ({type(exc).__name__})"
        ) from None
    except httpx.HTTPError as exc:
        raise ProviderConnectionError(provider, f"{where}: {type(exc).__name__}: {exc}") from None


async def send(
    client: httpx.AsyncClient, provider: str, method: str, url: str, **kw: Any
) -> httpx.Response:
    """One request; transport failures become ProviderTimeout / ProviderConnectionError."""
    with transport_errors(provider, f"{method} {url}"):
        return await client.request(method, url, **kw)


def decode_json(provider: str, resp: httpx.Response) -> Any:
    """The JSON body, or BadPayload / ServerError saying what came instead."""
    where = f"{resp.request.method} {resp.request.url.path}"
    if resp.status_code >= 500:
        raise ServerError(provider, f"{where}: HTTP {resp.status_code}", status=resp.status_code)
    ctype = resp.headers.get("content-type", "")
    text_start = resp.content[:200].lstrip()[:1]
    if "json" not in ctype and text_start not in (b"{", b"["):
        kind = "an HTML page" if b"<" in resp.content[:200] else f"{ctype or 'an untyped body'}"
        raise BadPayload(provider, f"{where}: expected JSON, got {kind} (HTTP {resp.status_code})")
    try:
        return json.loads(resp.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadPayload(provider, f"{where}: body is not valid JSON ({exc})") from None
    except RecursionError:  # nested deeper than the parser's stack: hostile, not a chain
        raise BadPayload(provider, f"{where}: JSON nested too deeply to be a reply") from None
