"""The render queue as read from the job documents: each queued job carries its computed
``queue_key``, ``{backend}|{tenant}|{rank}|{queued_at}|{job_id}`` (``Job.queue_key``), so a
backend's queue is a range of keys, grouped by tenant, then by rank (speed first), each
group oldest first. Single-field range queries only: no composite index.

Groups are found with a skip-scan: one query reads a group's first key, and the next one
starts just past every key of that group (``"}"`` sorts right after the ``"|"`` that ends
the group's prefix, and every character a tenant name may hold sorts before both).
"""

from __future__ import annotations

from collections import Counter

from aiprod.domain.jobs import Job
from aiprod.domain.queueing import jobs_ahead
from aiprod.domain.slots import held_by_tenant, tenant_key
from aiprod.ports import DocumentStore
from aiprod.repositories import slots as slot_records
from aiprod.repositories.jobs import COLLECTION, readable

# Most queued jobs one look at a backend's queue reads (the depth gauge, a job's position):
# a count that reaches it means "this many or more".
QUEUE_READ = 1000
# Most groups (tenants, or tenants x ranks) one scan reads: tenants with jobs waiting on one
# backend at once. Past it, the groups whose names sort last are not seen by that scan.
MAX_GROUPS = 1000
SKIP_READ = 4  # keys read to step over a group's first documents when they do not decode


def queued_for(store: DocumentStore, backend: str, limit: int) -> list[Job]:
    """Up to ``limit`` jobs waiting on ``backend``, in key order (by tenant, not by age)."""
    prefix = f"{backend}|"
    docs = store.query(COLLECTION, "queue_key", ">=", prefix, limit)
    return readable([d for d in docs if str(d.get("queue_key", "")).startswith(prefix)])


def queue_heads(
    store: DocumentStore, backend: str, per_group: int = 1, by_rank: bool = False
) -> list[Job]:
    """The first ``per_group`` readable queued jobs of each tenant waiting on ``backend``
    (``by_rank``: of each tenant's speed jobs and of its other jobs apart), one range query
    per group."""
    heads: list[Job] = []
    start = prefix = f"{backend}|"
    for _ in range(MAX_GROUPS):
        docs = store.query(COLLECTION, "queue_key", ">=", start, per_group)
        key = _key(docs[0]) if docs else ""
        if not key.startswith(prefix):
            break
        group = "|".join(key[len(prefix) :].split("|")[: 2 if by_rank else 1])
        same = f"{prefix}{group}|"
        found = readable([d for d in docs if _key(d).startswith(same)])
        if len(found) < per_group:  # some did not decode (or the group is short): read on
            more = store.query(COLLECTION, "queue_key", ">=", key, per_group + SKIP_READ)
            found = readable([d for d in more if _key(d).startswith(same)])
        heads += found[:per_group]
        start = f"{prefix}{group}}}"
    return heads


def oldest_queued_at(store: DocumentStore, backend: str) -> float | None:
    """When the longest-waiting job on ``backend`` was queued (each group's first job is
    its oldest), or None when none waits."""
    heads = queue_heads(store, backend, by_rank=True)
    return min((j.current.queued_at or 0.0 for j in heads), default=None)


def queued_ahead(store: DocumentStore, job: Job, limit: int = QUEUE_READ) -> int:
    """About how many queued jobs start before ``job`` on its backend, in the fair order
    (``queueing.jobs_ahead``; 0 when it is not queued): its tenant's jobs ahead of it, then
    each other tenant's turns, counted with bounded reads (``limit`` means that many or
    more)."""
    key = job.queue_key
    if key is None:
        return 0
    backend, mine = job.current.backend, tenant_key(job.tenant)
    own_prefix = f"{backend}|{mine}|"
    own = sum(
        1
        for d in store.query(COLLECTION, "queue_key", ">=", own_prefix, limit)
        if own_prefix < _key(d) < key
    )
    others: Counter[str] = Counter()
    for head in queue_heads(store, backend):
        tenant = tenant_key(head.tenant)
        if tenant != mine:
            group = f"{backend}|{tenant}|"
            docs = store.query(COLLECTION, "queue_key", ">=", group, min(limit, own + 1))
            others[tenant] = sum(1 for d in docs if _key(d).startswith(group))
    held = held_by_tenant(slot_records.load_all(store, backend))
    return min(limit, jobs_ahead(own, others, held, mine))


def _key(doc: dict) -> str:
    return str(doc.get("queue_key", ""))
