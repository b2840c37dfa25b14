"""The control topic's message (``job-control``): what an operator or a client asks of a
job that is already running. Kept apart from the pipeline's own messages."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from aiprod.domain.messages import JOB_ID_PATTERN, _Strict


class ControlAction(StrEnum):
    CANCEL = "cancel"


class ControlRequest(_Strict):
    """A message on the control topic (``job-control``), from ``aiprod cancel`` or any
    client allowed to publish there: for now, cancel one job."""

    action: ControlAction
    job_id: Annotated[str, Field(pattern=JOB_ID_PATTERN)]
    reason: Annotated[str, Field(max_length=500)] = ""
    requested_by: Annotated[str | None, Field(max_length=200)] = None
