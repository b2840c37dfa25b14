"""The semantic rating of a kept output by Gemini on Vertex AI: the only module that calls
Gemini. ``google-genai`` is imported on the first rating, so a process with semantic QA off
never loads it (Veo's render function loads it anyway).

The client is built as ``veo`` builds its own (same project, location, endpoint and
Application Default Credentials): Gemini reads the video straight from the bucket by its
``gs://`` URI, so nothing is uploaded. One ``generateContent`` call, at temperature 0, with
the answer held to a JSON schema (``domain.semantic_qa``).

A failed rating never fails the render; it says why, and what it may have cost:

- a definite refusal (an HTTP 4xx answer), or a call never sent (no connection, no
  credentials) → cost 0: nothing was billed;
- a lost answer (a timeout, a broken connection, a 5xx) → the worst-case estimate: the call
  may have been billed, and a cost a provider may have incurred is never dropped;
- an answer that is not the rating asked for → its reported usage, else the estimate.
"""

from __future__ import annotations

import logging
from typing import Any

from aiprod.adapters.provider_base import LazyClient
from aiprod.adapters.vertex_client import vertex_client
from aiprod.config import ProviderSettings
from aiprod.domain.messages import RenderTask
from aiprod.domain.semantic_qa import (
    MAX_OUTPUT_TOKENS,
    RESPONSE_SCHEMA,
    Rating,
    RatingFormatError,
    Usage,
    parse_answer,
    rubric_for,
    usage_cost,
    worst_case_micros,
)

log = logging.getLogger(__name__)


class GeminiRater(LazyClient):
    """Rates how well a kept output follows its job's prompt (``rate``)."""

    def __init__(self, settings: ProviderSettings, project: str):
        self._settings, self._project = settings, project
        self.model = settings.semantic_qa.model

    def rate(self, gs_uri: str, task: RenderTask) -> Rating:
        try:
            import httpx2  # google-genai 3.x sends through httpx2
            from google.auth import exceptions as auth_errors
            from google.genai import errors
        except ImportError:  # packaged without the storage group (google-genai)
            return self._failed("google-genai is not installed here", 0, task)
        estimate = worst_case_micros(self.model, task.request.duration_s)
        try:
            response = self._generate(gs_uri, task)
        except errors.ClientError as exc:  # refused: nothing was billed
            return self._failed(f"gemini refused the rating: HTTP {exc.code}", 0, task)
        except errors.APIError as exc:  # 5xx: it may have run
            return self._failed(f"gemini answered HTTP {exc.code}", estimate, task)
        except (httpx2.ConnectError, auth_errors.GoogleAuthError) as exc:  # never sent
            return self._failed(f"gemini not reached: {type(exc).__name__}", 0, task)
        except httpx2.HTTPError as exc:  # sent, answer lost: it may have been billed
            return self._failed(f"gemini answer lost: {type(exc).__name__}", estimate, task)
        except Exception as exc:  # sent, answered, unreadable (a proxy's page, a new shape)
            return self._failed(f"gemini answer unreadable: {type(exc).__name__}", estimate, task)
        try:
            usage = _usage(response)
            cost = estimate if usage is None else usage_cost(self.model, usage)
        except Exception as exc:  # a usage block we cannot read: it ran, charge the worst case
            return self._failed(f"gemini usage unreadable: {type(exc).__name__}", estimate, task)
        try:
            score, reasons = parse_answer(_text(response))
        except (RatingFormatError, ValueError, TypeError, AttributeError) as exc:
            why = exc if isinstance(exc, RatingFormatError) else type(exc).__name__
            return self._failed(f"gemini answer unreadable: {why}", cost, task)
        if usage is None:
            log.warning("gemini reported no usage: charged the estimate", extra=_ctx(task))
        rating = Rating(score, cost, self.model, reasons)
        log.info("output rated %.2f", score, extra={**_ctx(task), "cost_micros": cost})
        return rating

    def _generate(self, gs_uri: str, task: RenderTask) -> Any:
        from google.genai import types

        config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_schema=RESPONSE_SCHEMA,
            temperature=0,
            max_output_tokens=MAX_OUTPUT_TOKENS,
            thinking_config=types.ThinkingConfig(thinking_budget=0),  # bounded output
        )
        contents = [
            types.Part.from_uri(file_uri=gs_uri, mime_type="video/mp4"),
            rubric_for(task.request.prompt),
        ]
        return self.client().models.generate_content(
            model=self.model, contents=contents, config=config
        )

    def _failed(self, why: str, cost: int, task: RenderTask) -> Rating:
        log.warning("semantic QA missing: %s", why, extra={**_ctx(task), "cost_micros": cost})
        return Rating(None, cost, self.model, error=why)

    def _connect(self) -> Any:
        return vertex_client(self._settings, self._project)


def _usage(response: Any) -> Usage | None:
    metadata = getattr(response, "usage_metadata", None)
    if metadata is None or metadata.prompt_token_count is None:
        return None
    details = metadata.prompt_tokens_details
    audio = None
    if details:
        audio = sum(d.token_count or 0 for d in details if str(d.modality).endswith("AUDIO"))
    output = (metadata.candidates_token_count or 0) + (metadata.thoughts_token_count or 0)
    return Usage(metadata.prompt_token_count, output, audio)


def _text(response: Any) -> str | None:
    """The answer's text, or None (no candidate: blocked, or empty)."""
    candidates = getattr(response, "candidates", None) or []
    content = candidates[0].content if candidates else None
    parts = (content.parts if content else None) or []
    return "".join(p.text for p in parts if p.text) or None


def _ctx(task: RenderTask) -> dict[str, object]:
    return {"job_id": task.job_id, "attempt": task.attempt, "backend": task.backend}
