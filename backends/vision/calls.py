"""One batch request to Cloud Vision: bounded retries with backoff, and errors as one line.

Retried (each retry counted): 429, 500, 503 and deadline/connection failures. Not retried: 401
and 403 (credentials, API not enabled, billing: fatal for the run), 400 and malformed bodies.
"""
from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.errors import RequestFailed

RETRYABLE = "429, 500, 503, deadline exceeded, connection failure"
_REST_PREFIX = re.compile(r"^[A-Z]+ \S+: ")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt ``n`` waits ``min(max, initial * 2**n)`` x U(0.5, 1)."""

    retries: int = 3
    initial_s: float = 1.0
    maximum_s: float = 32.0

    def delay_s(self, retry: int, rng: random.Random) -> float:
        return min(self.maximum_s, self.initial_s * 2 ** retry) * rng.uniform(0.5, 1.0)


@dataclass(frozen=True)
class Failure:
    """A request that failed: one line (secrets removed), whether to retry, whether it ends the run."""

    message: str
    retryable: bool = False
    fatal: bool = False


@dataclass
class Answer:
    """What the successful attempt returned, its round trip, and the time including retries."""

    result: Any
    round_trip_ms: float
    total_ms: float
    retries: int


def classify(exc: BaseException) -> Failure:
    """Turn a client exception into a :class:`Failure` (message not yet redacted)."""
    from google.api_core import exceptions as gexc
    from google.protobuf.json_format import ParseError

    code = getattr(exc, "code", None)
    status = code if isinstance(code, int) else getattr(exc, "grpc_status_code", None)
    message = getattr(exc, "message", None) or str(exc)
    message = _REST_PREFIX.sub("", " ".join(str(message).split())) or type(exc).__name__
    if isinstance(exc, gexc.Unauthenticated):
        return Failure(f"Cloud Vision rejected the credentials (401 UNAUTHENTICATED): {message}; check the API key "
                       "or key file", fatal=True)
    if isinstance(exc, gexc.Forbidden):
        return Failure(f"Cloud Vision refused the request (403 PERMISSION_DENIED): {message}; enable the Vision API "
                       "and billing for the credentials' project, or check the key's API restrictions", fatal=True)
    if isinstance(exc, ParseError) or (isinstance(exc, gexc.InternalServerError) and "deserializ" in message):
        return Failure(f"malformed response from Cloud Vision ({message}); not retried")
    if isinstance(exc, (gexc.TooManyRequests, gexc.InternalServerError, gexc.ServiceUnavailable,
                        gexc.DeadlineExceeded, gexc.GatewayTimeout)):
        return Failure(f"Cloud Vision {status} {type(exc).__name__}: {message}", retryable=True)
    if _is_network_error(exc):
        return Failure(f"Cloud Vision unreachable or too slow ({type(exc).__name__}: {message})", retryable=True)
    if isinstance(exc, gexc.GoogleAPICallError):
        return Failure(f"Cloud Vision {status} {type(exc).__name__}: {message}")
    return Failure(f"{type(exc).__name__}: {message}")


def _is_network_error(exc: BaseException) -> bool:
    try:
        import requests
    except ImportError:
        return False
    return isinstance(exc, (requests.Timeout, requests.ConnectionError))


def send(call: Callable[[], Any], policy: RetryPolicy, redact: Callable[[str], str],
         rng: random.Random, sleep: Callable[[float], None] = time.sleep) -> Answer:
    """Run ``call`` (one request returning per-image response JSON), retrying as the policy allows."""
    start = time.perf_counter_ns()
    retries = 0
    while True:
        attempt = time.perf_counter_ns()
        try:
            result = call()
        except Exception as exc:
            failure = classify(exc)
            failure = Failure(redact(failure.message), failure.retryable, failure.fatal)
            if not failure.retryable or retries >= policy.retries:
                if failure.retryable:
                    failure = Failure(f"{failure.message} (gave up after {retries} retries)", True)
                raise RequestFailed(failure.message, fatal=failure.fatal, retries=retries,
                                    total_ms=(time.perf_counter_ns() - start) / 1e6) from None
            sleep(policy.delay_s(retries, rng))
            retries += 1
            continue
        now = time.perf_counter_ns()
        return Answer(result, (now - attempt) / 1e6, (now - start) / 1e6, retries)
