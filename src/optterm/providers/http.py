"""What every HTTP provider shares: one client factory, and mapping transport failures and
non-JSON answers onto the typed errors of `base` so nothing else ever escapes a provider."""

from __future__ import annotations

import json
import zlib
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

__all__ = [
    "MAX_BODY_MB",
    "decode_json",
    "make_client",
    "send",
    "transport_errors",
]

# The largest body a provider answer may have, decoded, unless the provider's settings say
# otherwise (`max_body_mb`). A real NSE chain is well under 2 MB; a hostile or broken server
# sending 500 MB must cost us the cap, not the whole body held in memory.
MAX_BODY_MB = 16.0
# Headers that described the body on the wire; the buffered response holds it decoded.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


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
    client: httpx.AsyncClient,
    provider: str,
    method: str,
    url: str,
    *,
    max_body_mb: float = MAX_BODY_MB,
    **kw: Any,
) -> httpx.Response:
    """One request, its body read in full but never past `max_body_mb` (decoded): past it the
    transfer is abandoned (the connection closed) and BadPayload says so. Transport failures
    become ProviderTimeout / ProviderConnectionError."""
    where = f"{method} {url}"
    cap = int(max_body_mb * 1024 * 1024)
    with transport_errors(provider, where):
        resp = await client.send(client.build_request(method, url, **kw), stream=True)
        try:
            body = await _read_capped(resp, cap, provider, where, max_body_mb)
        finally:
            await resp.aclose()
    headers = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in _WIRE_HEADERS]
    return httpx.Response(
        resp.status_code,
        headers=headers,
        content=body,
        request=resp.request,
        extensions=resp.extensions,
    )


async def _read_capped(
    resp: httpx.Response, cap: int, provider: str, where: str, cap_mb: float
) -> bytes:
    too_big = BadPayload(
        provider,
        f"{where}: response larger than {cap_mb:g} MB; refused unread (raise `max_body_mb` "
        "in the provider's settings only if its answers really are that large)",
    )
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and "content-encoding" not in resp.headers and int(declared) > cap:
        raise too_big
    encoding = resp.headers.get("content-encoding", "").strip().lower()
    body = bytearray()
    if encoding in _ZLIB_WBITS:
        # Decoded here, never more than the cap at a time: httpx's own decoder would inflate a
        # whole received chunk at once, and 64 kB of a gzip bomb is 64 MB.
        inflate = zlib.decompressobj(_ZLIB_WBITS[encoding])
        try:
            async for raw in resp.aiter_raw():
                data = raw
                while data:
                    body += inflate.decompress(data, cap + 1 - len(body))
                    if len(body) > cap:
                        raise too_big
                    data = inflate.unconsumed_tail
            body += inflate.flush()
        except zlib.error as exc:
            raise BadPayload(provider, f"{where}: the {encoding} body is damaged ({exc})") from None
    else:
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) > cap:
                raise too_big
    if len(body) > cap:
        raise too_big
    return bytes(body)


# zlib's window bits per Content-Encoding: 16 + MAX_WBITS reads a gzip stream
# (deflate, rare and ambiguous between zlib and raw streams, is left to httpx's decoder.)
_ZLIB_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS}


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
