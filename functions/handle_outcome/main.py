"""handle_outcome: a RenderOutcome → settle the hold, then complete, retry or fall back."""

import functions_framework

from aiprod.bootstrap import cloud_app
from aiprod.entrypoints import decode, invocation


@functions_framework.cloud_event
def handle_outcome(cloud_event):
    with invocation(cloud_app()) as app:
        app.outcomes.handle(*decode(cloud_event))
