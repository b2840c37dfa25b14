"""The family of live provider adapters: one template, small per-provider hooks.

``LiveBackend.submit`` and ``LiveBackend.poll`` do what every provider needs: look the model up
in the catalog, refuse a request the model cannot take before anything is sent, turn the SDK's
exceptions into the error taxonomy (``ProviderError`` on a create, a finished or "not done"
``ProviderResult`` on a poll), and insist on a task id. A provider module subclasses it, imports
its own SDK (the only module that does, so a render function loads only its provider's SDK)
and fills in the hooks:

- ``_prepare(task, spec)``: the request body; refuse with ``refuse_unless`` (nothing sent);
- ``_create(request, task)``: send it, return the provider's task id;
- ``_fetch(task_id)`` and ``_read(raw, task)``: look at a task once, and say what it means;
- ``_cancel(task_id)``: ask the provider to stop a task (only where ``can_cancel``);
- ``_status(exc)`` / ``_reason(exc)``: the HTTP status and message of an SDK error that
  carries an answer (``_verdict`` maps the status; Veo adds its content policy);
- ``unanswered``: which SDK errors mean "no answer", and whether anything was sent;
- ``poll_retried``: which SDK errors on a poll only mean "look again";
- ``_connect()``: the SDK client, built at first use (keys are read then, never logged).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from aiprod.adapters.provider_common import (
    NOT_DONE,
    check_request,
    error,
    failed,
    misconfigured,
    retry_after,
)
from aiprod.config import ProviderSettings
from aiprod.domain import taxonomy
from aiprod.domain.catalog import Catalog, ModelSpec
from aiprod.domain.messages import RenderTask
from aiprod.domain.taxonomy import Verdict
from aiprod.exceptions import ConfigError, ProviderError
from aiprod.ports import ProviderResult, VideoBackend

log = logging.getLogger(__name__)
ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


class LazyClient(ABC):
    """An adapter whose SDK client is built on first use: nothing connects at import or
    construction (cold start), and a missing key or bucket surfaces on the call that needs it."""

    _client: Any = None

    def client(self) -> Any:
        if self._client is None:
            self._client = self._connect()
        return self._client

    @abstractmethod
    def _connect(self) -> Any:
        """Build the SDK client (may raise ``ConfigError``)."""


class LiveBackend(LazyClient, VideoBackend):
    """A provider reached through its SDK. Behaviour common to all of them:

    - submit: a ``ConfigError`` (no key, no bucket) falls back (``misconfigured``); an HTTP
      error answer is mapped by status, with the provider's Retry-After; a create with no
      answer is UNREACHABLE when nothing was sent, SUBMIT_UNCONFIRMED when it may have been;
      an unreadable answer, or one without a task id, is UNKNOWN ``malformed_response``. A
      create is never sent twice: the task may exist.
    - poll: a task the provider does not know (404) is done, FALLBACK ``bad_request``; any
      other failed look is "not done" (polls are safe to repeat); a ``ConfigError`` is
      UNKNOWN (the task may still finish and bill).
    - cancel: only where the provider can (``can_cancel``; else False, the task runs on).
      A task the provider does not know (404) has nothing to stop: True, because its next
      poll still answers (done, FALLBACK ``bad_request``, as without the cancel). Any other
      HTTP error raises ``ProviderError`` by ``taxonomy.cancel_status`` (5xx: RETRY_SAME, a
      cancel is safe to repeat); no answer at all is UNREACHABLE; a ``ConfigError`` is
      UNKNOWN ``misconfigured``, as on a poll.
    """

    name: ClassVar[str]
    task_kind: ClassVar[str] = "task"  # what the provider calls a render, for messages
    task_id_kind: ClassVar[str] = "task id"  # what a create answers with
    unanswered: ClassVar[tuple[tuple[ExceptionTypes, Verdict], ...]] = ()  # first match wins
    poll_retried: ClassVar[ExceptionTypes] = ()

    def __init__(
        self, settings: ProviderSettings, catalog: Catalog, project: str = "", client: Any = None
    ):
        self._settings, self._catalog, self._project = settings, catalog, project
        self._client = client

    def submit(self, task: RenderTask, before_send: Callable[[], None] | None = None) -> str:
        spec = self.spec(task)
        check_request(task, spec, self.name)
        request = self._prepare(task, spec)
        if before_send is not None:
            before_send()
        try:
            task_id = self._create(request, task)
        except Exception as exc:
            failure = self._create_failure(exc)
            if failure is None:
                raise
            raise failure from exc
        if not isinstance(task_id, str) or not task_id:
            raise error(taxonomy.MALFORMED, f"{self.name} create answered no {self.task_id_kind}")
        return task_id

    def poll(self, provider_task_id: str, task: RenderTask) -> ProviderResult:
        try:
            raw = self._fetch(provider_task_id)
        except ConfigError as exc:
            raise misconfigured(exc, submitted=True) from exc
        except Exception as exc:
            status = self._status(exc)
            if status == 404:
                message = f"{self.name} {self.task_kind} not found: {self._reason(exc)}"
                return failed(taxonomy.BAD_REQUEST, message)
            if status is None and not isinstance(exc, (self.poll_retried, ValueError)):
                raise
            why = type(exc).__name__ if status is None else f"HTTP {status}"
            log.warning("%s poll not answered (%s); will look again", self.name, why)
            return NOT_DONE
        return self._read(raw, task)

    def cancel(self, provider_task_id: str, task: RenderTask) -> bool:
        if not self.can_cancel:
            return False
        try:
            self._cancel(provider_task_id)
        except ConfigError as exc:
            raise misconfigured(exc, submitted=True) from exc
        except Exception as exc:
            status = self._status(exc)
            if status == 404:
                log.info("%s cancel: %s not found, nothing to stop", self.name, self.task_kind)
                return True
            if status is not None:
                wait = retry_after(getattr(exc, "response", None))
                reason = f"cancel: {self._reason(exc)}"
                raise error(taxonomy.cancel_status(status), reason, retry_after_s=wait) from exc
            if not isinstance(exc, (self.poll_retried, ValueError)):
                raise
            message = f"{self.name} cancel got no readable answer: {type(exc).__name__}"
            raise error(taxonomy.UNREACHABLE, message) from exc
        return True

    def spec(self, task: RenderTask) -> ModelSpec:
        """The catalog's entry for the task's model on this provider."""
        return self._catalog.model(self.name, task.model)

    def _create_failure(self, exc: Exception) -> ProviderError | None:
        """What an exception from a create means; None when it is not the SDK's to say."""
        if isinstance(exc, ConfigError):
            return misconfigured(exc)
        status = self._status(exc)
        if status is not None:
            wait = retry_after(getattr(exc, "response", None))
            return error(self._verdict(status, exc), self._reason(exc), retry_after_s=wait)
        verdict = self._unanswered(exc)
        if verdict is not None:
            return error(verdict, f"{self.name} create: {type(exc).__name__}")
        if isinstance(exc, ValueError):  # answered, but unreadable: a task may exist
            return error(taxonomy.MALFORMED, f"{self.name} create answered unreadable JSON")
        return None

    def _unanswered(self, exc: Exception) -> Verdict | None:
        """A create that got no answer: the first ``unanswered`` entry it matches."""
        return next((verdict for kinds, verdict in self.unanswered if isinstance(exc, kinds)), None)

    def _verdict(self, status: int, exc: Exception) -> Verdict:
        """An HTTP error answer to a create."""
        return taxonomy.http_status(status)

    @abstractmethod
    def _prepare(self, task: RenderTask, spec: ModelSpec) -> Any:
        """The request to send; refuse what this provider cannot take (nothing is sent)."""

    @abstractmethod
    def _create(self, request: Any, task: RenderTask) -> str | None:
        """Send the request once (no SDK retries); the provider's task id."""

    @abstractmethod
    def _fetch(self, provider_task_id: str) -> Any:
        """Look at a task once: the provider's answer, as the SDK gives it."""

    @abstractmethod
    def _read(self, raw: Any, task: RenderTask) -> ProviderResult:
        """What a look means: still running, or finished with its output, cost or error."""

    def _cancel(self, provider_task_id: str) -> None:
        """Ask the provider once to stop a task, leaving a finished one's result as it is
        (called only where ``can_cancel``)."""
        raise NotImplementedError(f"{self.name} cannot cancel")

    @abstractmethod
    def _status(self, exc: BaseException) -> int | None:
        """The HTTP status of an SDK error that carries an answer; None for any other."""

    @abstractmethod
    def _reason(self, exc: Any) -> str:
        """A short message for an SDK error that carries an answer."""
