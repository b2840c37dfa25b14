"""route_job: a JobRequest from the jobs topic → admission, budget hold, first render task."""

import functions_framework

from aiprod.bootstrap import cloud_app
from aiprod.entrypoints import decode, invocation


@functions_framework.cloud_event
def route_job(cloud_event):
    with invocation(cloud_app()) as app:
        app.router.handle(*decode(cloud_event))
