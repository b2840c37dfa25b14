"""Each port's embedded twin and its Google Cloud adapter, as one parametrized fixture.

A contract test takes ``store`` or ``bus`` and runs once per implementation; the emulator-
backed parameters carry the ``emulator`` mark (and need the session's emulators). The
``VideoBackend`` and ``MetricSink`` suites build their subjects in their own modules, on the
shared ``clock`` fixture (``fakes.clock.FakeClock``: it moves only when a test moves it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aiprod.adapters.embedded_bus import EmbeddedBus
from aiprod.adapters.embedded_store import EmbeddedStore
from aiprod.ports import Bus, DocumentStore

EMULATED = pytest.mark.emulator


@pytest.fixture(params=["embedded", pytest.param("firestore", marks=EMULATED)])
def store(request, project_id: str) -> DocumentStore:
    if request.param == "embedded":
        return EmbeddedStore()
    from aiprod_tools.stack.provision import emulator_store

    emulators = request.getfixturevalue("emulators")
    return emulator_store(emulators.env(project_id))


@pytest.fixture(params=["embedded", pytest.param("pubsub", marks=EMULATED)])
def bus(request, project_id: str) -> Iterator[Bus]:
    if request.param == "embedded":
        embedded = EmbeddedBus(workers=1)
        yield embedded
        embedded.close()
        return
    from aiprod_tools.stack.provision import create_topology, emulator_bus

    emulators = request.getfixturevalue("emulators")
    pubsub = emulator_bus(emulators.env(project_id), prefix="contract-")
    create_topology(pubsub)  # topics and pull subscriptions; no push endpoints
    yield pubsub
