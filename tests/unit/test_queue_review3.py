"""Review of the render queue (issue 11: fair order, spill, creates per minute, queue heads,
the embedded store's range index): attacks written down as tests, first as strict xfails,
kept as regression tests once fixed (spill past an open circuit, spill behind a pinned speed
job, a start past the wall time, positions and the oldest-age gauge in the fair order, a low
create rate capping renders in flight, the 101st tenant)."""

from __future__ import annotations

from aiprod.adapters.embedded_store import EmbeddedStore
from aiprod.domain.budget import budget_day
from aiprod.domain.catalog import default_catalog
from aiprod.domain.health import Circuit, CircuitState
from aiprod.domain.policy import RetryPolicy
from aiprod.repositories import circuits as circuit_records
from aiprod.repositories import jobs, queue
from aiprod.repositories import slots as slot_records
from aiprod.services import queue_gauges
from aiprod.services.capacity_admin import set_capacity
from aiprod.services.slots import SlotBook
from support.scenarios import queue_job, start_order
from support.stuck import sweep

STALLED = {"simulation": {"runway": {"latency_s": 10_000}}, "render_deadline_s": 5}
REPLICATE_HOLD, RUNWAY_HOLD = 100_000, 600_000  # a default 5 s job's holds (catalog prices)


def _attempts(p, job_id: str) -> list[tuple[str, str]]:
    return [(a["backend"], a["state"]) for a in p.job(job_id)["attempts"]]


def _capacity(p, backend: str, concurrent: int, **rate) -> None:
    set_capacity(p.store, default_catalog(), backend, concurrent, **rate)


# --- spill -------------------------------------------------------------------------------


def test_a_queued_job_does_not_spill_to_a_backend_whose_circuit_is_open(pipeline, clock):
    # GIVEN runway (a quality job's first choice) full with a render that never ends, a
    # second job waiting for it, and replicate's circuit open for the next hour
    p = pipeline(workers=1, **STALLED, queue_spill_after_s=60)
    _capacity(p, "runway", 1)
    p.run(queue_job("first"), queue_job("second"))
    assert _attempts(p, "second") == [("runway", "QUEUED")]
    opened = Circuit(
        "replicate", CircuitState.OPEN, consecutive_failures=3, trips=1, open_until=clock() + 3600
    )
    p.store.run_transaction(lambda tx: circuit_records.save(tx, opened))

    # WHEN the job has waited past the spill bound and the reconciler sweeps
    clock.advance(90)
    sweep(p)

    # THEN nothing was sent to replicate while its circuit is open (a fallback would not be:
    # policy.fallback_steps skips a backend whose circuit does not admit)
    assert p.submitted("replicate") == []
    assert _attempts(p, "second") == [("runway", "QUEUED")]


def test_a_job_waiting_past_the_bound_spills_even_behind_its_tenants_pinned_speed_job(
    pipeline, clock
):
    # GIVEN runway full with a render that never ends; tenant acme waits on runway with a
    # speed job pinned to runway and a quality job whose chain goes on to replicate
    p = pipeline(workers=1, **STALLED, queue_spill_after_s=60)
    _capacity(p, "runway", 1)
    p.run(
        queue_job("first", "acme", backends=["runway"]),
        queue_job("pinned", "acme", backends=["runway"], priority="speed"),
        queue_job("movable", "acme"),
    )
    assert _attempts(p, "movable") == [("runway", "QUEUED")]

    # WHEN "movable" has waited far past the spill bound, replicate idle all along
    clock.advance(600)
    sweep(p)

    # THEN it took replicate's free capacity (architecture.md rule 5)
    assert _attempts(p, "movable") == [("replicate", "SUCCEEDED")]


def test_a_spill_whose_new_hold_does_not_fit_leaves_the_job_waiting_and_the_books_whole(
    pipeline, clock
):
    # GIVEN a budget with room for two replicate holds but not a replicate and a runway
    # hold, replicate (a speed job's first choice) full with a slow render
    limit = 2 * REPLICATE_HOLD + 100_000
    p = pipeline(
        workers=1,
        simulation={"replicate": {"latency_s": 100}},
        render_deadline_s=5,
        global_limit_micros=limit,
    )
    _capacity(p, "replicate", 1)

    # WHEN two speed jobs arrive: the second finds replicate full and runway's hold too big
    p.run(queue_job("s0", priority="speed"), queue_job("s1", priority="speed"))
    assert _attempts(p, "s1") == [("replicate", "QUEUED")]
    sweep(p)  # runway's queue is empty: it tries to take s1, whose runway hold does not fit

    # THEN s1 still waits for replicate with its own hold, runway took nothing (no slot, no
    # create counted) and the ledger holds exactly the two replicate holds
    assert _attempts(p, "s1") == [("replicate", "QUEUED")]
    assert p.submitted("runway") == []
    assert slot_records.in_use(p.store, "runway") == 0
    assert all(s.created == 0 for s in slot_records.load_all(p.store, "runway"))
    assert p.ledger()["held_micros"] == 2 * REPLICATE_HOLD

    # WHEN replicate's render ends, s1 runs there, and the books balance
    for _ in range(3):
        clock.advance(200)
        sweep(p)
    assert {j["job_id"]: j["status"] for j in p.jobs()} == {"s0": "SUCCEEDED", "s1": "SUCCEEDED"}
    p.assert_books_balanced()


def test_a_spill_across_the_budget_day_boundary_moves_the_hold_to_the_new_day(pipeline, clock):
    # GIVEN runway full with a 200 s render, a second job queued behind it one minute
    # before the budget day ends, and a spill bound of 60 s
    p = pipeline(
        workers=1,
        simulation={"runway": {"latency_s": 200}},
        render_deadline_s=5,
        queue_spill_after_s=60,
    )
    _capacity(p, "runway", 1)
    zone = p.app.settings.timezone
    today = budget_day(clock(), zone)
    while budget_day(clock() + 60, zone) == today:
        clock.advance(60)
    p.run(queue_job("first"), queue_job("second"))
    yesterday = p.day()
    assert _attempts(p, "second") == [("runway", "QUEUED")]

    # WHEN it spills after midnight
    clock.advance(90)
    assert p.day() != yesterday
    sweep(p)

    # THEN it ran on replicate, its hold taken on the new day and released on the old one;
    # once runway's render ends every day's books agree with the jobs
    second = p.job("second")
    assert _attempts(p, "second") == [("replicate", "SUCCEEDED")]
    assert all(p.day() in key for key in second["attempts"][0]["ledger_keys"])
    assert p.ledger(day=yesterday)["held_micros"] == RUNWAY_HOLD  # "first" only
    clock.advance(300)
    sweep(p)
    assert p.job("first")["status"] == "SUCCEEDED"
    p.assert_books_balanced()


def test_a_spilled_job_that_fails_falls_back_to_the_backend_it_waited_for(pipeline, clock):
    # GIVEN runway full with a slow render and a second job queued behind it, replicate
    # failing every render (FALLBACK)
    p = pipeline(
        workers=1,
        simulation={"runway": {"latency_s": 100}, "replicate": {"failure_rate": 1.0}},
        render_deadline_s=5,
        queue_spill_after_s=60,
    )
    _capacity(p, "runway", 1)
    p.run(queue_job("first"), queue_job("second"))

    # WHEN it spills to replicate and fails there, and runway's slot frees later
    clock.advance(70)
    sweep(p)
    for _ in range(3):
        clock.advance(200)
        sweep(p)

    # THEN it fell back to runway (never tried) and succeeded: each backend once, books whole
    assert _attempts(p, "second") == [("replicate", "FAILED"), ("runway", "SUCCEEDED")]
    assert slot_records.in_use(p.store, "runway") == slot_records.in_use(p.store, "replicate") == 0
    p.assert_books_balanced()


def test_a_drainer_with_a_stale_pick_does_not_start_a_job_twice(pipeline, monkeypatch):
    # GIVEN runway with 2 slots, one taken, and one job waiting behind it
    p = pipeline(workers=1, **STALLED)
    _capacity(p, "runway", 2)
    p.run(queue_job("first", backends=["runway"]))
    _capacity(p, "runway", 1)
    p.run(queue_job("second", backends=["runway"]))
    _capacity(p, "runway", 2)
    assert _attempts(p, "second") == [("runway", "QUEUED")]

    # WHEN the drain's plain read keeps answering with the same stale pick (another drainer
    # started it meanwhile, the read not caught up)
    queue = p.app.queue
    stale = jobs.load(p.store, "second")
    monkeypatch.setattr(
        queue, "_next", lambda backend, passed, circuits: None if stale.job_id in passed else stale
    )
    started = queue.drain("runway", most=5)
    p.drain()

    # THEN it started once: one create, one more slot in use, the attempt moved once
    assert started == 1
    assert start_order(p, "runway") == ["first", "second"]
    assert slot_records.in_use(p.store, "runway") == 2
    assert _attempts(p, "second") == [("runway", "RUNNING")]


# --- wall time ---------------------------------------------------------------------------


def test_a_drain_does_not_start_a_job_past_its_wall_time(pipeline, clock):
    # GIVEN a 100 s wall time, runway running 1 render at a time, the first render taking
    # 110 s (its render function polls until done) and a second job waiting behind it
    p = pipeline(
        workers=1,
        simulation={"runway": {"latency_s": 110}},
        render_deadline_s=600,
        retry=RetryPolicy(max_wall_s=100),
    )
    _capacity(p, "runway", 1)

    # WHEN the first render ends (after the second job's wall time ran out) and its outcome
    # frees the slot and drains runway
    p.run(queue_job("first", backends=["runway"]), queue_job("second", backends=["runway"]))
    second = p.job("second")
    assert clock() > second["created_at"] + 100

    # THEN the second job was not rendered: it fails for its wall time, nothing sent
    assert start_order(p, "runway") == ["first"]


# --- position and gauges -----------------------------------------------------------------


def test_a_bounded_position_read_never_shows_a_deep_job_as_next(pipeline):
    # GIVEN runway full; tenant "zz" queues 3 jobs, then tenant "aa" queues 5
    p = pipeline(workers=1, **STALLED)
    _capacity(p, "runway", 1)
    p.run(queue_job("first", backends=["runway"]))
    p.run(*[queue_job(f"z{i}", "zz", backends=["runway"]) for i in range(3)])
    p.run(*[queue_job(f"a{i}", "aa", backends=["runway"]) for i in range(5)])

    # WHEN z2's position is read with a bound of 3 ("3 means 3 or more")
    z2 = jobs.load(p.store, "z2")
    unbounded = queue.queued_ahead(p.store, z2)

    # THEN it says 3 or more (unbounded: its own 2 and as many of aa's, 4), not "next"
    assert unbounded == 4
    assert queue.queued_ahead(p.store, z2, limit=3) == 3


class _Gauges:
    def __init__(self):
        self.sampled: dict[str, dict] = {}

    def queue_sampled(self, backend: str, **values) -> None:
        self.sampled[backend] = values


def test_the_oldest_age_gauge_sees_a_late_tenants_old_job(pipeline, clock, monkeypatch):
    # GIVEN runway full; tenant "zz" queued a job 1000 s ago, then tenant "aa" queued 5
    p = pipeline(workers=1, **STALLED)
    _capacity(p, "runway", 1)
    p.run(queue_job("first", backends=["runway"]), queue_job("z0", "zz", backends=["runway"]))
    clock.advance(1000)
    p.run(*[queue_job(f"a{i}", "aa", backends=["runway"]) for i in range(5)])

    # WHEN the gauges are sampled with a read bound smaller than the queue (1000 in
    # production, 3 here)
    monkeypatch.setattr(queue, "QUEUE_READ", 3)
    gauges = _Gauges()
    queue_gauges.sample(p.store, p.app.slots, gauges, ["runway"], clock())

    # THEN the oldest queued job's age is z0's, about 1000 s
    assert gauges.sampled["runway"]["oldest_age_s"] >= 1000


def test_a_position_counts_the_tenants_served_first_for_holding_fewer_slots(pipeline, clock):
    # GIVEN runway running 2 renders of tenant "a" (100 s each), a's third job waiting, then
    # tenant "b"'s first job
    p = pipeline(workers=1, simulation={"runway": {"latency_s": 100}}, render_deadline_s=5)
    _capacity(p, "runway", 2)
    p.run(*[queue_job(f"a{i}", "a", backends=["runway"]) for i in range(3)])
    p.run(queue_job("b0", "b", backends=["runway"]))
    shown = queue.queued_ahead(p.store, jobs.load(p.store, "a2"))

    # WHEN a's renders end and the freed slots are handed out
    clock.advance(200)
    sweep(p)
    sweep(p)

    # THEN b0 (its tenant holding none) started before a2, so a2 had 1 job ahead of it
    order = start_order(p, "runway")
    assert order.index("b0") < order.index("a2")
    assert shown == 1


# --- creates per minute ------------------------------------------------------------------


def test_a_low_create_rate_does_not_cap_renders_in_flight(pipeline, clock):
    # GIVEN runway with 8 renders at once and 2 creates a minute, renders lasting hours
    p = pipeline(workers=1, **STALLED)
    _capacity(p, "runway", 8, creates_per_minute=2)

    # WHEN 8 runway jobs arrive and 4 minutes pass (a sweep each minute)
    p.run(*[queue_job(f"r{i}", backends=["runway"]) for i in range(8)])
    for _ in range(4):
        clock.advance(60)
        sweep(p)

    # THEN 2 started each minute: all 8 render at once, within both limits
    assert len(p.submitted("runway")) == 8
    assert slot_records.in_use(p.store, "runway") == 8


# --- slot shards -------------------------------------------------------------------------


def test_a_slot_given_back_to_a_shard_written_before_tenant_counts_is_released():
    # GIVEN a shard document from before per-tenant counts: {"backend", "index", "in_use"}
    store = EmbeddedStore()
    book = SlotBook(default_catalog())
    store.set(slot_records.COLLECTION, "runway#3", {"backend": "runway", "index": 3, "in_use": 2})

    # WHEN a tenant's slot is given back to it (and an untenanted one)
    store.run_transaction(lambda tx: book.give_back(tx, "runway#3", "acme"))
    store.run_transaction(lambda tx: book.give_back(tx, "runway#3", None))

    # THEN both slots are free, no tenant is counted below zero, and it takes again
    shard = slot_records.load(store, "runway", 3)
    assert (shard.in_use, shard.tenants) == (0, {})
    assert book.held_by_tenant(store, "runway") == {}


# --- queue heads -------------------------------------------------------------------------


def test_queue_heads_reads_one_head_per_tenant_whatever_the_tenant_names(pipeline):
    # GIVEN runway full and tenants whose names are prefixes of each other, with "-" and "_"
    # (which sort before "|"), each with two jobs waiting, and untenanted jobs
    p = pipeline(workers=1, **STALLED)
    _capacity(p, "runway", 1)
    p.run(queue_job("first", backends=["runway"]))
    tenants = ["a", "a-b", "a_b", "ab", "a0", "a-", "b", "0"]
    for n in range(2):
        p.run(*[queue_job(f"j{i}.{n}", t, backends=["runway"]) for i, t in enumerate(tenants)])
        p.run(queue_job(f"untenanted.{n}", backends=["runway"]))
    assert len([j for j in p.jobs() if j["queue_key"]]) == 2 * len(tenants) + 2

    # THEN queue_heads has each tenant's oldest job once (untenanted as one tenant)
    heads = sorted(j.job_id for j in queue.queue_heads(p.store, "runway"))
    assert heads == sorted([f"j{i}.0" for i in range(len(tenants))] + ["untenanted.0"])


def test_the_fair_order_sees_a_tenant_past_the_first_hundred(pipeline):
    # GIVEN runway full; tenant "zzz" queues first (the oldest job, holding no slot), then
    # 100 other tenants queue one job each
    p = pipeline(workers=1, **STALLED)
    _capacity(p, "runway", 1)
    p.run(queue_job("first", backends=["runway"]), queue_job("oldest", "zzz", backends=["runway"]))
    p.run(*[queue_job(f"t{i:03d}", f"t{i:03d}", backends=["runway"]) for i in range(100)])

    # THEN the queue's heads include zzz's job, the one the next free slot should go to
    assert "oldest" in {j.job_id for j in queue.queue_heads(p.store, "runway")}


# --- the embedded store's range index ----------------------------------------------------


def test_the_range_index_follows_values_that_change_appear_and_go_none():
    store = EmbeddedStore()
    for i in range(5):
        store.set("c", f"d{i}", {"k": f"b|{i}"})
    assert [d["k"] for d in store.query("c", "k", ">=", "b|", 10)] == [f"b|{i}" for i in range(5)]

    # WHEN values move, go None, appear, and tie (in and out of transactions)
    store.set("c", "d0", {"k": "b|9"})
    store.set("c", "d1", {"k": None})
    store.set("c", "d2", {})
    store.run_transaction(lambda tx: tx.set("c", "d5", {"k": "b|0"}))
    store.run_transaction(lambda tx: tx.set("c", "d6", {"k": "b|3"}))

    # THEN range queries answer as a scan would, ordered by value, None never matching
    got = [(d["k"]) for d in store.query("c", "k", ">=", "b|", 10)]
    assert got == ["b|0", "b|3", "b|3", "b|4", "b|9"]
    assert [d["k"] for d in store.query("c", "k", "<", "b|3", 10)] == ["b|0"]
    assert [d["k"] for d in store.query("c", "k", ">", "b|3", 1)] == ["b|4"]
    assert [d["k"] for d in store.query("c", "k", "<=", "b|3", 10)] == ["b|0", "b|3", "b|3"]


def test_a_job_queued_behind_an_open_circuit_moves_to_a_free_backend_at_once(pipeline, clock):
    # GIVEN runway full with a render that never ends, a quality job waiting for it (chain:
    # runway, then replicate) well inside the spill bound, and runway's circuit then open
    p = pipeline(workers=1, **STALLED, queue_spill_after_s=3600)
    _capacity(p, "runway", 1)
    p.run(queue_job("first"), queue_job("second"))
    opened = Circuit(
        "runway", CircuitState.OPEN, consecutive_failures=3, trips=1, open_until=clock() + 3600
    )
    p.store.run_transaction(lambda tx: circuit_records.save(tx, opened))

    # WHEN the reconciler sweeps a few seconds later
    clock.advance(5)
    sweep(p)

    # THEN the waiting job moved to replicate and ran there: waiting for a backend that
    # admits nothing counts as having waited long enough
    assert _attempts(p, "second") == [("replicate", "SUCCEEDED")]


def test_a_job_admitted_to_a_backend_starts_there_even_while_its_circuit_is_open(pipeline, clock):
    # GIVEN runway full, a job pinned to runway waiting for it, and runway's circuit open
    p = pipeline(workers=1, **STALLED)
    _capacity(p, "runway", 1)
    p.run(queue_job("first", backends=["runway"]), queue_job("pinned", backends=["runway"]))
    opened = Circuit(
        "runway", CircuitState.OPEN, consecutive_failures=3, trips=1, open_until=clock() + 3600
    )
    p.store.run_transaction(lambda tx: circuit_records.save(tx, opened))

    # WHEN runway's slot frees (capacity raised) and the queue drains
    _capacity(p, "runway", 2)
    p.app.queue.drain("runway")

    # THEN the pinned job starts on runway (it fails fast there and ends by the usual rules,
    # rather than waiting out the cooldown with nowhere else to go)
    assert _attempts(p, "pinned")[0][0] == "runway"
    assert _attempts(p, "pinned")[0][1] != "QUEUED"
