"""The render queue's order (issue 11): a free slot goes to the tenant holding the fewest of
the backend's slots, then to that tenant's ``priority: speed`` jobs, then to its oldest; a
``speed`` job, or one that waited past the spill bound, takes free capacity on a later
backend of its chain instead of waiting, as the same attempt (not a fallback)."""

from __future__ import annotations

from aiprod.domain.catalog import default_catalog
from aiprod.repositories import jobs, queue
from aiprod.repositories import slots as slot_records
from aiprod.services.capacity_admin import set_capacity
from support.scenarios import queue_job, start_order
from support.stuck import sweep


def _capacities(p, **limits: int) -> None:
    for backend, concurrent in limits.items():
        set_capacity(p.store, default_catalog(), backend, concurrent)


def test_a_small_tenant_is_served_between_a_big_tenants_batch(pipeline):
    # GIVEN runway limited to 2 renders at a time (one worker: every job is admitted first)
    p = pipeline(workers=1, simulation={"runway": {"latency_s": 10}}, render_deadline_s=60)
    _capacities(p, runway=2)

    # WHEN tenant "big" publishes 10 runway jobs and then tenant "small" publishes 3
    big = [queue_job(f"big{i}", "big", backends=["runway"]) for i in range(10)]
    small = [queue_job(f"small{i}", "small", backends=["runway"]) for i in range(3)]
    p.run(*big, *small)

    # THEN every job succeeded, and each freed slot went to the tenant holding fewer: the
    # small tenant's 3 jobs started before the big tenant's last 5
    order = start_order(p, "runway")
    assert {j["status"] for j in p.jobs()} == {"SUCCEEDED"} and len(order) == 13
    assert order[:2] == ["big0", "big1"]
    assert max(order.index(f"small{i}") for i in range(3)) < order.index("big5")
    assert [o for o in order if o.startswith("big")] == [f"big{i}" for i in range(10)]
    p.assert_books_balanced()


def test_within_a_tenant_speed_jobs_go_first_then_the_oldest(pipeline):
    # GIVEN runway running 1 render at a time
    p = pipeline(workers=1, simulation={"runway": {"latency_s": 10}}, render_deadline_s=60)
    _capacities(p, runway=1)

    # WHEN one tenant publishes 3 quality jobs and then a speed job, all pinned to runway
    quality = [queue_job(f"q{i}", "acme", backends=["runway"]) for i in range(3)]
    p.run(*quality, queue_job("fast", "acme", backends=["runway"], priority="speed"))

    # THEN the speed job, published last, runs as soon as the first slot frees
    assert start_order(p, "runway") == ["q0", "fast", "q1", "q2"]


def test_a_speed_job_takes_free_capacity_on_a_later_backend_at_once(pipeline):
    # GIVEN replicate (a speed job's first choice) and runway each running 1 render at a time
    p = pipeline(
        workers=1,
        simulation={b: {"latency_s": 10} for b in ("replicate", "runway")},
        render_deadline_s=60,
    )
    _capacities(p, replicate=1, runway=1)

    # WHEN 2 speed jobs arrive at once (chain: replicate, then runway)
    p.run(queue_job("s0", priority="speed"), queue_job("s1", priority="speed"))

    # THEN the second runs on runway from the start: one attempt each, neither queued, and
    # no fallback was counted
    jobs = {j["job_id"]: j for j in p.jobs()}
    assert [a["backend"] for a in jobs["s0"]["attempts"]] == ["replicate"]
    assert [a["backend"] for a in jobs["s1"]["attempts"]] == ["runway"]
    assert not p.events("job.queued")
    p.assert_books_balanced()


def test_a_backend_with_an_empty_queue_takes_speed_jobs_queued_elsewhere(pipeline):
    # GIVEN replicate and runway each running 1 render at a time, replicate's renders slow
    p = pipeline(
        workers=1,
        simulation={"replicate": {"latency_s": 100}, "runway": {"latency_s": 10}},
        render_deadline_s=200,
    )
    _capacities(p, replicate=1, runway=1)

    # WHEN 4 speed jobs arrive at once: 2 start (one per backend), 2 wait for replicate
    p.run(*[queue_job(f"s{i}", priority="speed") for i in range(4)])

    # THEN runway, its own queue empty, took a job waiting for replicate as it freed: every
    # job ran once (no fallback), a waiting job ran on runway with its hold exchanged for
    # runway's, and the books balance
    jobs = {j["job_id"]: j for j in p.jobs()}
    assert {j["status"] for j in jobs.values()} == {"SUCCEEDED"}
    assert all(len(j["attempts"]) == 1 for j in jobs.values())
    assert len(p.events("job.queued")) == 2
    moved = [a for j in jobs.values() for a in j["attempts"] if a.get("queued_at") is not None]
    assert len(moved) == 2 and "runway" in {a["backend"] for a in moved}
    assert slot_records.in_use(p.store, "runway") == slot_records.in_use(p.store, "replicate") == 0
    p.assert_books_balanced()


def test_a_job_that_waited_past_the_spill_bound_moves_to_a_free_backend(pipeline, clock):
    # GIVEN runway (a quality job's first choice) running 1 render at a time that never ends
    # within the test, replicate free, and a spill bound of 60 s
    p = pipeline(
        simulation={"runway": {"latency_s": 10_000}},
        render_deadline_s=5,
        queue_spill_after_s=60,
    )
    _capacities(p, runway=1)
    p.run(queue_job("first"), queue_job("second"))
    assert p.job("second")["attempts"][0]["state"] == "QUEUED"

    # WHEN it has waited less than the bound, a sweep leaves it waiting for runway
    clock.advance(30)
    sweep(p)
    assert p.job("second")["attempts"][0]["state"] == "QUEUED"

    # WHEN it has waited past the bound, the next sweep moves it to replicate, where it runs
    clock.advance(40)
    sweep(p)
    p.drain()
    second = p.job("second")
    assert [(a["backend"], a["state"]) for a in second["attempts"]] == [("replicate", "SUCCEEDED")]
    assert second["status"] == "SUCCEEDED"


def test_a_pinned_job_never_moves(pipeline, clock):
    # GIVEN runway running 1 render that never ends within the test and a spill bound of 60 s
    p = pipeline(
        simulation={"runway": {"latency_s": 10_000}},
        render_deadline_s=5,
        queue_spill_after_s=60,
    )
    _capacities(p, runway=1)

    # WHEN a job pinned to runway waits far past the bound
    p.run(
        queue_job("first", backends=["runway"]),
        queue_job("pinned", backends=["runway"], priority="speed"),
    )
    clock.advance(600)
    sweep(p)
    p.drain()

    # THEN it still waits for runway: its chain has nowhere else to go
    [attempt] = p.job("pinned")["attempts"]
    assert (attempt["backend"], attempt["state"]) == ("runway", "QUEUED")


def test_creates_per_minute_bound_how_many_renders_start_in_a_minute(pipeline, clock):
    # GIVEN runway with room for 10 renders at once but 2 creates a minute
    p = pipeline(simulation={"runway": {"latency_s": 1}}, render_deadline_s=60)
    set_capacity(p.store, default_catalog(), "runway", 10, creates_per_minute=2)

    # WHEN 5 runway jobs arrive at once
    p.run(*[queue_job(f"r{i}", backends=["runway"]) for i in range(5)])

    # THEN 2 started this minute and 3 wait; each later minute's sweep starts 2 more
    def started() -> int:
        return sum(1 for j in p.jobs() if j["attempts"][0]["state"] != "QUEUED")

    assert started() == 2 and len(p.submitted("runway")) == 2
    clock.advance(60)
    sweep(p)
    assert started() == 4
    clock.advance(60)
    sweep(p)
    assert {j["status"] for j in p.jobs()} == {"SUCCEEDED"} and len(p.submitted("runway")) == 5


def test_a_small_tenants_position_counts_turns_not_the_whole_queue(pipeline):
    # GIVEN runway running 1 render at a time, tenant "big" with 6 jobs waiting behind it
    # (one worker: every job is admitted before the first render's polls move the clock)
    p = pipeline(workers=1, simulation={"runway": {"latency_s": 10_000}}, render_deadline_s=5)
    _capacities(p, runway=1)
    p.run(*[queue_job(f"big{i}", "big", backends=["runway"]) for i in range(7)])

    # WHEN tenant "small" queues 2 jobs
    p.run(*[queue_job(f"small{i}", "small", backends=["runway"]) for i in range(2)])

    # THEN its first job is next (0 ahead: the tenants take turns), its second after one
    # more of each tenant's; the big tenant's last job has its own 5 and small's 2 ahead
    def ahead(job_id: str) -> int:
        return queue.queued_ahead(p.store, jobs.load(p.store, job_id))

    assert (ahead("small0"), ahead("small1"), ahead("big6")) == (0, 2, 7)


def test_a_small_capacity_keeps_the_whole_create_rate(pipeline, clock):
    # GIVEN veo running 1 render at a time with 10 creates a minute (its slot on one shard)
    p = pipeline(simulation={"veo": {"latency_s": 1}}, render_deadline_s=60)
    set_capacity(p.store, default_catalog(), "veo", 1, creates_per_minute=10)

    # WHEN 6 veo jobs arrive within a minute
    p.run(*[queue_job(f"v{i}", backends=["veo"], duration_s=8) for i in range(6)])

    # THEN all 6 ran in that minute, one at a time: the shard holding the one slot has the
    # whole rate, not an eighth of it
    assert {j["status"] for j in p.jobs()} == {"SUCCEEDED"} and len(p.submitted("veo")) == 6
