"""Where a webhook may go: the target rules of every webhook (report webhooks
now, partner webhooks later), checked when a URL is saved and again before each
delivery, and the POST that reaches only the address that was checked.

A webhook URL is accepted when
- it is https:// with a host, no user name or password, and a port 1..65535;
- its host is not a local or cloud-metadata name (localhost, *.localhost,
  *.local, *.internal, *.home.arpa, metadata.google.internal, instance-data, ...);
- its host resolves (at most RESOLVE_TIMEOUT_SECONDS, off the event loop), and
  every address it resolves to, IPv4 and IPv6, is a public one: `is_global` and
  none of loopback, private, link-local, site-local, shared (100.64.0.0/10),
  multicast, unspecified or reserved. An IPv4 address carried in IPv6 (mapped
  ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4, Teredo) is judged by that IPv4
  address. Odd spellings of addresses (2130706433, 0x7f.1, 127.1) are what the
  resolver makes of them, so they are judged by the address too.
Hosts in PARTNERHUB_WEBHOOK_ALLOW_HOSTS (the name or address as written in the
URL) skip the host and address rules and may use plain http (local receivers).

A delivery checks its URL again, then connects to the checked address (not to
the name again: the Host header, TLS SNI and the certificate check still use the
name), follows no redirect, reads at most MAX_ANSWER_BYTES of the answer and
gives up after SEND_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5.0
SEND_TIMEOUT_SECONDS = 10.0
MAX_ANSWER_BYTES = 64 * 1024

# Names of cloud metadata services and of this machine; refused whatever they resolve to.
INTERNAL_NAMES = frozenset(
    {
        "localhost",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.packet.net",
        "metadata.platformequinix.com",
        "metadata.tencentyun.com",
        "kubernetes.default",
        "kubernetes.default.svc",
    }
)
INTERNAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".svc")

PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")
NAT64_NETWORK = ipaddress.ip_network("64:ff9b::/96")
HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


class TargetRefused(Exception):
    """A URL webhooks may not go to; the message completes "The webhook URL ..."."""


@dataclass(frozen=True)
class WebhookTarget:
    """A checked URL and the addresses its host resolved to (in the resolver's order)."""

    url: httpx.URL
    addresses: tuple[IPAddress, ...]


def _inside(
    address: IPAddress, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    return any(address.version == n.version and address in n for n in networks)


_KINDS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("an unspecified address", lambda a: a.is_unspecified),
    ("a loopback address", lambda a: a.is_loopback),
    ("a link-local address", lambda a: a.is_link_local),
    ("a site-local address", lambda a: a.version == 6 and a.is_site_local),
    ("a multicast address", lambda a: a.is_multicast),
    ("a shared (carrier-grade NAT) address", lambda a: _inside(a, (SHARED_NETWORK,))),
    ("a private address", lambda a: _inside(a, PRIVATE_NETWORKS)),
    (
        "a reserved or special-purpose address",
        lambda a: a.is_private or a.is_reserved or not a.is_global,
    ),
)


def _carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_NETWORK:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return address.teredo[1] if address.teredo else None


def address_problem(address: IPAddress) -> str | None:
    """What kind of address this is when webhooks may not go to it ("a loopback
    address"); None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = _carried_ipv4(address)
        if carried is not None:
            problem = address_problem(carried)
            if problem is not None or address.ipv4_mapped or address in NAT64_NETWORK:
                return problem  # mapped and NAT64 addresses are the IPv4 address
    for kind, applies in _KINDS:
        if applies(address):
            return kind
    return None


def addresses_problem(addresses: tuple[IPAddress, ...]) -> str | None:
    """Why a host with these addresses may not receive webhooks, e.g. "resolves to
    a private address (10.0.0.1)"; None when every one is public."""
    for address in addresses:
        kind = address_problem(address)
        if kind is not None:
            return f"resolves to {kind} ({_spelled(address)})"
    return None


def _spelled(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def normal_host(host: str) -> str:
    """A host as the allow-list compares it: lower case, no trailing dot, an IP
    address in its standard spelling."""
    host = host.lower().strip("[]").rstrip(".")
    address = _literal(host)
    return str(address) if address is not None else host


def internal_name(name: str) -> bool:
    name = name.lower().rstrip(".")
    return name in INTERNAL_NAMES or name.endswith(INTERNAL_SUFFIXES)


def parse_target(url: str, allowed_hosts: frozenset[str]) -> tuple[httpx.URL, bool]:
    """The URL as it will be sent, and whether its host is allowed without the
    address rules; TargetRefused for a URL that is wrong whatever its host resolves to."""
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii").lower()
    except (httpx.InvalidURL, UnicodeError):
        raise TargetRefused("is not a valid URL") from None
    if parsed.scheme not in ("https", "http") or not host:
        raise TargetRefused("is not an https:// URL")
    if parsed.userinfo:
        raise TargetRefused("must not carry a user name or password")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise TargetRefused("has a port outside 1 to 65535")
    allowed = normal_host(host) in {normal_host(h) for h in allowed_hosts}
    if parsed.scheme == "http" and not allowed:
        raise TargetRefused("must use https://")
    if allowed:
        return parsed, True
    if _literal(host) is None:
        if not HOST_NAME.fullmatch(host):
            raise TargetRefused(f"has an invalid host name ({host})")
        if internal_name(host):
            raise TargetRefused(f"names an internal host ({host})")
    return parsed, False


async def resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every address of a host name (or the address an IP literal is), without
    blocking the event loop, within RESOLVE_TIMEOUT_SECONDS."""
    address = _literal(host)
    if address is not None:
        return (address,)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
    except TimeoutError:
        raise TargetRefused(
            f"cannot be resolved ({host}: no answer in {RESOLVE_TIMEOUT_SECONDS:g} s)"
        ) from None
    except (OSError, UnicodeError):
        raise TargetRefused(f"cannot be resolved ({host})") from None
    found = tuple(dict.fromkeys(ipaddress.ip_address(str(info[4][0])) for info in infos))
    if not found:
        raise TargetRefused(f"cannot be resolved ({host})")
    return found


async def check_target(url: str, allowed_hosts: frozenset[str]) -> WebhookTarget:
    """The target of a webhook URL, checked against every rule; TargetRefused
    says why a URL may not be used."""
    parsed, allowed = parse_target(url, allowed_hosts)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await resolve(host, port)
    problem = None if allowed else addresses_problem(addresses)
    if problem is not None:
        if _literal(host) is not None:
            problem = problem.replace("resolves to", "points to", 1)
        raise TargetRefused(problem)
    return WebhookTarget(parsed, addresses)


async def send(
    target: WebhookTarget,
    content: bytes,
    headers: Mapping[str, str],
    *,
    verify: ssl.SSLContext | bool = True,
    seconds: float = SEND_TIMEOUT_SECONDS,
) -> int:
    """POST to the target's checked addresses (the next one when one refuses the
    connection) and return the status code. Redirects are not followed, at most
    MAX_ANSWER_BYTES of the answer are read, and TimeoutError is raised when it
    all takes longer than `seconds`. `verify`: the TLS trust (default: the usual CAs)."""
    host = target.url.raw_host.decode("ascii")
    extensions: dict[str, object] = {}
    if target.url.scheme == "https" and _literal(host) is None:
        extensions["sni_hostname"] = host.rstrip(".")
    pinned_headers = {**headers, "Host": target.url.netloc.decode("ascii")}
    timeout = httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT_SECONDS))
    async with (
        asyncio.timeout(seconds),
        httpx.AsyncClient(
            verify=verify, timeout=timeout, follow_redirects=False, trust_env=False
        ) as client,
    ):
        for index, address in enumerate(target.addresses):
            request = client.build_request(
                "POST",
                target.url.copy_with(host=str(address)),
                content=content,
                headers=pinned_headers,
                extensions=extensions,
            )
            try:
                response = await client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if index == len(target.addresses) - 1:
                    raise
                continue
            try:
                await _read_at_most(response, MAX_ANSWER_BYTES)
            finally:
                await response.aclose()
            return response.status_code
    raise TargetRefused("has no address to send to")  # check_target never yields none


async def _read_at_most(response: httpx.Response, limit: int) -> None:
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= limit:
            return
