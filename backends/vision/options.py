"""The ``vision`` backend's options (``--vision-*`` flags) and what they imply."""
from __future__ import annotations

from dataclasses import dataclass

from backends.vision.calls import RETRYABLE, RetryPolicy
from backends.vision.credentials import API_KEY_ENV
from backends.vision.usage import FREE_UNITS_PER_MONTH, LIST_PRICE_PER_1000
from bench.options import option

FEATURES = {"text": "TEXT_DETECTION", "document": "DOCUMENT_TEXT_DETECTION"}
MAX_BATCH = 16


@dataclass(frozen=True)
class VisionOptions:
    """How to call Cloud Vision, where the responses go, and how to price them."""

    feature: str = option("text", "text = TEXT_DETECTION (photos, signs), document = DOCUMENT_TEXT_DETECTION "
                          "(dense documents)", choices=tuple(FEATURES))
    language_hints: tuple[str, ...] = option((), "language hints (BCP-47, comma separated, e.g. en); "
                                             "empty lets the service detect")
    transport: str = option("grpc", "client transport", choices=("grpc", "rest"))
    endpoint: str = option("", "service URL: https://vision.googleapis.com when empty, a regional one "
                           "(https://eu-vision.googleapis.com), or http://127.0.0.1:PORT (plain text: an emulator)")
    api_key: str = option("", f"API key (or set ${API_KEY_ENV}); never written to results", secret=True)
    key_file: str = option("", "service-account JSON key file")
    quota_project: str = option("", "project billed for quota when using your own gcloud ADC login")
    metadata_server: bool = option(False, "allow credentials from the GCE metadata server (on Google Cloud only)")
    batch_size: int = option(1, f"also measure a row sending up to this many photos per request (2-{MAX_BATCH}), "
                             "named vision-batchN", at_least=1, at_most=MAX_BATCH)
    timeout_s: float = option(30.0, "per-request timeout in seconds", more_than=0, at_most=3600)
    retries: int = option(3, f"retries of one request after {RETRYABLE}, exponential backoff with jitter",
                         at_least=0, at_most=20)
    backoff_s: float = option(1.0, "wait before the first retry in seconds (doubles each retry, at most 32 s)",
                             at_least=0, at_most=32)
    price_per_1000: float = option(LIST_PRICE_PER_1000, "USD per 1,000 units (one photo = one unit) for the "
                                   "cost estimate; list price by default", at_least=0, at_most=1_000_000)
    free_units: int = option(FREE_UNITS_PER_MONTH, "units a month the free tier covers (subtracted from the "
                             "monthly projection)", at_least=0, at_most=10**9)
    photos_per_day: int = option(1000, "photos a day for the monthly cost projection", at_least=0, at_most=10**9)
    max_rpm: float = option(0.0, "pace requests to at most this many a minute (your quota; 0 = no pacing); "
                            "the wait is not part of latency", at_least=0, at_most=1_000_000)
    record: str = option("", "store each raw response in this folder (replay it later with --vision-replay)")
    replay: str = option("", "score responses stored by --vision-record instead of calling the service "
                         "(latency replayed, not measured)")

    @property
    def feature_type(self) -> str:
        return FEATURES[self.feature]

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(retries=max(self.retries, 0), initial_s=self.backoff_s)

    def problem(self) -> str | None:
        """A combination of values that cannot work, as one line with the fix."""
        if self.record and self.replay:
            return "--vision-record and --vision-replay: give one of them"
        if not 1 <= self.batch_size <= MAX_BATCH:
            return f"--vision-batch-size {self.batch_size}: must be 1 to {MAX_BATCH} (the service's limit per request)"
        if self.timeout_s <= 0:
            return f"--vision-timeout-s {self.timeout_s:g}: must be more than 0"
        return None
