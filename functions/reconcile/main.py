"""reconcile: Cloud Scheduler calls this every minute → one lease sweep, its report as JSON."""

import functions_framework

from aiprod.bootstrap import cloud_app
from aiprod.entrypoints import invocation, trace_request


@functions_framework.http
def reconcile(request):
    trace_request(request.headers)
    with invocation(cloud_app()) as app:
        report = app.reconciler.run()
    return report.to_json(), 500 if report.errors else 200
