"""Each live backend loads only its own provider SDK (and Cloud Storage), never another
provider's and never aiplatform: checked in a fresh interpreter, since this one has them all."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SDKS = {"runway": "runwayml", "veo": "google.genai", "replicate": "replicate"}


@pytest.mark.parametrize("backend", sorted(SDKS))
def test_a_live_backend_loads_its_own_sdk_only_and_never_aiplatform(backend):
    # WHEN a fresh interpreter builds one live backend and polls nothing
    code = f"""
import json, sys
from aiprod.adapter_tables import make_backend
from aiprod.config import Settings
from aiprod.domain.catalog import default_catalog
make_backend({backend!r}, Settings(provider_mode="live"), default_catalog(), None)
print(json.dumps(sorted(set(sys.modules))))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(run.stdout))

    # THEN its SDK (and Cloud Storage) are loaded, no other provider's, and no aiplatform
    assert SDKS[backend] in loaded and "google.cloud.storage" in loaded
    assert not {sdk for name, sdk in SDKS.items() if name != backend} & loaded
    assert "google.cloud.aiplatform" not in loaded and "vertexai" not in loaded
