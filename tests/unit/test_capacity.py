"""Capacity as data (issue 11, part 1): catalog defaults, run-time settings through
``aiprod capacity``, and the deployed render functions sized for the ceiling."""

from __future__ import annotations

import json
import math

import pytest

from aiprod import topology
from aiprod.domain.catalog import default_catalog
from aiprod.domain.messages import ErrorClass, RenderOutcome
from aiprod.domain.policy import counts_against_provider
from aiprod.exceptions import OperatorInputError
from aiprod.services.capacity_admin import set_capacity, show
from aiprod_tools import cli
from aiprod_tools.cli import context
from fakes.store import LedgerWatchingStore


def derived(max_concurrent: int, concurrency: int) -> int:
    """The sizing rule, spelled independently of topology: the ceiling plus its headroom,
    spread over requests per instance, rounded up."""
    return math.ceil(max_concurrent * (1 + topology.RENDER_HEADROOM_PCT / 100) / concurrency)


@pytest.mark.parametrize("backend", topology.BACKENDS)
def test_each_render_function_is_deployed_for_its_backends_capacity_ceiling(backend):
    capacity = default_catalog().backends[backend].capacity
    spec = topology.function(f"render_{backend}")
    # the platform (Cloud Run answering 429 past max instances x concurrency) is never the
    # bottleneck, even at the highest capacity an operator may set without a deploy
    assert spec.max_instances * spec.concurrency >= capacity.max_concurrent >= capacity.concurrent
    # AND the deployed max instances is derived from that ceiling, not picked by hand
    assert spec.max_instances == derived(capacity.max_concurrent, spec.concurrency)


def test_the_deploy_configuration_reads_the_ceilings_the_validated_catalog_holds():
    catalog = default_catalog()
    wanted = {b: spec.capacity.max_concurrent for b, spec in catalog.backends.items()}
    assert topology.capacity_ceilings() == wanted


@pytest.mark.parametrize("ceiling", [1, 7, 8, 20, 64, 100, 333])
def test_a_raised_ceiling_is_deployed_with_more_instances(ceiling):
    # GIVEN a catalog whose runway ceiling is changed (the others as shipped)
    ceilings = {**topology.capacity_ceilings(), "runway": ceiling}

    # WHEN the render functions are derived from it
    runway = next(s for s in topology.render_functions(ceilings) if s.name == "render_runway")

    # THEN they serve the ceiling, with the headroom, and no more instances than that needs
    assert runway.max_instances * runway.concurrency >= ceiling * 1.25
    assert runway.max_instances == derived(ceiling, runway.concurrency)
    assert (runway.max_instances - 1) * runway.concurrency < ceiling * 1.25


@pytest.mark.parametrize("backend", topology.BACKENDS)
def test_capacity_set_takes_the_ceiling_and_refuses_one_more(backend):
    store, catalog = LedgerWatchingStore(), default_catalog()
    ceiling = catalog.backends[backend].capacity.max_concurrent

    row = set_capacity(store, catalog, backend, ceiling)
    assert row.concurrent == ceiling <= row.platform  # what the deployed function serves

    with pytest.raises(OperatorInputError, match="sized for"):
        set_capacity(store, catalog, backend, ceiling + 1)
    assert next(r for r in show(store, catalog) if r.backend == backend).concurrent == ceiling


def test_show_gives_the_catalog_default_until_an_operator_sets_one():
    store = LedgerWatchingStore()
    catalog = default_catalog()

    before = {r.backend: (r.concurrent, r.source) for r in show(store, catalog)}
    row = set_capacity(store, catalog, "runway", 10)
    after = {r.backend: (r.concurrent, r.source) for r in show(store, catalog)}

    assert before["runway"] == (catalog.backends["runway"].capacity.concurrent, "catalog")
    assert row.concurrent == 10 and after["runway"][0] == 10
    assert after["runway"][1].startswith("set ")
    assert after["veo"] == before["veo"]  # one backend's setting leaves the others alone


@pytest.mark.parametrize(
    ("backend", "concurrent", "creates", "says"),
    [
        ("midjourney", 5, None, "unknown backend"),
        ("runway", 0, None, "at least 1"),
        ("runway", 21, None, "sized for"),
        ("replicate", 10, 0, "creates per minute"),
    ],
)
def test_a_capacity_the_service_cannot_take_is_refused_naming_why(
    backend, concurrent, creates, says
):
    with pytest.raises(OperatorInputError, match=says):
        set_capacity(LedgerWatchingStore(), default_catalog(), backend, concurrent, creates)


def test_the_cli_sets_and_shows_capacity(monkeypatch, capsys):
    store = LedgerWatchingStore()
    monkeypatch.setattr(context, "make_app", lambda: _App(store))

    assert cli.main(["capacity", "set", "replicate", "30", "--creates-per-minute", "300"]) == 0
    capsys.readouterr()
    assert cli.main(["capacity", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    replicate = next(r for r in shown if r["backend"] == "replicate")
    assert (replicate["concurrent"], replicate["creates_per_minute"]) == (30, 300)
    assert cli.main(["capacity", "set", "runway", "500"]) == 1  # above the ceiling


class _App:
    def __init__(self, store):
        self.store, self.catalog = store, default_catalog()


def test_a_throttled_create_does_not_count_against_the_circuit():
    throttled = RenderOutcome(
        job_id="j1",
        attempt=1,
        backend="runway",
        model="gen4.5",
        succeeded=False,
        error_class=ErrorClass.RETRY_SAME,
        error_code="throttled",
    )
    assert counts_against_provider(throttled) is False
