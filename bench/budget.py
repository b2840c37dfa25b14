"""Budget benchmark: hold+settle cycles per second, naive one-document transaction vs the
project's sharded ledger, with 1, 8 and 32 concurrent writers, on the Firestore emulator and
on the embedded store; then an overspend check against a tight limit.

A script, not a test: ``.venv/bin/python bench/budget.py``. Writers are threads, each acting
as one function instance. A cycle holds 0.10 USD and settles it at 0.05 USD.

- naive: one document per scope-day read and written in a locking transaction (Firestore's
  own ``@transactional``; the embedded store's lock), the obvious implementation.
- ledger: ``services.ledger.Ledger`` (pool + 16 shards) through the store adapter the
  functions use (optimistic, update-time preconditions on the emulator).

The last line is one JSON object:
{"emulator": {"naive": {"1":…, "8":…, "32":…}, "ledger": {…}}, "embedded": {…},
 "overspend_usd": 0, "conflicts": {...}}.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import uuid

from aiprod.adapters.embedded_store import EmbeddedStore
from aiprod.config import Settings
from aiprod.ports import DocumentStore
from aiprod.services.ledger import Ledger
from aiprod_tools.stack.emulators import start_emulators
from aiprod_tools.stack.provision import emulator_store

DAY = "2027-01-15"
HOLD, COST = 100_000, 50_000
WRITERS = (1, 8, 32)


class NaiveLedger:
    """The obvious ledger: one document, read-check-write in a (locking) transaction."""

    def __init__(self, limit: int, run_locked):
        self._limit, self._run = limit, run_locked

    def hold(self) -> bool:
        def body(get, put) -> bool:
            doc = get() or {"held": 0, "spent": 0}
            if doc["held"] + doc["spent"] + HOLD > self._limit:
                return False
            put({**doc, "held": doc["held"] + HOLD})
            return True

        return self._run(body)

    def settle(self, cost: int = COST) -> None:
        self._run(lambda get, put: put(_settled(get(), cost)))


def _settled(doc: dict, cost: int) -> dict:
    return {**doc, "held": doc["held"] - HOLD, "spent": doc["spent"] + cost}


def firestore_locked(client, doc_id: str):
    from google.cloud import firestore

    ref = client.collection("naive").document(doc_id)

    def run(body):
        @firestore.transactional
        def inner(tx):
            snap = ref.get(transaction=tx)
            return body(lambda: snap.to_dict(), lambda data: tx.set(ref, data))

        return inner(client.transaction(max_attempts=50))

    return run


def embedded_locked(store: EmbeddedStore, doc_id: str):
    def run(body):
        return store.run_transaction(
            lambda tx: body(lambda: tx.get("naive", doc_id), lambda d: tx.set("naive", doc_id, d))
        )

    return run


def ledger_cycles(store: DocumentStore, book: Ledger):
    def hold() -> list[str] | None:
        return store.run_transaction(lambda tx: book.reserve(tx, ("global",), DAY, HOLD))

    def settle(keys: list[str], cost: int = COST) -> None:
        store.run_transaction(lambda tx: book.settle(tx, keys, HOLD, cost))

    return hold, settle


FAILURES: dict[str, int] = {}


def measure(cycle, writers: int, seconds: float, label: str = "") -> float:
    """Completed hold+settle cycles per second with ``writers`` threads for ``seconds``.
    A cycle that raises (e.g. a locking transaction that gave up) is counted, not retried."""
    done = [0] * writers
    stop = time.monotonic() + seconds

    def work(i: int) -> None:
        while time.monotonic() < stop:
            try:
                if cycle():
                    done[i] += 1
            except Exception:  # a failed cycle is a result here, not a crash
                FAILURES[label] = FAILURES.get(label, 0) + 1

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(writers)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    return round(sum(done) / (time.monotonic() - start), 1)


def naive_cycle(naive: NaiveLedger):
    def cycle() -> bool:
        if not naive.hold():
            return False
        naive.settle()
        return True

    return cycle


def ledger_cycle(hold, settle):
    def cycle() -> bool:
        keys = hold()
        if keys is None:
            return False
        settle(keys)
        return True

    return cycle


def overspend_check(store: DocumentStore, book: Ledger, writers: int = 16) -> int:
    """Writers race for a 1 USD day with 0.10 USD holds charged in full: more than fits.
    Returns by how much spent + held ever exceeded the limit (sampled) or ends above it."""
    hold, settle = ledger_cycles(store, book)
    worst = [0]
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            entry = book.snapshot(store, "global", DAY)
            worst[0] = max(worst[0], entry.committed - entry.limit_micros)
            time.sleep(0.01)

    def work() -> None:
        for _ in range(4):
            keys = hold()
            if keys is not None:
                settle(keys, HOLD)

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    threads = [threading.Thread(target=work) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stop.set()
    final = book.snapshot(store, "global", DAY)
    return max(worst[0], final.committed - final.limit_micros, 0)


def run_suite(make_store, make_naive, seconds: float) -> tuple[dict, dict, int, int]:
    naive, ledger = {}, {}
    conflicts = 0
    for writers in WRITERS:
        label = f"{getattr(make_store, '__name__', 'store')}/naive/{writers}"
        naive[str(writers)] = measure(naive_cycle(make_naive()), writers, seconds, label)
        store = make_store()
        book = Ledger(Settings(global_limit_micros=10**12, ledger_shards=16))
        cycle = ledger_cycle(*ledger_cycles(store, book))
        ledger[str(writers)] = measure(cycle, writers, seconds, label.replace("naive", "ledger"))
        conflicts += getattr(store, "conflicts", 0)
        key = str(writers)
        print(
            f"  {writers:>2} writers: naive {naive[key]}/s, ledger {ledger[key]}/s", file=sys.stderr
        )
    tight = Ledger(Settings(global_limit_micros=1_000_000, ledger_shards=16))
    overspend = overspend_check(make_store(), tight)
    return naive, ledger, overspend, conflicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)

    print("embedded store:", file=sys.stderr)
    emb_naive, emb_ledger, emb_over, _ = run_suite(
        EmbeddedStore,
        lambda: NaiveLedger(10**12, embedded_locked(EmbeddedStore(), "global")),
        args.seconds,
    )
    emulators = start_emulators()
    try:

        def fresh_store():
            return emulator_store(emulators.env(f"bench-{uuid.uuid4().hex[:8]}"))

        def fresh_naive():
            store = fresh_store()
            return NaiveLedger(10**12, firestore_locked(store.client, "global"))

        print("firestore emulator:", file=sys.stderr)
        emu_naive, emu_ledger, emu_over, conflicts = run_suite(
            fresh_store, fresh_naive, args.seconds
        )
    finally:
        emulators.stop()
    result = {
        "emulator": {"naive": emu_naive, "ledger": emu_ledger},
        "embedded": {"naive": emb_naive, "ledger": emb_ledger},
        "overspend_usd": (emu_over + emb_over) / 1_000_000,
        "ledger_conflicts_emulator": conflicts,
        "failed_cycles": FAILURES,
        "unit": "hold+settle cycles per second",
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    return 0 if result["overspend_usd"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
