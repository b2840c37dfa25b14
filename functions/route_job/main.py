"""route_job: a JobRequest from a jobs topic (shared, or a tenant's) → admission, budget hold,
first render task."""

import functions_framework

from aiprod.bootstrap import cloud_app
from aiprod.entrypoints import decode, invocation, subscription


@functions_framework.cloud_event
def route_job(cloud_event):
    with invocation(cloud_app()) as app:
        data, attributes = decode(cloud_event)
        app.router.handle(data, attributes, subscription(cloud_event))
