"""Which Google credentials the backend uses, found without touching the network.

Order: an API key (``--vision-api-key`` or ``$DIGITBENCH_VISION_API_KEY``), a key file
(``--vision-key-file``), Application Default Credentials from files
(``$GOOGLE_APPLICATION_CREDENTIALS``, then gcloud's ``application_default_credentials.json``),
the GCE metadata server only when asked (``--vision-metadata-server``). A plain-text ``http://``
endpoint (an emulator) gets only credentials given explicitly, else none (anonymous): found ADC
tokens are never sent over plain text.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

API_KEY_ENV = "DIGITBENCH_VISION_API_KEY"
SCOPES = ("https://www.googleapis.com/auth/cloud-vision",)
NO_CREDENTIALS_FIX = (f"pass --vision-api-key KEY or set {API_KEY_ENV}, pass --vision-key-file SERVICE_ACCOUNT.json, "
                      "set GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login` "
                      "(see docs/vision.md)")


@dataclass(frozen=True)
class CredentialSource:
    """Where credentials come from: ``kind`` is api-key, key-file, adc-file, metadata-server or anonymous."""

    kind: str
    path: Path | None = None
    api_key: str | None = None

    def describe(self) -> str:
        """For reports: the kind and file, never the key."""
        return f"{self.kind} ({self.path})" if self.path else self.kind


def gcloud_adc_file() -> Path:
    """gcloud's Application Default Credentials file (``gcloud auth application-default login``)."""
    config = os.environ.get("CLOUDSDK_CONFIG")
    if config:
        return Path(config) / "application_default_credentials.json"
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", "")) / "gcloud" / "application_default_credentials.json"
    return Path.home() / ".config" / "gcloud" / "application_default_credentials.json"


def find_credentials(api_key: str, key_file: str, metadata_server: bool, plaintext_endpoint: bool
                     ) -> CredentialSource | str:
    """The credential source to use, or why there is none (one line with the fix)."""
    key = api_key or os.environ.get(API_KEY_ENV, "")
    if key:
        return CredentialSource("api-key", api_key=key)
    if key_file:
        path = Path(key_file).expanduser()
        if not path.is_file():
            return f"--vision-key-file {key_file}: no such file; give a service-account JSON key"
        return CredentialSource("key-file", path)
    if plaintext_endpoint:
        return CredentialSource("anonymous")
    adc = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if adc:
        if not Path(adc).expanduser().is_file():
            return (f"GOOGLE_APPLICATION_CREDENTIALS={adc}: no such file; point it at a credentials JSON "
                    "or unset it")
        return CredentialSource("adc-file", Path(adc).expanduser())
    if gcloud_adc_file().is_file():
        return CredentialSource("adc-file", gcloud_adc_file())
    if metadata_server:
        return CredentialSource("metadata-server")
    return f"no Google Cloud credentials: {NO_CREDENTIALS_FIX}"


def load_credentials(source: CredentialSource):
    """google-auth credentials for ``source`` (``None`` for an API key, which the client takes itself)."""
    if source.kind == "api-key":
        return None
    if source.kind == "anonymous":
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    if source.kind == "metadata-server":
        from google.auth import compute_engine

        return compute_engine.Credentials(scopes=list(SCOPES))
    return _from_file(source.path)


def _from_file(path: Path):
    """Service-account and user credentials by their loaders; other ADC types through google-auth."""
    import json

    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("type")
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path}: not a credentials JSON file ({exc})") from None
    if kind == "service_account":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_file(str(path), scopes=list(SCOPES))
    if kind == "authorized_user":
        from google.oauth2 import credentials

        return credentials.Credentials.from_authorized_user_file(str(path), scopes=list(SCOPES))
    import google.auth

    loaded, _ = google.auth.load_credentials_from_file(str(path), scopes=list(SCOPES))
    return loaded
