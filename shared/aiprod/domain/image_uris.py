"""Which input image URIs a job may name, decided from the text alone (pure: no DNS here).

An ``https://`` image is fetched by a provider or by us (Veo): a URI naming a loopback,
private, link-local, shared (CGNAT), unique-local, multicast or metadata address would make
that fetch reach inside a network, so such hosts are refused at validation, in every spelling
a URL parser or ``inet_aton`` accepts (bracketed IPv6, IPv4-mapped IPv6, decimal, octal and
hex IPv4). Names are judged by their text only; what a name resolves to is checked again by
whoever fetches (``adapters.image_fetch``), since DNS can say anything.

A ``gs://`` image is read with the render service accounts' own rights, so only buckets the
operator listed (``AIPROD_IMAGE_BUCKETS``) may be named.

Messages never repeat the URI (they reach logs; the URI is user data).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

BLOCKED_NAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "metadata.goog"})
# Names that by convention resolve inside a network (GCE's own, mDNS, RFC 6761/8375).
BLOCKED_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa", ".goog")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_BUCKET = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,220}[a-z0-9])?$")
_NUMBER = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
# Translations that embed an IPv4 address in IPv6 (NAT64 and its local-use prefix).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class ImageUriError(ValueError):
    """An image URI this service will not read (the message names the rule, not the URI)."""


def blocked_address(ip: IpAddress) -> bool:
    """True for an address a fetch must never reach: anything not globally routable, and
    IPv6 forms that carry such an IPv4 address inside them."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or (ip.sixtofour if ip.sixtofour else None)
        if ip.teredo:
            inner = ip.teredo[1]
        if any(ip in net for net in _NAT64):
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None and blocked_address(inner):
            return True
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)  # fec0::/10: global
    )


def loose_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host means to ``inet_aton`` and WHATWG URL parsers: 1 to 4 parts,
    each decimal, octal (leading 0) or hex (0x), the last filling the remaining bytes. None
    when the host is not numeric; ImageUriError when numeric but out of range."""
    parts = host.split(".")
    if not parts or not all(_NUMBER.match(p) for p in parts) or len(parts) > 4:
        return None
    values = []
    for part in parts:
        if part.startswith("0x"):
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not set(part) <= set("01234567"):
                raise ImageUriError("image_uri host is not a valid address")
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise ImageUriError("image_uri host is not a valid address")
    number = sum(v << (8 * (3 - i)) for i, v in enumerate(head)) + last
    return ipaddress.IPv4Address(number)


def check_https_host(host: str) -> None:
    """Refuse a host that is, or spells, an inside address or name (ImageUriError)."""
    if not host or not host.isascii():
        raise ImageUriError("image_uri host must be an ASCII name (use punycode)")
    host = host.lower().rstrip(".")
    if ":" in host:  # urlsplit strips the brackets of an IPv6 literal
        try:
            ip: IpAddress | None = ipaddress.IPv6Address(host)
        except ValueError:
            raise ImageUriError("image_uri host is not a valid address") from None
    else:
        ip = loose_ipv4(host)
        if ip is not None and str(ip) != host:
            raise ImageUriError("image_uri host is an IPv4 address in a non-canonical form")
    if ip is not None:
        if blocked_address(ip):
            raise ImageUriError("image_uri host is a private, loopback or reserved address")
        return
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ImageUriError("image_uri host is not a valid DNS name")
    if host in BLOCKED_NAMES or host.endswith(BLOCKED_SUFFIXES) or len(labels) < 2:
        raise ImageUriError("image_uri host is an internal name")
    if _NUMBER.match(labels[-1]):
        raise ImageUriError("image_uri host is not a valid address")


def check_image_uri(value: str, buckets: frozenset[str] | None) -> None:
    """Refuse an image URI this service will not read. ``buckets``: the ``gs://`` buckets
    allowed (None: not known here, checked where the settings are)."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in value):
        raise ImageUriError("image_uri has whitespace, control characters or backslashes")
    if value.startswith("gs://"):
        bucket, _, name = value.removeprefix("gs://").partition("/")
        if not _BUCKET.match(bucket) or not name:
            raise ImageUriError("image_uri is not gs://<bucket>/<object>")
        if buckets is not None and bucket not in buckets:
            raise ImageUriError("image_uri bucket is not one images may be read from")
        return
    if not value.startswith("https://"):
        raise ImageUriError("image_uri must start with one of https://, gs://")
    try:
        parts = urlsplit(value)
        hostname = parts.hostname or ""
    except ValueError:  # its own message repeats the host: the rule is said instead
        raise ImageUriError("image_uri host is not a valid address") from None
    if "[" in parts.netloc and ":" not in hostname:  # [v1.x]: no IPv6 literal, no name
        raise ImageUriError("image_uri host is not a valid address")
    if "@" in parts.netloc:
        raise ImageUriError("image_uri must not carry user information (user@host)")
    try:
        port = parts.port
    except ValueError:
        raise ImageUriError("image_uri port is not valid") from None
    if port not in (None, 443):
        raise ImageUriError("image_uri must use the https port (443)")
    if "%" in parts.netloc:
        raise ImageUriError("image_uri host must not be percent-encoded")
    check_https_host(hostname)


def bucket_names(raw: str) -> frozenset[str]:
    """``AIPROD_IMAGE_BUCKETS``: names split on ``,``, ``;`` or spaces (``;`` survives the
    comma-separated lists of ``gcloud --set-env-vars`` and ``--substitutions``)."""
    names = (n.removeprefix("gs://").strip("/") for n in re.split(r"[,;\s]+", raw))
    return frozenset(names) - {""}
