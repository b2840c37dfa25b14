"""The Replicate adapter (real ``replicate`` SDK) against the Replicate fake: every status,
including ``aborted``, which SDK 1.0.7's own model refuses."""

from __future__ import annotations

import pytest

from aiprod.domain.catalog import default_catalog
from fakes.base import Reply
from fakes.replicate import problem
from support.live import live_backend, render, render_task


@pytest.fixture
def replicate(live_env):
    return live_backend(live_env, "replicate")


@pytest.mark.parametrize("as_list", [False, True])
def test_a_prediction_is_kept_and_charged_per_output_second(
    replicate, fakes, storage_emulator, as_list
):
    # GIVEN a prediction that processes for two looks (output a URL, or a list of URLs)
    fakes.replicate.polls_before_done, fakes.replicate.output_as_list = 2, as_list

    done = render(replicate, render_task("replicate"))

    # THEN 5 s at 720p cost 5 x $0.02, and the video was copied into the bucket
    assert done.result.error_class is None, done.result
    assert (done.looks, done.result.cost_micros) == (3, 100_000)
    assert done.result.output_uri == f"gs://{fakes.bucket}/videos/job-1/attempt-1.mp4"
    kept = storage_emulator.read(fakes.bucket, "videos/job-1/attempt-1.mp4")
    assert kept == fakes.replicate.video(done.task_id) and done.result.qa.passed


def test_the_requests_match_replicates_wire_format(replicate, fakes):
    render(replicate, render_task("replicate", aspect_ratio="9:16", resolution="480p"))
    render(replicate, render_task("replicate", image=True, job_id="job-2"))

    text, image = fakes.replicate.calls("POST")
    assert text.path == "/v1/models/wan-video/wan-2.2-t2v-fast/predictions"
    assert image.path == "/v1/models/wan-video/wan-2.2-i2v-fast/predictions"
    for call in (text, image):
        assert call.header("authorization") == f"Bearer {fakes.replicate.token}"
        assert call.header("prefer") == "wait=2"  # bounds the create (timeout 2 s here)
    assert text.json() == {
        "input": {
            "prompt": "a paper boat in the rain",
            "resolution": "480p",
            "aspect_ratio": "9:16",
            "num_frames": 81,
        }
    }
    assert image.json()["input"]["image"] == "https://images.example.com/bottle.png"
    polls = fakes.replicate.calls("GET", "/v1/predictions/")
    assert polls and {p.path.rsplit("/", 1)[-1] for p in polls} <= set(fakes.replicate.started)


@pytest.mark.parametrize("retry_after", [{"retry-after": "1"}, {}])
def test_throttled_create_is_retry_same_and_sent_once(replicate, fakes, retry_after):
    body = problem(429, "Too Many Requests", "Request was throttled.")
    fakes.replicate.queue("create", Reply(429, body, retry_after))

    done = render(replicate, render_task("replicate"))

    assert (done.result.error_class, done.result.error_code) == ("RETRY_SAME", "throttled")
    assert len(fakes.replicate.calls("POST")) == 1


def test_a_server_error_on_create_is_unconfirmed(replicate, fakes):
    # a 5xx may hide a created prediction: UNKNOWN, never sent again blindly
    fakes.replicate.queue("create", Reply(500, problem(500, "Internal Server Error", "")))
    done = render(replicate, render_task("replicate"))
    assert (done.result.error_class, done.result.error_code) == ("UNKNOWN", "submit_unconfirmed")
    assert len(fakes.replicate.calls("POST")) == 1


def test_invalid_input_falls_back_with_the_detail(replicate, fakes):
    body = problem(422, "Input validation failed", "- input.num_frames: must be <= 121")
    fakes.replicate.queue("create", Reply(422, body))
    done = render(replicate, render_task("replicate"))
    assert (done.result.error_class, done.result.error_code) == ("FALLBACK", "bad_request")
    assert "num_frames" in done.result.message


@pytest.mark.parametrize(
    ("final", "error", "verdict"),
    [
        ("failed", "CUDA out of memory", ("FALLBACK", "provider_failed")),
        ("failed", "NSFW content detected", ("TERMINAL", "content_policy")),
        ("canceled", None, ("FALLBACK", "cancelled")),
        ("aborted", None, ("FALLBACK", "provider_failed")),
    ],
)
def test_unsuccessful_predictions_are_classified_and_not_charged(
    replicate, fakes, final, error, verdict
):
    fakes.replicate.final = final
    fakes.replicate.error = error or fakes.replicate.error

    done = render(replicate, render_task("replicate"))

    assert (done.result.error_class, done.result.error_code) == verdict
    assert done.result.cost_micros == 0 and done.result.output_uri is None


def test_compute_time_pricing_charges_predict_time_even_on_failure(live_env, fakes):
    # GIVEN a model billed by hardware time ($0.0014/s) that ran 38.2 s and failed
    catalog = default_catalog()
    spec = catalog.model("replicate", "wan-video/wan-2.2-t2v-fast")
    timed = spec.model_copy(update={"cost_basis": "predict_time", "hardware_micros_per_s": 1400})
    backend = live_backend(live_env, "replicate")
    backend._inner._catalog = _with_model(catalog, "wan-video/wan-2.2-t2v-fast", timed)
    fakes.replicate.final = "failed"

    done = render(backend, render_task("replicate"))

    assert done.result.error_code == "provider_failed"
    assert done.result.cost_micros == round(38.2 * 1400)


def test_garbled_create_answer_is_unknown_and_never_resent(replicate, fakes):
    fakes.replicate.queue("create", Reply(201, b'{"id": "p-1", "sta'))
    done = render(replicate, render_task("replicate"))
    assert (done.result.error_class, done.result.error_code) == ("UNKNOWN", "malformed_response")
    assert len(fakes.replicate.calls("POST")) == 1


def test_a_garbled_poll_is_looked_at_again(replicate, fakes):
    fakes.replicate.polls_before_done = 0
    fakes.replicate.queue("prediction", Reply(200, b"<html>bad gateway"))
    done = render(replicate, render_task("replicate"))
    assert done.result.error_class is None and done.looks == 2


def test_a_status_replicate_may_add_later_is_looked_at_again_not_failed(replicate, fakes):
    # GIVEN a poll answering a status this adapter does not know (it may still be rendering)
    fakes.replicate.polls_before_done = 0
    fakes.replicate.queue("prediction", Reply(200, {"id": "p", "status": "queued"}))

    done = render(replicate, render_task("replicate"))

    # THEN it is looked at again and succeeds: no fallback, no second prediction
    assert done.result.error_class is None and done.looks == 2
    assert len(fakes.replicate.calls("POST")) == 1


def test_a_create_that_hangs_is_unknown_and_sent_once(live_env, fakes):
    fakes.replicate.queue("create", Reply(201, {"id": "late"}, delay_s=2.0))
    replicate = live_backend(live_env, "replicate", timeout_s=0.3)

    done = render(replicate, render_task("replicate"))

    assert (done.result.error_class, done.result.error_code) == ("UNKNOWN", "submit_unconfirmed")
    assert len(fakes.replicate.calls("POST")) == 1


def test_an_expired_output_url_falls_back_and_is_still_charged(replicate, fakes):
    # GIVEN the output already deleted (Replicate keeps outputs for an hour)
    fakes.replicate.outputs_gone = True
    done = render(replicate, render_task("replicate"))
    assert (done.result.error_class, done.result.error_code) == ("FALLBACK", "output_unavailable")
    assert done.result.cost_micros == 100_000


def _with_model(catalog, name, spec):
    backend = catalog.backends["replicate"]
    models = {**backend.models, name: spec}
    backends = {**catalog.backends, "replicate": backend.model_copy(update={"models": models})}
    return catalog.model_copy(update={"backends": backends})
