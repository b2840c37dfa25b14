"""A backend's observed model quality (``backends/{name}#quality``) round-trips on both
stores, written fresh and rewritten after a read, with catalog model names as map keys
(slashes and dots: ``wan-video/wan-2.2-t2v-fast``, ``gen4.5``), and is read in the circuits'
one batched get."""

from __future__ import annotations

from aiprod.domain.health import Circuit
from aiprod.domain.observed_quality import Observed
from aiprod.ports import DocumentStore
from aiprod.repositories import circuits

MODELS = ("gen4.5", "wan-video/wan-2.2-t2v-fast")


def test_quality_records_round_trip_beside_the_circuits(store: DocumentStore):
    first = {m: Observed().record(0.9, 100.0) for m in MODELS}
    store.run_transaction(lambda tx: circuits.save_quality(tx, "replicate", first))

    def rewrite(tx):  # read, then write: the adapter's update path
        models = circuits.load_quality(tx, "replicate")
        models[MODELS[1]] = models[MODELS[1]].record(0.0, 200.0)
        circuits.save_quality(tx, "replicate", models)

    store.run_transaction(rewrite)

    found, observed = circuits.load_with_quality(store, ["replicate", "veo"], ["replicate", "veo"])
    assert found == {"replicate": Circuit("replicate"), "veo": Circuit("veo")}
    assert observed["veo"] == {}
    assert observed["replicate"][MODELS[0]] == first[MODELS[0]]
    assert observed["replicate"][MODELS[1]] == first[MODELS[1]].record(0.0, 200.0)
