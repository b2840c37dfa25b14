"""The real handlers on the embedded bus and store, with simulated providers: the happy
paths, a text job and an image job rendered and charged.

Each scenario publishes JobRequests to ``jobs``, drains the bus, then reads what the system
recorded: job documents, ledger entries, circuit states, published events and provider
submissions. Every scenario ends with the books balanced: nothing held, and each budget
scope's spend equal to the cost of its jobs.
"""

from __future__ import annotations

from support.scenarios import IMAGE, TEXT, attempts


def test_text_job_renders_on_runway_and_is_charged_its_cost(pipeline):
    # GIVEN every provider healthy
    p = pipeline()

    # WHEN a text job is published
    p.run(TEXT)

    # THEN it succeeded on runway gen4.5 (quality first) and was charged 5 s x $0.12
    job = p.job("t1")
    assert job["status"] == "SUCCEEDED"
    assert attempts(job) == [("runway", "SUCCEEDED")]
    assert job["output_uri"] == "sim://runway/t1/attempt-1.mp4"
    assert job["cost_micros"] == 600_000
    # AND the user saw it accepted then completed, with cost, output and metadata
    assert [e["type"] for e in p.events(job_id="t1")] == ["job.accepted", "job.completed"]
    done = p.events("job.completed")[0]
    assert (done["backend"], done["model"], done["cost_usd"]) == ("runway", "gen4.5", "0.600000")
    assert done["output_uri"] == job["output_uri"]
    assert done["backends_tried"] == ["runway"]
    assert done["metadata"] == {"campaign": "x"}
    assert len(p.submitted("runway")) == 1
    assert p.ledger()["spent_micros"] == 600_000
    p.assert_books_balanced()


def test_image_job_renders_on_the_image_model(pipeline):
    p = pipeline()
    p.run(IMAGE)

    job = p.job("i1")
    assert job["status"] == "SUCCEEDED"
    assert [(a["backend"], a["model"]) for a in job["attempts"]] == [("runway", "gen4_turbo")]
    assert job["cost_micros"] == 250_000
    p.assert_books_balanced()
