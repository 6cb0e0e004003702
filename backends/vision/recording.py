"""Raw responses stored per photo (``--vision-record``) and read back (``--vision-replay``).

``DIR/<row>/`` (``vision``, ``vision-batch16``) holds one JSON file per photo and request
setting, named by a hash of the image bytes, the feature and the language hints, so a replay
finds the right answer whatever the photo is called. Each file holds the documented REST JSON of
the response and the round trip measured the last time the photo was sent. No credentials are
ever stored.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.results.folder import write_json_atomic

FORMAT = 1


def response_key(content: bytes, feature: str, language_hints: tuple[str, ...]) -> str:
    """The file stem of one photo's response for one request setting."""
    digest = hashlib.sha256()
    digest.update(f"{feature}|{','.join(language_hints)}|".encode())
    digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()[:40]


@dataclass
class Recorded:
    """One stored response and how it was obtained."""

    image: str
    image_sha256: str
    feature: str
    language_hints: list[str]
    latency_ms: float
    request_ms: float
    batch_size: int
    transport: str
    endpoint: str
    response: dict[str, Any]
    recorded: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    format: int = FORMAT


class Recordings:
    """A folder of recorded responses."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def save(self, key: str, recorded: Recorded) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path(key), asdict(recorded))

    def load(self, key: str) -> Recorded | None:
        """The recording for ``key``, or ``None`` when there is none."""
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{self.path(key)}: unreadable recording ({exc}); record it again") from None
        if data.get("format") != FORMAT:
            raise ValueError(f"{self.path(key)}: recording format {data.get('format')!r}, expected {FORMAT}; "
                             "record it again")
        return Recorded(**{k: v for k, v in data.items() if k in Recorded.__dataclass_fields__})

    def count(self) -> int:
        return sum(1 for _ in self.folder.glob("*.json")) if self.folder.is_dir() else 0
