"""Fetching a job's input image ourselves (Veo takes bytes or a bucket URI): the one place
this service opens a connection to an address a user chose.

Validation refused inside hosts by their text (``domain.image_uris``); a name can still
resolve anywhere, and resolve differently a second time. So the fetch resolves the name once,
refuses it if any address is inside (loopback, private, link-local, metadata…), then connects
to that checked address itself (the TLS handshake still names the host: SNI and certificate
checks are the host's), so a second DNS answer is never used (no rebinding). It follows no
redirect, bounds the whole fetch in time (a server dripping bytes defeats a per-read timeout)
and in bytes, and never repeats a status, a body or an address to the user: a refusal says
"could not be fetched"; what happened goes to the log.

Verdicts: an address we refuse is the request itself (TERMINAL ``bad_request``: another
backend would be sent the same URL); a fetch that failed is FALLBACK ``bad_request`` as
before (the site may answer another time; nothing was sent, nothing charged).
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiprod.domain import taxonomy
from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.image_uris import ImageUriError, blocked_address, check_image_uri
from aiprod.domain.messages import ErrorClass
from aiprod.exceptions import ProviderError

log = logging.getLogger(__name__)
MAX_IMAGE_BYTES = 20 * 1024 * 1024
CHUNK = 64 * 1024
NOT_FETCHED = "input image could not be fetched"
REFUSED: taxonomy.Verdict = (ErrorClass.TERMINAL, ErrorCode.BAD_REQUEST)
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class _Pinned(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address that names ``host`` in TLS and HTTP."""

    def __init__(self, host: str, port: int, dial: tuple[str, int], **kwargs):
        super().__init__(host, port, **kwargs)
        self._dial = dial

    def connect(self) -> None:
        self.sock = socket.create_connection(self._dial, self.timeout)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


@dataclass(frozen=True)
class ImageFetcher:
    """``allow`` (addresses reachable in spite of the rules) and ``connect_port`` (the port
    actually dialled) are for tests that serve an image from 127.0.0.1; never set in a
    deployment."""

    resolver: Resolver = system_resolver
    allow: frozenset[str] = frozenset()
    ssl_context: ssl.SSLContext | None = None
    max_bytes: int = MAX_IMAGE_BYTES
    clock: Callable[[], float] = field(default=time.monotonic)
    connect_port: int | None = None

    def fetch(self, uri: str, deadline_s: float) -> tuple[bytes, str]:
        """The image's bytes and content type, or a ProviderError (``bad_request``)."""
        started = self.clock()
        try:
            parts = urlsplit(uri)
            host, port = parts.hostname or "", _port(parts)
        except ValueError:
            raise _refused("not a URL", None) from None
        if parts.scheme != "https":
            raise _refused("not https", None)
        if host not in self.allow:
            try:
                check_image_uri(uri, None)
            except ImageUriError as exc:
                raise _refused("refused by its text", exc) from None
        address = self._checked_address(host, port)
        remaining = deadline_s - (self.clock() - started)
        context = self.ssl_context or ssl.create_default_context()
        dial = (address, self.connect_port or port)
        conn = _Pinned(host, port, dial, timeout=max(remaining, 0.01), context=context)
        try:
            return self._get(conn, parts, started, deadline_s)
        except TimeoutError:  # the socket waited out what was left of the deadline
            raise taxonomy_error(taxonomy.BAD_REQUEST, _slow(deadline_s)) from None
        except (OSError, http.client.HTTPException) as exc:
            log.warning("input image not fetched: %s", type(exc).__name__)
            raise taxonomy_error(taxonomy.BAD_REQUEST, NOT_FETCHED) from None
        finally:
            conn.close()

    @property
    def _too_big(self) -> str:
        return f"input image is over {self.max_bytes // 1024} KiB"

    def _checked_address(self, host: str, port: int) -> str:
        """Resolve once; every address must be outside (or allowed); the first is used."""
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            log.warning("input image host not resolved: %s", type(exc).__name__)
            raise taxonomy_error(taxonomy.BAD_REQUEST, NOT_FETCHED) from None
        if not addresses:
            raise _refused("resolves to nothing", None)
        for address in addresses:
            if address in self.allow:
                continue
            try:
                ip = ipaddress.ip_address(address.split("%")[0])
            except ValueError:
                raise _refused("resolves to an unreadable address", None) from None
            if blocked_address(ip):
                raise _refused("resolves to an inside address", None)
        return addresses[0]

    def _get(self, conn: _Pinned, parts, started: float, deadline_s: float):
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers={"Accept": "image/*", "User-Agent": "aiprod"})
        response = conn.getresponse()
        if response.status != 200:  # a redirect included: followed nowhere
            log.warning("input image answered HTTP %d", response.status)
            raise taxonomy_error(taxonomy.BAD_REQUEST, NOT_FETCHED)
        length = response.getheader("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            raise taxonomy_error(taxonomy.BAD_REQUEST, self._too_big)
        data = bytearray()
        while True:
            remaining = deadline_s - (self.clock() - started)
            if remaining <= 0:
                raise taxonomy_error(taxonomy.BAD_REQUEST, _slow(deadline_s))
            conn.sock.settimeout(remaining)
            chunk = response.read1(CHUNK)
            if not chunk:
                break
            data += chunk
            if len(data) > self.max_bytes:
                raise taxonomy_error(taxonomy.BAD_REQUEST, self._too_big)
        mime = (response.getheader("content-type") or "image/png").split(";")[0].strip()
        return bytes(data), mime


def taxonomy_error(verdict: taxonomy.Verdict, message: str) -> ProviderError:
    error_class, code = verdict
    return ProviderError(error_class, code, message)


def _refused(why: str, exc: Exception | None) -> ProviderError:
    log.warning("input image refused: %s%s", why, f" ({exc})" if exc else "")
    return taxonomy_error(REFUSED, NOT_FETCHED)


def _slow(deadline_s: float) -> str:
    return f"input image slower than {deadline_s:.0f} s"


def _port(parts) -> int:
    try:
        return parts.port or 443
    except ValueError:
        return 0  # refused by the text check (a bad port)
