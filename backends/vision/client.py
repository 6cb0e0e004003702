"""Builds the real ``google-cloud-vision`` client for an endpoint, transport and credentials."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backends.vision.credentials import CredentialSource, load_credentials
from backends.vision.endpoint import Endpoint
from bench.clock import ms_since


def _plaintext_grpc_transport(endpoint: Endpoint):
    """A gRPC transport factory for ``http://`` endpoints.

    On loopback it uses gRPC local-TCP channel credentials, which carry call credentials (the
    API key or token metadata) exactly as TLS would; other hosts get an insecure channel that
    carries no credentials.
    """
    import grpc
    from google.cloud.vision_v1.services.image_annotator.transports import ImageAnnotatorGrpcTransport

    def build(**kwargs: Any) -> ImageAnnotatorGrpcTransport:
        if endpoint.is_loopback:
            local = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
            return ImageAnnotatorGrpcTransport(ssl_channel_credentials=local, **kwargs)
        kwargs.pop("client_cert_source_for_mtls", None)
        return ImageAnnotatorGrpcTransport(channel=grpc.insecure_channel(endpoint.netloc), **kwargs)

    return build


def make_client(endpoint: Endpoint, transport: str, source: CredentialSource, quota_project: str = ""):
    """An ``ImageAnnotatorClient``; raises google-auth errors for unreadable credentials."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import vision

    options = ClientOptions(api_endpoint=endpoint.for_transport(transport), api_key=source.api_key,
                            quota_project_id=quota_project or None)
    chosen: Any = transport
    if transport == "grpc" and endpoint.plaintext:
        chosen = _plaintext_grpc_transport(endpoint)
    return vision.ImageAnnotatorClient(credentials=load_credentials(source), transport=chosen,
                                       client_options=options)


@dataclass
class OpenedClient:
    """A ready client and the cold-start steps it took, in ms (``None``: the step does not apply)."""

    client: Any
    steps_ms: dict[str, float | None] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return sum(v for v in self.steps_ms.values() if v is not None)


def open_client(endpoint: Endpoint, transport: str, source: CredentialSource, quota_project: str,
                timeout_s: float) -> OpenedClient:
    """Import the library, create the client, authenticate and (gRPC) connect, timing each step.

    Raises ``RuntimeError`` with one line naming the fix.
    """
    start = time.perf_counter_ns()
    import google.cloud.vision  # noqa: F401

    steps: dict[str, float | None] = {"import_ms": round(ms_since(start), 3)}
    try:
        start = time.perf_counter_ns()
        client = make_client(endpoint, transport, source, quota_project)
        steps["client_ms"] = round(ms_since(start), 3)
        start = time.perf_counter_ns()
        steps["auth_ms"] = round(ms_since(start), 3) if authenticate(client) else None
    except Exception as exc:
        message = f"{source.describe()} credentials unusable: {type(exc).__name__}: {exc}"
        raise RuntimeError(message.replace(source.api_key, "***") if source.api_key else message) from None
    start = time.perf_counter_ns()
    try:
        steps["connect_ms"] = round(ms_since(start), 3) if wait_connected(client, timeout_s) else None
    except Exception:
        client.transport.close()
        raise RuntimeError(f"cannot connect to {endpoint} over gRPC within {timeout_s:g} s (--vision-timeout-s); "
                           "check --vision-endpoint, or try --vision-transport rest") from None
    return OpenedClient(client, steps)


def access_token(client) -> str | None:
    """The bearer token the client currently sends, if any (to keep it out of messages)."""
    token = getattr(getattr(getattr(client, "transport", None), "_credentials", None), "token", None)
    return token if isinstance(token, str) else None


def authenticate(client) -> bool:
    """Get a token now (service account: a self-signed JWT; user ADC: a token request), if any.

    Returns whether anything was done, so open() can time authentication apart from the first
    request.
    """
    credentials = getattr(client.transport, "_credentials", None)
    if credentials is None or not hasattr(credentials, "refresh") or getattr(credentials, "valid", True):
        return False
    from google.auth.transport.requests import Request

    credentials.refresh(Request())
    return True


def wait_connected(client, timeout_s: float) -> bool:
    """Open the gRPC connection (TCP, TLS, HTTP/2) before the first request; False for REST."""
    channel = getattr(client.transport, "grpc_channel", None)
    if channel is None:
        return False
    import grpc

    grpc.channel_ready_future(channel).result(timeout=timeout_s)
    return True


def count_http_attempts(client) -> Callable[[], int] | None:
    """For a REST client, a counter of the HTTP requests it really sends (``None`` for gRPC).

    google-auth's session re-sends a request itself after a 401 (refreshing the token first); those
    attempts never reach our retry loop, so they are counted here, at the session's ``send``.
    """
    session = getattr(getattr(client, "transport", None), "_session", None)
    if session is None or not hasattr(session, "send"):
        return None
    sent = [0]
    send = session.send

    def counted(*args: Any, **kwargs: Any):
        sent[0] += 1
        return send(*args, **kwargs)

    session.send = counted
    return lambda: sent[0]
