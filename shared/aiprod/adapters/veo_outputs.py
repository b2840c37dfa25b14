"""The spend audit's view of Veo: the videos it wrote into our bucket (Veo bills each one).

Uses ``google-cloud-storage`` like ``kept_outputs`` (which keeps and checks the outputs);
kept apart so each module has one job.
"""

from __future__ import annotations

import re
from typing import Any

from google.cloud import storage

from aiprod.adapters.provider_base import LazyClient
from aiprod.config import ProviderSettings
from aiprod.domain.spend_audit import ProviderDay, ProviderTask
from aiprod.ports import SpendSource

# Where Veo writes an attempt's video (``veo.output_prefix``, not imported: that module loads
# google-genai): ``videos/{job_id}/attempt-{n}/sample_0.mp4``. Kept outputs of the other
# providers are files beside those folders (``object_name``), so they never match.
VEO_OBJECT = re.compile(r"^videos/(?P<job_id>[^/]+)/attempt-(?P<attempt>\d+)/")


class VeoOutputs(LazyClient, SpendSource):
    """The spend audit's view of Veo, which bills each video it writes into our bucket: the
    objects under the output prefix created in the window, one render per attempt folder."""

    provider = "veo"

    def __init__(self, settings: ProviderSettings, catalog: object = None, project: str = ""):
        self._settings, self._project = settings, project

    def day(self, day: str, start: float, end: float, stored: list[str]) -> ProviderDay:
        bucket = self._settings.bucket()
        found: dict[str, ProviderTask] = {}
        for blob in self.client().list_blobs(bucket, prefix="videos/"):
            match = VEO_OBJECT.match(blob.name)
            created = blob.time_created.timestamp() if blob.time_created else None
            if match is None or created is None or not start <= created < end:
                continue
            key = f"{match['job_id']}/attempt-{match['attempt']}"
            model = (blob.metadata or {}).get("model", "")
            uri = f"gs://{bucket}/{blob.name}"
            found.setdefault(key, ProviderTask(key, uri, model, "written", True, None))
        return ProviderDay(self.provider, day, tuple(found.values()))

    def _connect(self) -> Any:
        return storage.Client(project=self._project)
