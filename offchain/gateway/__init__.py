"""The OpenAI-compatible HTTP gateway in front of the client SDK.

Any OpenAI client (the official `openai` package with `base_url=http://host:port/v1`) can
ask the mesh for embeddings; the gateway turns each request into one `embed()` call of the
SDK, which pays for it through the developer's payment channel, and reports the nanoTON
charged in the `x-cocoon-cost-nanoton` header.

    app = create_app(client, GatewayConfig(api_key=None))
    await serve_gateway(app, host="127.0.0.1", port=8080)
"""

from __future__ import annotations

from ._app import create_app
from ._backend import EmbeddingsBackend
from ._config import GatewayConfig
from ._server import serve_gateway

__all__ = ["EmbeddingsBackend", "GatewayConfig", "create_app", "serve_gateway"]
