"""control_job: a control message on job-control (first: cancel a job) → JobControl."""

import functions_framework

from aiprod.bootstrap import cloud_app
from aiprod.entrypoints import decode, invocation


@functions_framework.cloud_event
def control_job(cloud_event):
    with invocation(cloud_app()) as app:
        app.job_control.handle(*decode(cloud_event))
