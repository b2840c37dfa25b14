"""Fixtures for the live adapters: the three provider fakes (one per test), the storage
emulator (one per session, a bucket per test), and the configuration that points the real
adapters at them: base URLs, API keys, and an ``authorized_user`` credentials file holding
the Veo fake's access token with a far expiry, so Veo's Application Default Credentials path
runs as is and never calls Google's token endpoint.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fakes.replicate import ReplicateFake
from fakes.runway import RunwayFake
from fakes.storage import StorageEmulator
from fakes.veo import TOKEN as VEO_TOKEN
from fakes.veo import VeoFake


@dataclass
class Fakes:
    runway: RunwayFake
    veo: VeoFake
    replicate: ReplicateFake
    storage: StorageEmulator
    bucket: str
    credentials_file: Path

    def env(self) -> dict[str, str]:
        """Everything a live-mode process needs to use these fakes (keys included)."""
        return {
            "AIPROD_PROVIDER_MODE": "live",
            "AIPROD_OUTPUT_BUCKET": self.bucket,
            "AIPROD_RUNWAY_BASE_URL": self.runway.url,
            "AIPROD_VEO_BASE_URL": self.veo.url,
            "AIPROD_REPLICATE_BASE_URL": self.replicate.url,
            "AIPROD_PROVIDER_TIMEOUT_S": "2",
            "RUNWAYML_API_SECRET": self.runway.api_key,
            "REPLICATE_API_TOKEN": self.replicate.token,
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.credentials_file),
            "STORAGE_EMULATOR_HOST": self.storage.host,
        }

    def secrets(self) -> list[str]:
        return [self.runway.api_key, self.replicate.token, "fake-refresh-token-42", VEO_TOKEN]


@pytest.fixture(scope="session")
def storage_emulator() -> Iterator[StorageEmulator]:
    emulator = StorageEmulator().start()
    yield emulator
    emulator.stop()


def start_fakes(storage: StorageEmulator, folder: Path) -> Fakes:
    """The three provider fakes, started, and a fresh bucket (``stop_fakes`` ends them);
    ``folder`` holds the credentials file. For the ``fakes`` fixture and scripts alike."""
    bucket = f"aiprod-videos-{uuid.uuid4().hex[:8]}"
    storage.create_bucket(bucket)
    servers = (RunwayFake(), VeoFake(storage.host), ReplicateFake())
    for server in servers:
        server.start()
    credentials = folder / "adc.json"
    credentials.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "fake-client.apps.googleusercontent.com",
                "client_secret": "fake-client-secret",
                "refresh_token": "fake-refresh-token-42",
                "token": VEO_TOKEN,
                "expiry": "2099-01-01T00:00:00Z",
            }
        )
    )
    return Fakes(*servers, storage, bucket, credentials)


def stop_fakes(fakes: Fakes) -> None:
    for server in (fakes.runway, fakes.veo, fakes.replicate):
        server.stop()


@pytest.fixture
def fakes(storage_emulator: StorageEmulator, tmp_path: Path) -> Iterator[Fakes]:
    started = start_fakes(storage_emulator, tmp_path)
    yield started
    stop_fakes(started)


@pytest.fixture
def live_env(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process configured for live mode against the fakes (for in-process tests)."""
    env = fakes.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
