"""`serve_gateway` and `GatewayConfig`: port 0, clean cancellation, bind failures, settings."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
import pytest

from offchain.errors import ConfigError
from offchain.gateway import EmbeddingsBackend, GatewayConfig, create_app, serve_gateway
from offchain.gateway._server import _listen

from .conftest import FakeBackend, serving


async def test_serve_port_zero_reports_port_and_stops_on_cancel() -> None:
    async with serving(create_app(FakeBackend())) as port:
        assert port > 0
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{port}/healthz")


async def test_serve_busy_port_is_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match="cannot listen"):
            await serve_gateway(create_app(FakeBackend()), host="127.0.0.1", port=taken.getsockname()[1])


async def test_serve_cancel_before_ready_is_clean() -> None:
    task = asyncio.create_task(serve_gateway(create_app(FakeBackend()), host="127.0.0.1", port=0))
    await asyncio.sleep(0)  # let it start binding: a yield, not a wait for time
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()


def test_apps_have_separate_metric_registries() -> None:
    first, second = create_app(FakeBackend()), create_app(FakeBackend())
    assert first.state.gateway_metrics.registry is not second.state.gateway_metrics.registry


def test_fake_backend_satisfies_protocol() -> None:
    assert isinstance(FakeBackend(), EmbeddingsBackend)


def test_config_defaults_and_validation() -> None:
    cfg = GatewayConfig(api_key="k")
    assert cfg.max_body_bytes == 8 * 1024 * 1024
    assert "k" not in repr(cfg).replace("cocoon", "")  # the key never shows in logs
    with pytest.raises(ConfigError):
        GatewayConfig(api_key=" ")
    with pytest.raises(ConfigError):
        GatewayConfig(max_body_bytes=0)


def test_listen_socket_is_tcp_so_accepted_connections_get_nodelay() -> None:
    """asyncio sets TCP_NODELAY only on sockets whose proto is TCP; with proto 0 every response
    waited ~40 ms on a delayed ACK."""
    sock = _listen("127.0.0.1", 0)
    with sock:
        assert sock.proto == socket.IPPROTO_TCP
