"""The Cloud SDK's Pub/Sub and Firestore emulators, started from their own binaries.

The binaries under the SDK's ``platform/`` folder start faster and use less memory than the
``gcloud beta emulators`` wrapper. Both emulators namespace data by project id, so one pair
serves several stacks (tests) at once, each under its own project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aiprod_tools.exceptions import EmulatorNotFoundError
from aiprod_tools.stack.processes import HOST, Child, free_port, spawn, stop_all, wait_http

PUBSUB_BIN = "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
FIRESTORE_BIN = "platform/cloud-firestore-emulator/cloud_firestore_emulator"
INSTALL_HINTS = {
    PUBSUB_BIN: ("pubsub-emulator", "google-cloud-cli-pubsub-emulator"),
    FIRESTORE_BIN: ("cloud-firestore-emulator", "google-cloud-cli-firestore-emulator"),
}
SDK_CANDIDATES = (
    "/usr/lib/google-cloud-sdk",
    "/usr/share/google-cloud-sdk",
    "/opt/google-cloud-sdk",
    "~/google-cloud-sdk",
)


@dataclass
class Emulators:
    """A running pair of emulators and how long each took to answer."""

    pubsub: Child
    firestore: Child
    log_dir: Path
    startup_s: dict[str, float] = field(default_factory=dict)

    @property
    def hosts(self) -> dict[str, str]:
        return {
            "PUBSUB_EMULATOR_HOST": f"{HOST}:{self.pubsub.port}",
            "FIRESTORE_EMULATOR_HOST": f"{HOST}:{self.firestore.port}",
        }

    def env(self, project: str) -> dict[str, str]:
        """What a client (or a function process) needs to use these emulators for ``project``."""
        return {**self.hosts, "GOOGLE_CLOUD_PROJECT": project}

    def stop(self) -> None:
        stop_all([self.pubsub, self.firestore])


def start_emulators(log_dir: Path | None = None, timeout_s: float = 60.0) -> Emulators:
    """Start both emulators on free ports and wait until they answer HTTP."""
    pubsub_bin, firestore_bin = _binary(PUBSUB_BIN), _binary(FIRESTORE_BIN)
    _require_java()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="aiprod-emulators-"))
    ports = free_port(), free_port()
    pubsub = spawn(
        "pubsub-emulator",
        [str(pubsub_bin), f"--host={HOST}", f"--port={ports[0]}"],
        ports[0],
        log_dir,
    )
    firestore = spawn(
        "firestore-emulator",
        [str(firestore_bin), "start", f"--host={HOST}", f"--port={ports[1]}"],
        ports[1],
        log_dir,
    )
    startup = wait_http([pubsub, firestore], timeout_s)
    return Emulators(pubsub, firestore, log_dir, startup)


def sdk_root() -> Path:
    """The Cloud SDK install: $CLOUDSDK_ROOT_DIR, a usual place, or what gcloud reports."""
    explicit = os.environ.get("CLOUDSDK_ROOT_DIR")
    if explicit:
        return Path(explicit).expanduser()
    for candidate in SDK_CANDIDATES:
        path = Path(candidate).expanduser()
        if (path / "platform").is_dir():
            return path
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise EmulatorNotFoundError("the Google Cloud CLI (gcloud) is not installed")
    out = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return Path(out.stdout.strip() or Path(gcloud).resolve().parent.parent)


def _binary(relative: str) -> Path:
    path = sdk_root() / relative
    if not path.is_file():
        component, package = INSTALL_HINTS[relative]
        raise EmulatorNotFoundError(
            f"{path} is missing: gcloud components install {component} "
            f"(or apt-get install {package})"
        )
    return path


def _require_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return
    if shutil.which("java") is None:
        raise EmulatorNotFoundError("the emulators need java (a JRE 11+) on PATH or JAVA_HOME")
