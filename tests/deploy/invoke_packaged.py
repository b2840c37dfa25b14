"""Runs INSIDE a packaged function's virtual environment, from the package folder.

``python invoke_packaged.py TARGET [MODULE ...]`` loads ``main.py``
the way the deployed HTTP-triggered function does (``functions_framework.create_app`` with
signature type ``http``; the entry point's decorator decides the real one), then POSTs each
body of the JSON list on stdin (a raw Pub/Sub push envelope, or null for an empty POST such
as Cloud Scheduler's). Prints one JSON object: the HTTP statuses and bodies, where ``aiprod``
was imported from, which of the named modules the start-up and the requests had already
loaded, and which import here (each is really imported, so an adapter whose SDK or one of
its imports is missing from the pins shows as False).

Standard library and the function's own requirements only: nothing of the test environment.
"""

import importlib
import json
import sys

import functions_framework

RESULT = "invoke_packaged: "  # the function's own log lines go to stdout too


def importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def main(argv: list[str]) -> None:
    target, probes = argv[0], argv[1:]
    app = functions_framework.create_app(target=target, source="main.py", signature_type="http")
    client = app.test_client()
    answers = []
    for body in json.load(sys.stdin):
        response = client.post("/", json=body) if body is not None else client.post("/")
        answers.append({"status": response.status_code, "body": response.get_data(as_text=True)})
    loaded = [name for name in probes if name in sys.modules]
    modules = {name: importable(name) for name in probes}
    print(
        RESULT
        + json.dumps(
            {
                "answers": answers,
                "aiprod": sys.modules["aiprod"].__file__,
                "loaded": loaded,
                "modules": modules,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
