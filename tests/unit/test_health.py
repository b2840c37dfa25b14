"""The per-backend circuit breaker, as pure transitions."""

from __future__ import annotations

from aiprod.domain.health import (
    BASE_COOLDOWN_S,
    FAILURES_TO_OPEN,
    MAX_COOLDOWN_S,
    PROBE_TIMEOUT_S,
    Circuit,
    CircuitState,
)

T = 1_000.0


def failed(circuit: Circuit, times: int, now: float = T) -> Circuit:
    for _ in range(times):
        circuit = circuit.record_failure(now, "unavailable")
    return circuit


def tripped(now: float = T) -> Circuit:
    return failed(Circuit("runway"), FAILURES_TO_OPEN, now)


def test_two_failures_keep_the_circuit_closed():
    circuit = failed(Circuit("runway"), FAILURES_TO_OPEN - 1)
    assert circuit.state is CircuitState.CLOSED
    assert circuit.admits(T)
    assert (circuit.consecutive_failures, circuit.last_error) == (2, "unavailable")


def test_third_consecutive_failure_opens_for_the_base_cooldown():
    # WHEN a backend fails three times in a row
    circuit = tripped()

    # THEN it is open for 60 s and admits nothing before then
    assert circuit.state is CircuitState.OPEN
    assert circuit.open_until == T + BASE_COOLDOWN_S == T + 60
    assert not circuit.admits(T + 59.9)
    assert circuit.admits(T + 60)


def test_a_success_in_between_resets_the_count():
    circuit = failed(Circuit("runway"), 2).record_success()
    assert failed(circuit, 2).state is CircuitState.CLOSED


def test_half_open_admits_exactly_one_probe_until_it_times_out():
    # GIVEN an open circuit whose cooldown has passed
    now = T + 60
    circuit = tripped()
    assert circuit.needs_probe(now)

    # WHEN one caller is elected as the probe
    probing = circuit.elect_probe(now)

    # THEN nobody else is admitted while the probe is in flight
    assert probing.state is CircuitState.HALF_OPEN
    assert not probing.admits(now)
    assert not probing.admits(now + PROBE_TIMEOUT_S - 1)
    assert not probing.needs_probe(now + 1)
    # AND a probe that never reports frees the slot after its timeout
    assert probing.admits(now + PROBE_TIMEOUT_S)


def test_probe_success_closes_and_forgets_the_trips():
    closed = tripped().elect_probe(T + 60).record_success()
    assert closed.state is CircuitState.CLOSED
    assert (closed.consecutive_failures, closed.trips, closed.probe_started_at) == (0, 0, None)
    assert closed.last_error is None
    # AND the next trip starts again from the base cooldown
    assert tripped(T + 100).open_until == T + 100 + BASE_COOLDOWN_S


def test_probe_failure_reopens_with_a_doubled_cooldown():
    # GIVEN a circuit that tripped once and whose probe now fails
    first_probe = T + 60
    reopened = tripped().elect_probe(first_probe).record_failure(first_probe + 5, "unavailable")

    # THEN it is open again, for 120 s from the failure
    assert reopened.state is CircuitState.OPEN
    assert reopened.trips == 2
    assert reopened.open_until == first_probe + 5 + 2 * BASE_COOLDOWN_S
    assert reopened.probe_started_at is None

    # AND a third trip waits 240 s
    second_probe = reopened.open_until
    again = reopened.elect_probe(second_probe).record_failure(second_probe, "unavailable")
    assert again.open_until == second_probe + 4 * BASE_COOLDOWN_S


def test_cooldown_is_capped():
    circuit = tripped()
    for _ in range(12):
        probe_at = circuit.open_until
        circuit = circuit.elect_probe(probe_at).record_failure(probe_at, "unavailable")
    assert circuit.open_until - probe_at == MAX_COOLDOWN_S


def test_late_failures_while_open_do_not_extend_the_cooldown():
    # GIVEN an open circuit and an attempt dispatched before it opened that now fails
    circuit = tripped()
    late = circuit.record_failure(T + 30, "unavailable")

    # THEN the circuit stays open until the same moment, with no extra trip
    assert late.state is CircuitState.OPEN
    assert (late.open_until, late.trips) == (circuit.open_until, circuit.trips)


def test_an_operator_hold_outlasts_running_renders_until_its_probe():
    # GIVEN an operator opened a closed circuit for 10 minutes
    held = Circuit("runway").forced_open(T, 600)
    assert (held.state, held.operator_hold, held.admits(T + 599)) == (
        CircuitState.OPEN,
        True,
        False,
    )

    # WHEN a render that was already running succeeds, or fails THEN it stays open
    assert held.record_success() == held
    assert failed(held, 1).state is CircuitState.OPEN
    assert failed(held, 1).record_success().state is CircuitState.OPEN
    # AND after the hold one probe decides, as after a trip
    probe = held.elect_probe(T + 600)
    closed = probe.record_success()
    assert (closed.state, closed.operator_hold, closed.admits(T + 600)) == (
        CircuitState.CLOSED,
        False,
        True,
    )
    reopened = probe.record_failure(T + 601, "unavailable")
    assert (reopened.state, reopened.operator_hold) == (CircuitState.OPEN, False)


def test_an_operator_close_forgets_failures_trips_and_the_hold():
    for circuit in (tripped(), Circuit("runway").forced_open(T, 600)):
        closed = circuit.forced_closed()
        assert (closed.state, closed.consecutive_failures, closed.trips) == ("closed", 0, 0)
        assert (closed.operator_hold, closed.last_error, closed.admits(T)) == (False, None, True)
