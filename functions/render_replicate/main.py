"""render_replicate: a RenderTask for replicate → claim, render, publish the outcome."""

import functions_framework

from aiprod.bootstrap import cloud_app
from aiprod.entrypoints import decode, invocation


@functions_framework.cloud_event
def render_replicate(cloud_event):
    with invocation(cloud_app()) as app:
        app.renderer("replicate").handle(*decode(cloud_event))
