"""The google-genai client on Vertex AI, built one way for Veo's renders and Gemini's
ratings: the same project, location, API version, timeout and (in tests) the same fake."""

from __future__ import annotations

from typing import Any

from aiprod.config import ProviderSettings


def vertex_client(settings: ProviderSettings, project: str) -> Any:
    """A ``genai.Client`` for Vertex AI (google-genai is imported here, on first use)."""
    from google import genai
    from google.genai import types

    return genai.Client(
        vertexai=True,
        project=settings.veo_project or project,
        location=settings.veo_location,
        http_options=types.HttpOptions(
            api_version="v1",
            base_url=settings.veo_base_url,
            timeout=int(settings.timeout_s * 1000),
        ),
    )
