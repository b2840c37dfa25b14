"""The ``gcp-storage-emulator`` package in this process, on a free port, in memory.

Pure Python and quick to start, so the integration tier uses it too; clients reach it via
``STORAGE_EMULATOR_HOST`` exactly as they would the real service's endpoint.
"""

from __future__ import annotations

import logging
from typing import Any

from aiprod_tools.stack.processes import free_port


class StorageEmulator:
    def __init__(self) -> None:
        from gcp_storage_emulator.server import create_server

        logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
        self.port = free_port()
        self._server = create_server("127.0.0.1", self.port, in_memory=True)
        self._server._api.daemon = True  # never keeps a test process alive

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StorageEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self, project: str = "test-project") -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.host},
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(name)

    def blob(self, bucket: str, name: str) -> Any:
        """The stored object (with its metadata and content type), or None."""
        return self.client().bucket(bucket).get_blob(name)

    def read(self, bucket: str, name: str) -> bytes:
        return self.client().bucket(bucket).blob(name).download_as_bytes()
