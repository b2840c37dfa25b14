"""Finding the emulators: a missing binary or java is a clear EmulatorNotFoundError."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiprod_tools.exceptions import EmulatorNotFoundError
from aiprod_tools.stack import emulators


def fake_sdk(root: Path) -> Path:
    for relative in (emulators.PUBSUB_BIN, emulators.FIRESTORE_BIN):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
    return root


def test_a_missing_emulator_names_the_component_to_install(tmp_path, monkeypatch):
    (tmp_path / "platform").mkdir()
    monkeypatch.setenv("CLOUDSDK_ROOT_DIR", str(tmp_path))
    with pytest.raises(EmulatorNotFoundError, match="gcloud components install pubsub-emulator"):
        emulators.start_emulators(log_dir=tmp_path)


def test_missing_java_is_reported_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDSDK_ROOT_DIR", str(fake_sdk(tmp_path)))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(EmulatorNotFoundError, match="java"):
        emulators.start_emulators(log_dir=tmp_path)


def test_the_sdk_root_can_be_given_explicitly(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDSDK_ROOT_DIR", str(tmp_path))
    assert emulators.sdk_root() == tmp_path
