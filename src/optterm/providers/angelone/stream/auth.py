"""What a Smart Stream handshake carries, taken from the REST session (no login of its own)."""

from __future__ import annotations

from dataclasses import dataclass, field

from optterm.infra.redact import protect

__all__ = ["StreamAuth"]


@dataclass(frozen=True, slots=True)
class StreamAuth:
    """The handshake's headers. Never printed: the repr hides every value, and the values are
    registered with the log redactor before any library can log one."""

    jwt: str = field(repr=False)
    api_key: str = field(repr=False)
    client_code: str = field(repr=False)
    feed_token: str = field(repr=False)

    def __post_init__(self) -> None:
        protect((self.jwt, self.api_key, self.feed_token))

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.jwt}",
            "x-api-key": self.api_key,
            "x-client-code": self.client_code,
            "x-feed-token": self.feed_token,
        }
