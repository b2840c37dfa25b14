"""The Veo adapter (real ``google-genai`` SDK, Vertex mode, ``v1``) against the Veo fake,
which writes finished videos into the storage emulator as Veo writes into a bucket."""

from __future__ import annotations

import ssl

import pytest

from aiprod.adapters.image_fetch import ImageFetcher
from fakes.base import FakeServer, Reply
from fakes.tls import self_signed
from fakes.veo import TOKEN, error_body
from support.live import live_backend, render, render_task

OPERATIONS = "/v1/projects/proj-veo/locations/us-central1/publishers/google/models/"


@pytest.fixture
def veo(live_env):
    return live_backend(live_env, "veo", veo_project="proj-veo")


def test_a_render_lands_in_the_bucket_and_is_charged_duration_times_price(
    veo, fakes, storage_emulator
):
    # GIVEN an operation that runs for two looks
    fakes.veo.polls_before_done = 2

    # WHEN an 8 s 1080p job renders on Veo 3.1 Fast ($0.12/s video only)
    done = render(veo, render_task("veo", resolution="1080p"))

    # THEN the video Veo wrote is the output, labelled with the job, and costs 8 x $0.12
    name = "videos/job-1/attempt-1/sample_0.mp4"
    assert done.result.error_class is None, done.result
    assert done.result.output_uri == f"gs://{fakes.bucket}/{name}"
    assert done.result.cost_micros == 960_000
    blob = storage_emulator.blob(fakes.bucket, name)
    assert blob.metadata["job_id"] == "job-1" and blob.metadata["backend"] == "veo"


def test_the_requests_match_vertex_wire_format(veo, fakes):
    render(veo, render_task("veo", aspect_ratio="9:16", duration_s=6))

    create, *polls = fakes.veo.calls("POST")
    model = "veo-3.1-fast-generate-001"
    assert create.path == f"{OPERATIONS}{model}:predictLongRunning"
    assert create.header("authorization") == f"Bearer {TOKEN}"  # from the ADC file
    assert create.json() == {
        "instances": [{"prompt": "a paper boat in the rain"}],
        "parameters": {
            "sampleCount": 1,
            "storageUri": f"gs://{fakes.bucket}/videos/job-1/attempt-1/",
            "durationSeconds": 6,
            "aspectRatio": "9:16",
            "resolution": "720p",
            "generateAudio": False,
        },
    }
    assert polls and all(p.path == f"{OPERATIONS}{model}:fetchPredictOperation" for p in polls)
    operation = create_name = polls[0].json()["operationName"]
    assert create_name.startswith("projects/proj-veo/locations/us-central1/publishers/google/")
    assert operation in fakes.veo.started


def test_an_image_in_the_bucket_is_sent_by_reference(veo, fakes):
    task = render_task("veo")
    request = task.request.model_copy(update={"image_uri": "gs://assets/bottle.png"})
    render(veo, task.model_copy(update={"request": request}))

    instance = fakes.veo.calls("POST")[0].json()["instances"][0]
    assert instance["image"] == {"gcsUri": "gs://assets/bottle.png", "mimeType": "image/png"}


@pytest.fixture
def image_files(tmp_path):
    """An HTTPS server for input images on 127.0.0.1, and the TLS context that trusts it."""
    cert, key = self_signed(tmp_path)
    files = FakeServer().serve_tls(cert, key).start()
    yield files, ssl.create_default_context(cafile=str(cert))
    files.stop()


def test_an_image_behind_a_url_is_fetched_and_sent_inline(veo, fakes, image_files):
    # GIVEN an input image served over HTTPS (Veo on Vertex takes gcsUri or inline bytes),
    # from 127.0.0.1, which only this test's fetcher may reach
    files, context = image_files
    files.files["bottle.jpg"] = (b"\xff\xd8\xff\xe0 jpeg bytes", "image/jpeg")
    veo._inner.image_fetcher = ImageFetcher(allow=frozenset({"127.0.0.1"}), ssl_context=context)
    task = render_task("veo")
    request = task.request.model_copy(update={"image_uri": f"{files.url}/files/bottle.jpg"})

    render(veo, task.model_copy(update={"request": request}))

    image = fakes.veo.calls("POST")[0].json()["instances"][0]["image"]
    assert image == {"bytesBase64Encoded": "/9j/4CBqcGVnIGJ5dGVz", "mimeType": "image/jpeg"}


def test_an_image_at_an_inside_address_is_refused_before_veo_is_called(veo, fakes, image_files):
    # GIVEN the same image server, but the production fetcher (127.0.0.1 is inside)
    files, _ = image_files
    files.files["bottle.jpg"] = (b"\xff\xd8\xff\xe0 jpeg bytes", "image/jpeg")
    task = render_task("veo")
    request = task.request.model_copy(update={"image_uri": f"{files.url}/files/bottle.jpg"})

    done = render(veo, task.model_copy(update={"request": request}))

    # THEN the attempt ends TERMINAL bad_request, saying nothing of the address or status,
    # and neither the image server nor Veo was called
    assert (done.result.error_class, done.result.error_code) == ("TERMINAL", "bad_request")
    assert done.result.message == "input image could not be fetched"
    assert files.requests == [] and fakes.veo.calls("POST") == []


@pytest.mark.parametrize(
    ("policy", "expected"), [("terminal", "TERMINAL"), ("fallback", "FALLBACK")]
)
def test_rai_filtered_output_is_content_policy(live_env, fakes, policy, expected):
    fakes.veo.final = "RAI_FILTERED"
    veo = live_backend(live_env, "veo", content_policy=policy)

    done = render(veo, render_task("veo"))

    assert (done.result.error_class, done.result.error_code) == (expected, "content_policy")
    assert "Support codes: 15236754" in done.result.message
    assert done.result.cost_micros == 0


def test_resource_exhausted_is_retry_same_and_sent_once(veo, fakes):
    body = error_body(429, "RESOURCE_EXHAUSTED", "Resource exhausted. Please try again later.")
    fakes.veo.queue("create", Reply(429, body, {"retry-after": "12"}))

    done = render(veo, render_task("veo"))

    assert (done.result.error_class, done.result.error_code) == ("RETRY_SAME", "throttled")
    assert len(fakes.veo.calls("POST")) == 1
    assert done.result.retry_after_s == 12.0  # what Vertex asked for reaches the retry policy


def test_a_server_error_on_create_is_unconfirmed(veo, fakes):
    # UNAVAILABLE may follow an operation that was created: never sent again blindly
    fakes.veo.queue("create", Reply(503, error_body(503, "UNAVAILABLE", "Service unavailable")))
    done = render(veo, render_task("veo"))
    assert (done.result.error_class, done.result.error_code) == ("UNKNOWN", "submit_unconfirmed")


def test_invalid_argument_falls_back_with_the_message(veo, fakes):
    fakes.veo.queue("create", Reply(400, error_body(400, "INVALID_ARGUMENT", "bad seed")))
    done = render(veo, render_task("veo"))
    assert (done.result.error_class, done.result.error_code) == ("FALLBACK", "bad_request")
    assert "bad seed" in done.result.message


def test_a_failed_operation_falls_back_and_charges_nothing(veo, fakes):
    fakes.veo.final = "ERROR"
    done = render(veo, render_task("veo"))
    assert (done.result.error_class, done.result.error_code) == ("FALLBACK", "provider_failed")
    assert done.result.cost_micros == 0


def test_garbled_create_answer_is_unknown_and_never_resent(veo, fakes):
    fakes.veo.queue("create", Reply(200, b'{"name": "projects/'))
    done = render(veo, render_task("veo"))
    assert (done.result.error_class, done.result.error_code) == ("UNKNOWN", "malformed_response")
    assert len(fakes.veo.calls("POST")) == 1


def test_a_garbled_poll_is_looked_at_again(veo, fakes):
    fakes.veo.polls_before_done = 0
    fakes.veo.queue("operation", Reply(200, b"not json"), Reply(500, error_body(500, "x", "y")))
    done = render(veo, render_task("veo"))
    assert done.result.error_class is None and done.looks == 3


def test_a_create_that_hangs_is_unknown_and_sent_once(live_env, fakes):
    fakes.veo.queue("create", Reply(200, {"name": "late"}, delay_s=2.0))
    veo = live_backend(live_env, "veo", timeout_s=0.3)

    done = render(veo, render_task("veo"))

    assert (done.result.error_class, done.result.error_code) == ("UNKNOWN", "submit_unconfirmed")
    assert len(fakes.veo.calls("POST")) == 1


def test_a_reported_video_missing_from_the_bucket_falls_back_and_is_charged(veo, fakes):
    # GIVEN Veo reporting a gcsUri it never wrote (the output is not where it says)
    fakes.veo.final = "NO_OBJECT"

    done = render(veo, render_task("veo"))

    assert (done.result.error_class, done.result.error_code) == ("FALLBACK", "output_unavailable")
    assert done.result.cost_micros == 800_000
