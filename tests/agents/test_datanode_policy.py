"""The data node's destination policy and caps (`offchain.datanode._policy`), no sockets:
ports, every address class, checks on the resolved address (no DNS rebinding), the
localnet's allowance for private targets, and the token bucket on a fake clock."""

from __future__ import annotations

import ipaddress

import pytest

from offchain.datanode._policy import Allowed, Caps, Policy, Refused, TokenBucket, address_class
from offchain.protocol.wire import StreamRefusal


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    asked: list[str] = []

    def resolve(host: str) -> list[str]:
        asked.append(host)
        if host not in table:
            raise OSError(f"{host}: name does not resolve")
        return table[host]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


PUBLIC = "93.184.216.34"

FORBIDDEN = [
    pytest.param("10.1.2.3", "private", id="rfc1918-10"),
    pytest.param("172.16.0.1", "private", id="rfc1918-172"),
    pytest.param("192.168.1.1", "private", id="rfc1918-192"),
    pytest.param("127.0.0.1", "loopback", id="loopback"),
    pytest.param("127.8.9.10", "loopback", id="loopback-other"),
    pytest.param("169.254.169.254", "link-local", id="cloud-metadata"),
    pytest.param("100.64.0.1", "non-global", id="cgnat"),
    pytest.param("::1", "loopback", id="v6-loopback"),
    pytest.param("fe80::1", "link-local", id="v6-link-local"),
    pytest.param("fd00::1", "private", id="v6-ula"),
    pytest.param("::ffff:127.0.0.1", "loopback", id="v4-mapped-loopback"),
    pytest.param("::ffff:10.0.0.1", "private", id="v4-mapped-private"),
]
NEVER = [
    pytest.param("0.0.0.0", "unspecified", id="unspecified"),
    pytest.param("::", "unspecified", id="v6-unspecified"),
    pytest.param("224.0.0.1", "multicast", id="multicast"),
    pytest.param("239.255.255.250", "multicast", id="multicast-ssdp"),
    pytest.param("ff02::1", "multicast", id="v6-multicast"),
    pytest.param("240.0.0.1", "reserved", id="reserved"),
    pytest.param("255.255.255.255", "reserved", id="broadcast"),
]


@pytest.mark.parametrize("ip", [PUBLIC, "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(ip: str) -> None:
    assert address_class(ipaddress.ip_address(ip)) == "global"
    assert Policy(resolver=resolver({"site.example": [ip]})).check("site.example", 443) == Allowed((ip,))


@pytest.mark.parametrize(("ip", "kind"), FORBIDDEN + NEVER)
def test_non_public_address_classes_are_refused(ip: str, kind: str) -> None:
    assert address_class(ipaddress.ip_address(ip)) == kind
    policy = Policy(resolver=resolver({}))
    verdict = policy.check(ip, 443)  # an IP literal: not resolved
    assert isinstance(verdict, Refused) and verdict.reason == StreamRefusal.DESTINATION
    assert kind in verdict.message
    assert policy.resolver.asked == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(("ip", "kind"), FORBIDDEN)
def test_private_classes_are_allowed_where_the_chain_allows_them(ip: str, kind: str) -> None:
    policy = Policy(resolver=resolver({"site.test": [ip]}), allow_private=True)
    assert policy.check("site.test", 443) == Allowed((str(ipaddress.ip_address(ip)),))


@pytest.mark.parametrize(("ip", "kind"), NEVER)
def test_multicast_reserved_unspecified_are_refused_even_then(ip: str, kind: str) -> None:
    verdict = Policy(resolver=resolver({"site.test": [ip]}), allow_private=True).check("site.test", 80)
    assert isinstance(verdict, Refused) and verdict.reason == StreamRefusal.DESTINATION


def test_rebinding_a_public_name_resolving_to_a_private_address_is_refused() -> None:
    policy = Policy(resolver=resolver({"www.bank.example": ["127.0.0.1"], "cdn.example": [PUBLIC, "10.0.0.5"]}))
    verdict = policy.check("www.bank.example", 443)
    assert verdict == Refused(StreamRefusal.DESTINATION, "www.bank.example resolves to 127.0.0.1 (loopback)")
    mixed = policy.check("cdn.example", 443)  # one bad answer among good ones: refused outright
    assert isinstance(mixed, Refused) and mixed.reason == StreamRefusal.DESTINATION and "10.0.0.5" in mixed.message


def test_the_allowed_addresses_are_exactly_those_checked_deduplicated_in_order() -> None:
    policy = Policy(resolver=resolver({"site.example": ["8.8.4.4", PUBLIC, "8.8.4.4", "2001:4860::8888"]}))
    assert policy.check("site.example", 80) == Allowed(("8.8.4.4", PUBLIC, "2001:4860::8888"))


@pytest.mark.parametrize("port", [22, 25, 8080, 8443, 6379, 1, 65535])
def test_ports_other_than_80_and_443_are_refused_before_resolving(port: int) -> None:
    policy = Policy(resolver=resolver({"site.example": [PUBLIC]}), allow_private=True)
    verdict = policy.check("site.example", port)
    assert isinstance(verdict, Refused) and verdict.reason == StreamRefusal.PORT
    assert policy.resolver.asked == []  # type: ignore[attr-defined]
    assert Policy(resolver=resolver({"site.example": [PUBLIC]}), ports={port}).check("site.example", port) == Allowed(
        (PUBLIC,)
    )


@pytest.mark.parametrize(
    ("host", "answers"),
    [
        pytest.param("nowhere.example", None, id="nxdomain"),
        pytest.param("empty.example", [], id="no-address"),
        pytest.param("weird.example", ["not-an-ip"], id="garbage-answer"),
        pytest.param("-bad-.example", None, id="bad-label"),
        pytest.param("a..b", None, id="empty-label"),
        pytest.param("x" * 64 + ".example", None, id="label-too-long"),
        pytest.param("bad host", None, id="space"),
    ],
)
def test_names_that_do_not_resolve_are_refused(host: str, answers: list[str] | None) -> None:
    table = {} if answers is None else {host: answers}
    verdict = Policy(resolver=resolver(table)).check(host, 443)
    assert isinstance(verdict, Refused) and verdict.reason == StreamRefusal.UNRESOLVED


def test_bracketed_ipv6_literal_is_judged_as_the_address() -> None:
    assert Policy(resolver=resolver({})).check("[2606:4700:4700::1111]", 443) == Allowed(("2606:4700:4700::1111",))
    verdict = Policy(resolver=resolver({})).check("[::1]", 443)
    assert isinstance(verdict, Refused) and verdict.reason == StreamRefusal.DESTINATION


def test_caps_defaults_suit_a_home_connection_and_are_validated() -> None:
    caps = Caps()
    assert (caps.max_streams, caps.max_stream_bytes, caps.bytes_per_second) == (16, 16 << 20, 2 << 20)
    assert Caps(max_streams=2, max_stream_bytes=1000, bytes_per_second=10, burst_bytes=10).max_streams == 2
    with pytest.raises(ValueError, match="max_streams"):
        Caps(max_streams=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_grants_the_burst_then_shapes_to_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1000, burst=500, clock=clock)
    assert bucket.take(300) == 0.0
    assert bucket.take(200) == 0.0  # the burst, spent
    assert bucket.take(100) == pytest.approx(0.1)  # in debt: wait until it is paid
    assert bucket.take(400) == pytest.approx(0.5)  # queues behind the previous taker
    clock.now += 0.5
    assert bucket.available() == pytest.approx(0.0)
    clock.now += 0.2
    assert bucket.take(100) == 0.0
    clock.now += 60  # idle: refills only up to the burst
    assert bucket.available() == pytest.approx(500)


def test_token_bucket_long_run_rate_is_the_configured_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2 << 20, burst=64 << 10, clock=clock)
    start = clock.now
    for _ in range(1000):  # 1000 reads of 16 KiB, each waiting what it is told
        clock.now += bucket.take(16 << 10)
    elapsed = clock.now - start
    assert (1000 * (16 << 10) - (64 << 10)) / elapsed == pytest.approx(2 << 20, rel=1e-6)


def test_token_bucket_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=1).take(-1)


def test_the_agent_config_maps_to_policy_and_caps() -> None:
    from offchain.agentkit import AgentConfig
    from offchain.datanode._main import datanode_caps, datanode_policy
    from offchain.errors import ConfigError

    local = datanode_policy(AgentConfig(network="localnet"))
    assert local.allow_private and local.ports == {80, 443}
    assert not datanode_policy(AgentConfig(network="testnet")).allow_private
    assert not datanode_policy(AgentConfig(network="localnet", allow_private="false")).allow_private
    assert datanode_policy(AgentConfig(ports=[443])).ports == {443}
    caps = datanode_caps(AgentConfig(max_streams=4, bytes_per_second=1000))
    assert (caps.max_streams, caps.bytes_per_second, caps.burst_bytes) == (4, 1000, 1000)
    with pytest.raises(ConfigError):
        datanode_policy(AgentConfig(ports=["https"]))
    with pytest.raises(ConfigError):
        datanode_caps(AgentConfig(max_streams=0))
