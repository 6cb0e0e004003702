"""``vision``: Google Cloud Vision text detection through the real ``google-cloud-vision`` client.

Cold start (``open``) = client import and creation + authentication + (gRPC) connection set-up,
each in the details; warm latency = one request's round trip. A batched row sends up to 16
photos per request and gives each photo an equal share of the round trip. See docs/vision.md.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from backends.vision.calls import send
from backends.vision.credentials import CredentialSource, find_credentials
from backends.vision.endpoint import Endpoint
from backends.vision.options import VisionOptions
from backends.vision.parse import read_response
from backends.vision.recording import Recorded, Recordings, response_key
from backends.vision.usage import Pacer, Usage
from bench.backend import Backend
from bench.clock import ms_since
from bench.errors import RequestFailed, UsageError
from bench.photos import LoadedPhoto
from bench.results.records import ColdStart, Recognition

INSTALL_HINT = "google-cloud-vision not installed: pip install 'digitbench[vision]'"


def _client_installed() -> bool:
    try:
        return importlib.util.find_spec("google.cloud.vision") is not None
    except ModuleNotFoundError:
        return False


class VisionBackend(Backend):
    """Cloud Vision TEXT_DETECTION (or DOCUMENT_TEXT_DETECTION) over gRPC or REST."""

    name = "vision"
    packages = ("google-cloud-vision", "grpcio", "protobuf")
    Options = VisionOptions
    summary = "Google Cloud Vision text detection (paid API; digits from symbol boxes)"

    def __init__(self, options: VisionOptions | None = None, row: str | None = None) -> None:
        super().__init__(options, row)
        self.batch_size = self.options.batch_size
        self.usage = Usage()
        self._pacer = Pacer(self.options.max_rpm)
        self._client: Any = None
        self._source: CredentialSource | None = None
        self._fatal: str | None = None
        self._http_sent: Callable[[], int] | None = None
        self._rng = random.Random(0)
        self._recordings: Recordings | None = None
        self._replay: Recordings | None = None
        self._recorded = 0

    @classmethod
    def unavailable_reason(cls, options: VisionOptions) -> str | None:
        problem = options.problem()
        if problem:
            return problem
        if options.replay:
            if not Path(options.replay).expanduser().is_dir():
                return f"--vision-replay {options.replay}: no such folder; record one with --vision-record DIR"
            return None
        if not _client_installed():
            return INSTALL_HINT
        try:
            endpoint = Endpoint.parse(options.endpoint)
        except UsageError as exc:
            return str(exc)
        found = find_credentials(options.api_key, options.key_file, options.metadata_server, endpoint.plaintext)
        return found if isinstance(found, str) else None

    @classmethod
    def skip_by_default_reason(cls, options: VisionOptions) -> str | None:
        reason = cls.unavailable_reason(options)
        if reason or options.replay:
            return reason
        return (f"paid API (about ${options.price_per_1000:.2f} per 1,000 photos): name it with --backends vision, "
                "or score recorded responses with --vision-replay DIR")

    @classmethod
    def rows(cls, options: VisionOptions) -> list[tuple[str, Any]]:
        if options.batch_size <= 1:
            return [(cls.name, options)]
        return [(cls.name, replace(options, batch_size=1)), (f"{cls.name}-batch{options.batch_size}", options)]

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.parse(self.options.endpoint)

    def open(self) -> ColdStart:
        if self.options.replay:
            return self._open_replay()
        if not self.options.metadata_server:
            os.environ["NO_GCE_CHECK"] = "true"
        endpoint = self.endpoint
        found = find_credentials(self.options.api_key, self.options.key_file, self.options.metadata_server,
                                 endpoint.plaintext)
        if isinstance(found, str):
            raise RuntimeError(found)
        self._source = found
        if self.options.record:
            self._recordings = Recordings(Path(self.options.record).expanduser() / self.row)
            try:
                self._recordings.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RuntimeError(f"--vision-record {self.options.record}: cannot create {self._recordings.folder} "
                                   f"({exc.strerror or exc}); choose a writable folder") from None
        from backends.vision.client import count_http_attempts, open_client

        opened = open_client(endpoint, self.options.transport, found, self.options.quota_project,
                             self.options.timeout_s)
        self._client = opened.client
        self._http_sent = count_http_attempts(self._client)
        details: dict[str, Any] = dict(opened.steps_ms)
        if details["connect_ms"] is None:
            details["connect"] = "REST connects on the first request: part of first_inference"
        library_ms = details.get("import_ms") or 0.0
        return ColdStart(library_ms=library_ms, init_ms=round(opened.total_ms - library_ms, 3), details=details)

    def _open_replay(self) -> ColdStart:
        start = time.perf_counter_ns()
        self._replay = Recordings(Path(self.options.replay).expanduser() / self.row)
        return ColdStart(init_ms=ms_since(start), details={"replayed": True})

    def redact(self, text: str) -> str:
        """``text`` with the API key and any access token replaced by ``***``."""
        from backends.vision.client import access_token

        secrets = [self._source.api_key if self._source else None, self.options.api_key, access_token(self._client)]
        for secret in secrets:
            if isinstance(secret, str) and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _request(self, loaded: LoadedPhoto):
        from google.cloud import vision

        context = vision.ImageContext(language_hints=list(self.options.language_hints))
        if self.options.feature == "text":
            context.text_detection_params = vision.TextDetectionParams(enable_text_detection_confidence_score=True)
        return vision.AnnotateImageRequest(image=vision.Image(content=loaded.encoded),
                                           features=[vision.Feature(type_=self.options.feature_type)],
                                           image_context=context)

    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[Recognition]:
        if self._replay is not None:
            return [self._replayed(p) for p in photos]
        if self._fatal:
            return [Recognition.failed(f"not sent: an earlier request failed: {self._fatal}") for _ in photos]
        requests = [self._request(p) for p in photos]

        def call():
            return self._client.batch_annotate_images(requests=requests, timeout=self.options.timeout_s,
                                                      retry=None).responses

        self.usage.paced_ms += 1000 * self._pacer.wait()
        before = self._http_sent() if self._http_sent else None
        try:
            answer = send(call, self.options.retry_policy, self.redact, self._rng)
        except RequestFailed as failed:
            self.usage.count(1 + failed.retries, self._sent_since(before))
            self.usage.failed_requests += 1
            if failed.fatal:
                self._fatal = str(failed)
            return [Recognition.failed(str(failed)) for _ in photos]
        self.usage.count(1 + answer.retries, self._sent_since(before))
        responses = [_to_json(r) for r in answer.result]
        if len(responses) != len(photos):
            message = f"malformed response from Cloud Vision: {len(responses)} answers for {len(photos)} photos"
            return [Recognition.failed(message) for _ in photos]
        share = answer.round_trip_ms / len(photos)
        details: dict[str, Any] = {}
        if len(photos) > 1:
            details.update(request_ms=round(answer.round_trip_ms, 3), photos_in_request=len(photos))
        if answer.retries:
            details.update(retries=answer.retries, total_ms_with_retries=round(answer.total_ms, 3))
        results = []
        for loaded, response in zip(photos, responses, strict=True):
            result = self._recognition(loaded, response, share, details)
            self.usage.units += result.error is None
            self.usage.photos.add(loaded.photo.image)
            if self._recordings is not None:
                self._record(loaded, response, share, answer.round_trip_ms, len(photos))
            results.append(result)
        return results

    def _sent_since(self, before: int | None) -> int | None:
        return None if before is None or self._http_sent is None else self._http_sent() - before

    def _recognition(self, loaded: LoadedPhoto, response: dict[str, Any], latency_ms: float,
                     details: dict[str, Any], replayed: bool = False) -> Recognition:
        reading = read_response(response, loaded.width, loaded.height)
        if reading.error:
            return Recognition(error=reading.error, latency_ms=latency_ms, details=dict(details), replayed=replayed)
        return Recognition(reading.digits, reading.text, latency_ms, details={**details, **reading.details},
                           replayed=replayed)

    def _key(self, loaded: LoadedPhoto) -> str:
        return response_key(loaded.encoded, self.options.feature_type, self.options.language_hints)

    def _record(self, loaded: LoadedPhoto, response: dict[str, Any], share_ms: float, request_ms: float,
                batch: int) -> None:
        recorded = Recorded(image=loaded.photo.image, image_sha256=hashlib.sha256(loaded.encoded).hexdigest(),
                            feature=self.options.feature_type, language_hints=list(self.options.language_hints),
                            latency_ms=round(share_ms, 3), request_ms=round(request_ms, 3), batch_size=batch,
                            transport=self.options.transport, endpoint=str(self.endpoint), response=response)
        self._recordings.save(self._key(loaded), recorded)
        self._recorded += 1

    def _replayed(self, loaded: LoadedPhoto) -> Recognition:
        try:
            recorded = self._replay.load(self._key(loaded))
        except ValueError as exc:
            return Recognition.failed(str(exc))
        if recorded is None:
            return Recognition.failed(f"no recorded response for {loaded.photo.image} ({self.options.feature_type}) "
                                      f"in {self._replay.folder}; record it with --vision-record DIR")
        details = {"recorded": recorded.recorded, "recorded_transport": recorded.transport}
        return self._recognition(loaded, recorded.response, recorded.latency_ms, details, replayed=True)

    def close(self) -> None:
        client, self._client = self._client, None
        transport = getattr(client, "transport", None)
        if transport is not None:
            transport.close()

    def describe(self) -> dict[str, Any]:
        from importlib import metadata

        try:
            version = metadata.version("google-cloud-vision")
        except metadata.PackageNotFoundError:
            version = None
        price = self.options.price_per_1000
        measured = self.usage.cost_per_1000_photos(price)
        info: dict[str, Any] = {"feature": self.options.feature_type, "google-cloud-vision": version,
                                "estimated_cost_usd_per_1000": round(price if measured is None else measured, 4),
                                "list_price_usd_per_1000": price, "notes": []}
        if self._replay is not None:
            info.update(replayed_from=str(self._replay.folder))
            info["notes"].append(f"replayed from {self._replay.folder}: no requests sent, latency as recorded")
            return info
        cost = self.usage.cost_usd(price)
        info.update(transport=self.options.transport, endpoint=str(self.endpoint),
                    credentials=self._source.describe() if self._source else None,
                    photos_per_request=self.batch_size, requests=self.usage.requests, retries=self.usage.retries,
                    auth_retries=self.usage.auth_retries,
                    failed_requests=self.usage.failed_requests, units=self.usage.units,
                    photos=len(self.usage.photos), estimated_cost_usd=round(cost, 4),
                    monthly_projection=self.usage.projection(self.options.photos_per_day, price,
                                                             self.options.free_units),
                    paced_ms=round(self.usage.paced_ms, 1), max_rpm=self.options.max_rpm or None)
        notes = info["notes"]
        notes.append(f"{self.usage.requests} requests, {self.usage.retries} retries"
                     + (f" ({self.usage.auth_retries} by google-auth after a 401)" if self.usage.auth_retries else ""))
        if measured is not None:
            notes.append(f"{self.usage.units} units for {len(self.usage.photos)} photos (warm-up and passes "
                         f"included): ${measured:.2f} per 1,000 photos as measured, ${cost:.4f} this run at "
                         f"${price:.2f}/1000 before the free tier")
        notes.append(info["monthly_projection"])
        if self.usage.paced_ms:
            notes.append(f"paced to {self.options.max_rpm:g} requests/min: waited {self.usage.paced_ms / 1000:.1f} s, "
                         "not in latency")
        if self.batch_size > 1:
            notes.append(f"{self.batch_size} photos/request, latency = round trip / photos")
        if self._fatal:
            notes.append(self._fatal)
        if self._recordings is not None:
            notes.append(f"{self._recorded} responses recorded to {self._recordings.folder}")
        return info


def _to_json(response) -> dict[str, Any]:
    from google.cloud import vision
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(vision.AnnotateImageResponse.pb(response))
