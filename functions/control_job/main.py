"""control_job: a control message (first: cancel a job) on job-control (operators) or a
tenant's control topic → JobControl, told the subscription it came through."""

import functions_framework

from aiprod.bootstrap import cloud_app
from aiprod.entrypoints import decode, invocation, subscription


@functions_framework.cloud_event
def control_job(cloud_event):
    with invocation(cloud_app()) as app:
        data, attributes = decode(cloud_event)
        app.job_control.handle(data, attributes, subscription(cloud_event))
