"""A local Cloud Vision server on 127.0.0.1 that speaks the service's wire protocols.

It answers ``POST /v1/images:annotate`` (REST JSON, the format the real client sends) and the
gRPC method ``google.cloud.vision.v1.ImageAnnotator/BatchAnnotateImages`` (over local-TCP
channel credentials, so the client's API key or token travels in the metadata as it would over
TLS). Tests and users run the real ``google-cloud-vision`` client against it::

    python -m backends.vision.emulator --dataset synthetic
    bench run --backends vision --vision-endpoint http://127.0.0.1:<grpc port>
    bench run --backends vision --vision-transport rest --vision-endpoint http://127.0.0.1:<rest port>

Each image is answered from :attr:`VisionEmulator.answers` (SHA-256 of the image bytes ->
response JSON); an unknown image gets an empty response (no text). Request-level faults queued
in :attr:`VisionEmulator.faults` are served one per request, on either transport.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
SERVICE = "google.cloud.vision.v1.ImageAnnotator"
METHOD = "BatchAnnotateImages"
REST_PATH = "/v1/images:annotate"
MAX_IMAGES = 16

GRPC_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
              429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
"""HTTP status -> the gRPC status the service uses for it (google.rpc.Code names)."""


@dataclass(frozen=True)
class Fault:
    """A request-level behaviour: an HTTP error status, a malformed body, or a late answer."""

    status: int = 200
    message: str = ""
    malformed: bool = False
    delay_s: float = 0.0


@dataclass
class Received:
    """One request as the emulator saw it: transport, lower-case headers/metadata and JSON body."""

    transport: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def images(self) -> int:
        return len(self.body.get("requests", []))


@dataclass
class Outcome:
    """What to send back: a status (200 = the ``response`` JSON), or a malformed body."""

    status: int = 200
    message: str = ""
    response: dict[str, Any] = field(default_factory=dict)
    malformed: bool = False


def image_key(content: bytes) -> str:
    """The key of an image in :attr:`VisionEmulator.answers`."""
    return hashlib.sha256(content).hexdigest()


class VisionEmulator:
    """REST and gRPC Vision endpoints on 127.0.0.1; a context manager that always stops them."""

    def __init__(self, answers: dict[str, dict[str, Any]] | None = None, *, api_key: str | None = None,
                 latency_s: float = 0.0, rest_port: int = 0, grpc_port: int = 0) -> None:
        self.answers: dict[str, dict[str, Any]] = dict(answers or {})
        self.faults: deque[Fault] = deque()
        self.received: list[Received] = []
        self.api_key = api_key
        self.latency_s = latency_s
        self.host = HOST
        self._ports = (rest_port, grpc_port)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc = None
        self.rest_port = 0
        self.grpc_port = 0

    @property
    def rest_endpoint(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{self.host}:{self.grpc_port}"

    def endpoint(self, transport: str) -> str:
        """The ``--vision-endpoint`` value for ``transport`` (``rest`` or ``grpc``)."""
        return self.rest_endpoint if transport == "rest" else self.grpc_endpoint

    def add_answer(self, content: bytes, response: dict[str, Any]) -> None:
        """Answer ``response`` (JSON of one AnnotateImageResponse) whenever this image is sent."""
        self.answers[image_key(content)] = response

    def start(self) -> VisionEmulator:
        self._stopping.clear()
        self._http = ThreadingHTTPServer((self.host, self._ports[0]), _handler_for(self))
        self._http.daemon_threads = True
        self.rest_port = self._http.server_address[1]
        self._http_thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                             name="vision-emulator-rest", daemon=True)
        self._http_thread.start()
        try:
            self._grpc, self.grpc_port = _start_grpc(self, self._ports[1])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers; late answers in progress are abandoned. Safe to call twice."""
        self._stopping.set()
        if self._grpc is not None:
            self._grpc.stop(grace=0).wait(5)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(5)
            self._http_thread = None

    def __enter__(self) -> VisionEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, received: Received) -> Outcome:
        """Answer one batch request, the same way for both transports."""
        with self._lock:
            self.received.append(received)
            fault = self.faults.popleft() if self.faults else Fault()
        delay = fault.delay_s + self.latency_s
        if delay and self._stopping.wait(delay):
            return Outcome(503, "emulator stopping")
        if fault.malformed:
            return Outcome(malformed=True)
        if fault.status != 200:
            return Outcome(fault.status, fault.message or f"emulated {fault.status} {GRPC_CODES.get(fault.status, '')}")
        if self.api_key is not None and not self._authorized(received.headers):
            return Outcome(403, "The request is missing a valid API key.")
        requests = received.body.get("requests", [])
        if not requests:
            return Outcome(400, "No requests specified.")
        if len(requests) > MAX_IMAGES:
            return Outcome(400, f"At most {MAX_IMAGES} images are allowed per request.")
        return Outcome(response={"responses": [self._answer(r) for r in requests]})

    def _authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("x-goog-api-key") == self.api_key

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        content = request.get("image", {}).get("content")
        if not content:
            return {"error": {"code": 3, "message": "image.content is empty; this emulator reads inline content only"}}
        return self.answers.get(image_key(base64.b64decode(content)), {})


def _handler_for(emulator: VisionEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            if self.path.split("?", 1)[0] != REST_PATH:
                return self._send(404, _error_json(404, f"{self.path.split('?', 1)[0]} not found"))
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as exc:
                return self._send(400, _error_json(400, f"Invalid JSON payload received. {exc}"))
            headers = {k.lower(): v for k, v in self.headers.items()}
            outcome = emulator.handle(Received("rest", headers, body))
            if outcome.malformed:
                return self._send(200, b'{"responses": [{"fullTextAnnotation": {"text": ')
            if outcome.status != 200:
                return self._send(outcome.status, _error_json(outcome.status, outcome.message))
            self._send(200, json.dumps(outcome.response).encode())

        def _send(self, status: int, payload: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler


def _error_json(status: int, message: str) -> bytes:
    phrase = GRPC_CODES.get(status) or HTTPStatus(status).phrase.upper().replace(" ", "_")
    return json.dumps({"error": {"code": status, "message": message, "status": phrase}}).encode()


def _start_grpc(emulator: VisionEmulator, port: int):
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from google.cloud import vision_v1
    from google.protobuf import json_format

    def batch_annotate(raw: bytes, context: grpc.ServicerContext) -> bytes:
        request = vision_v1.BatchAnnotateImagesRequest.pb().FromString(raw)
        body = json_format.MessageToDict(request)
        outcome = emulator.handle(Received("grpc", dict(context.invocation_metadata()), body))
        if outcome.malformed:
            return b"\x0a\xff\xff\xff\xff\x0f"
        if outcome.status != 200:
            context.abort(getattr(grpc.StatusCode, GRPC_CODES.get(outcome.status, "UNKNOWN")), outcome.message)
        response = vision_v1.BatchAnnotateImagesResponse.pb()()
        json_format.ParseDict(outcome.response, response)
        return response.SerializeToString()

    handler = grpc.method_handlers_generic_handler(SERVICE, {
        METHOD: grpc.unary_unary_rpc_method_handler(batch_annotate)})
    server = grpc.server(ThreadPoolExecutor(max_workers=4, thread_name_prefix="vision-emulator-grpc"),
                         handlers=(handler,), options=[("grpc.max_receive_message_length", 64 << 20)])
    bound = server.add_secure_port(f"{emulator.host}:{port}",
                                   grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP))
    server.start()
    return server, bound


def answers_from_dataset(spec: str | None, limit: int | None = None) -> dict[str, dict[str, Any]]:
    """Answers that read every photo of a dataset exactly as annotated (an oracle Vision)."""
    from PIL import Image

    from backends.vision.annotations import Glyph, text_response
    from bench.dataset import load_dataset

    answers = {}
    for photo in load_dataset(spec).limited(limit).photos:
        if photo.problem:
            continue
        try:
            data = photo.read_bytes()
        except OSError:
            continue
        width, height = photo.width, photo.height
        if not (width and height):
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
        glyphs = [Glyph(str(t.label), t.box) for t in sorted(photo.truth, key=lambda t: t.box.left)]
        answers[image_key(data)] = text_response([glyphs], width, height)
    return answers


def throwaway_service_account(path: Path) -> Path:
    """Write a service-account key file with a fresh RSA key, to try ``--vision-key-file`` here.

    The emulator accepts its self-signed tokens; Google would reject them (no such account).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = Path(path)
    path.write_text(json.dumps({"type": "service_account", "project_id": "digitbench-emulator",
                                "private_key_id": "emulator", "private_key": pem,
                                "client_email": "bench@digitbench-emulator.iam.gserviceaccount.com",
                                "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}))
    path.chmod(0o600)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m backends.vision.emulator``: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m backends.vision.emulator",
                                     description="A local Cloud Vision server (REST and gRPC) on 127.0.0.1.")
    parser.add_argument("--dataset", help="answer this dataset's photos from its annotations "
                        "(default: synthetic); other images get an empty answer")
    parser.add_argument("--limit", type=int, help="only the first N photos of the dataset")
    parser.add_argument("--rest-port", type=int, default=0, help="REST port (default: a free one)")
    parser.add_argument("--grpc-port", type=int, default=0, help="gRPC port (default: a free one)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer, in ms")
    parser.add_argument("--api-key", help="refuse requests without this API key (403)")
    args = parser.parse_args(argv)
    answers = answers_from_dataset(args.dataset, args.limit)
    with VisionEmulator(answers, api_key=args.api_key, latency_s=args.latency_ms / 1000,
                        rest_port=args.rest_port, grpc_port=args.grpc_port) as emulator:
        print(f"Cloud Vision emulator: {len(answers)} photos known", flush=True)
        print(f"  gRPC: bench run --backends vision --vision-endpoint {emulator.grpc_endpoint}", flush=True)
        print(f"  REST: bench run --backends vision --vision-transport rest --vision-endpoint "
              f"{emulator.rest_endpoint}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
