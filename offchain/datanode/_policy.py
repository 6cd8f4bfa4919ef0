"""What a data node agrees to relay, and how much (sans-I/O: no sockets, no clock of its own).

    policy = Policy(resolver=my_resolver, allow_private=False)
    verdict = policy.check("example.org", 443)      # Allowed(addresses) | Refused(reason, message)

- **Ports**: 80 and 443 only (`ports` to change it, e.g. for a test web on another port).
- **Destinations** are checked on the *resolved* addresses, and the node then connects to one
  of exactly those addresses (it never resolves twice): a name that resolves to a private
  address is refused however public the name looks (no DNS rebinding). A name with any
  forbidden address among its answers is refused outright. Private, loopback, link-local and
  other non-global unicast addresses (CGNAT 100.64/10, ULA fc00::/7, ...) are allowed only
  with `allow_private` (the chain's params: the localnet allows them for its test sites);
  multicast, reserved and unspecified addresses never are. IPv4-mapped IPv6 addresses are
  judged as the IPv4 address they carry.
- **Caps** (`Caps`): concurrent streams, bytes per stream (both directions together) and
  bandwidth, a `TokenBucket` over an injected clock shared by every stream of the node.

The resolver is injected: a callable `host -> list of IP strings` (`system_resolver`, the
default, asks the OS; it blocks, so the relay calls it in a thread).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from offchain.protocol.wire import StreamRefusal

__all__ = [
    "DEFAULT_PORTS",
    "Allowed",
    "Caps",
    "Policy",
    "Refused",
    "Resolver",
    "StreamRefusal",
    "TokenBucket",
    "address_class",
    "system_resolver",
]

Resolver = Callable[[str], Sequence[str]]
"""host name -> the IP addresses it resolves to (strings); [] or OSError when it does not."""

DEFAULT_PORTS = frozenset({80, 443})

MiB = 1024 * 1024


@dataclass(frozen=True)
class Caps:
    """A node's limits; the defaults suit a home connection."""

    max_streams: int = 16
    max_stream_bytes: int = 16 * MiB  # both directions of one stream together
    bytes_per_second: int = 2 * MiB  # the whole node, both directions
    burst_bytes: int = 2 * MiB  # what the bucket holds when idle

    def __post_init__(self) -> None:
        for name in ("max_streams", "max_stream_bytes", "bytes_per_second", "burst_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"Caps.{name} must be at least 1")


@dataclass(frozen=True)
class Allowed:
    """The stream may open: connect to one of `addresses` (all checked), in order."""

    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Refused:
    """The stream may not open: what a `StreamRefused` frame carries."""

    reason: StreamRefusal
    message: str


def system_resolver(host: str) -> list[str]:
    """The OS resolver (blocking): every distinct address `host` has for TCP."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for info in infos:
        seen.setdefault(str(info[4][0]).split("%", 1)[0], None)  # drop an IPv6 scope id
    return list(seen)


_NEVER = ("unspecified", "multicast", "reserved")
"""Address classes refused even where private ones are allowed: never a web site."""


def address_class(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """"global", or the first class that keeps `ip` off the public internet: "unspecified",
    "loopback", "link-local", "multicast", "reserved", "private" or "non-global"."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-global"  # e.g. 100.64.0.0/10 (carrier-grade NAT), 192.0.0.0/24
    return "global"


class Policy:
    """Which destinations a node opens streams to (see the module doc)."""

    def __init__(
        self,
        *,
        resolver: Resolver = system_resolver,
        allow_private: bool = False,
        ports: frozenset[int] | set[int] = DEFAULT_PORTS,
    ) -> None:
        self.resolver = resolver
        self.allow_private = allow_private
        self.ports = frozenset(ports)

    def check(self, host: str, port: int) -> Allowed | Refused:
        """Resolve `host` (unless it is an IP literal) and judge every address it has."""
        if port not in self.ports:
            return Refused(StreamRefusal.PORT, f"port {port} is not relayed (only {sorted(self.ports)})")
        literal = _ip(host)
        if literal is not None:
            return self.check_addresses(host, [str(literal)])
        if not _is_hostname(host):
            return Refused(StreamRefusal.UNRESOLVED, f"{host!r} is neither a host name nor an IP address")
        try:
            answers = list(self.resolver(host))
        except (OSError, UnicodeError) as err:
            return Refused(StreamRefusal.UNRESOLVED, f"{host} does not resolve: {err}")
        return self.check_addresses(host, answers)

    def check_addresses(self, host: str, answers: Sequence[str]) -> Allowed | Refused:
        """Judge the addresses `host` resolved to: all must be allowed (the pure half of `check`)."""
        addresses: list[str] = []
        for answer in answers:
            ip = _ip(answer)
            if ip is None:
                return Refused(StreamRefusal.UNRESOLVED, f"{host} resolved to {answer!r}, not an IP address")
            kind = address_class(ip)
            if kind in _NEVER or (kind != "global" and not self.allow_private):
                return Refused(StreamRefusal.DESTINATION, f"{host} resolves to {ip} ({kind})")
            if str(ip) not in addresses:
                addresses.append(str(ip))
        if not addresses:
            return Refused(StreamRefusal.UNRESOLVED, f"{host} has no address")
        return Allowed(tuple(addresses))


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_hostname(host: str) -> bool:
    name = host[:-1] if host.endswith(".") else host
    if not 1 <= len(name) <= 253:
        return False
    for label in name.split("."):
        if not 1 <= len(label) <= 63 or label.startswith("-") or label.endswith("-"):
            return False
        if not all(c.isascii() and (c.isalnum() or c in "-_") for c in label):
            return False
    return True


class TokenBucket:
    """Bandwidth shaping: `rate` bytes a second, up to `burst` saved while idle.

    `take(n)` always grants `n` bytes and returns how long to wait (seconds) before using
    them; the bucket may go into debt, so concurrent takers queue up behind each other and
    the long-run rate is exactly `rate`. `clock` is injected (monotonic seconds)."""

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self.tokens = float(burst)
        self._at = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, n: int) -> float:
        """Take `n` bytes; the seconds to wait before sending them (0.0 when within budget)."""
        if n < 0:
            raise ValueError("byte count is non-negative")
        self._refill()
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def available(self) -> float:
        """Bytes that could go now without waiting (negative while in debt)."""
        self._refill()
        return self.tokens
