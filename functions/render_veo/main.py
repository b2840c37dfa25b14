"""render_veo: a RenderTask for veo → claim, render on the provider, publish the outcome."""

import functions_framework

from aiprod.bootstrap import cloud_app
from aiprod.entrypoints import decode, invocation


@functions_framework.cloud_event
def render_veo(cloud_event):
    with invocation(cloud_app()) as app:
        app.renderer("veo").handle(*decode(cloud_event))
