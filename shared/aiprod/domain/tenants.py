"""Tenants: who may be charged, and which tenant a job message speaks for. Pure.

A tenant is configured (``aiprod tenant add``, or Terraform's ``tenants`` variable) and has
its own jobs topic that only its publishers may publish on. The tenant of a job is therefore
the topic it came through, never what the message says: a message can name a tenant only to
agree with its topic. The shared jobs topic carries untenanted jobs (the global budget only),
so a message on it that names a tenant is refused rather than charged to that tenant.
Likewise a tenant's control topic (cancel) reaches only that tenant's jobs (``controls``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A configured tenant's name is also part of topic and subscription names
# (``<prefix>jobs--<tenant>--route_job``): it must not start with ``lane`` (push lanes are
# ``jobs--lane<N>``) nor hold ``--`` (the names' separator), so a name is read back one way.
NAME = re.compile(r"^(?!lane)[a-z0-9](?:[a-z0-9_]|-(?!-)){0,62}$")
MEMBER = re.compile(r"^(user|serviceAccount|group|domain|principal|principalSet):\S+$")
SHARED_NAMES_TENANT = (
    "tenant: the shared topic cannot name a tenant (publish on the tenant's topic)"
)


class TenantRefused(ValueError):
    """A job message's tenant cannot be accepted; the text says which field and why."""


@dataclass(frozen=True)
class Tenant:
    """A configured tenant: its name and the IAM members that may publish on its topic.

    Its daily budget is the ledger's run-time limit for ``tenant:<name>`` (what
    ``aiprod tenant set-budget`` and ``aiprod budget set`` change), kept in one place so the
    registry and the ledger never disagree."""

    name: str
    publishers: tuple[str, ...] = field(default_factory=tuple)
    created_at: float = 0.0

    @property
    def scope(self) -> str:
        return f"tenant:{self.name}"


@dataclass(frozen=True)
class Channel:
    """The topic a message came through, as the router (jobs) or control_job (control
    messages) sees it: the shared topic (``tenant`` None), a tenant's topic, or a
    subscription the function does not serve (or whose tenant is not configured)."""

    tenant: str | None = None
    known: bool = True
    name: str = ""  # the subscription, for the message that refuses an unknown one


SHARED = Channel()


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a configured tenant's name, or None."""
    if NAME.match(name):
        return None
    return (
        f"tenant name {name!r} must be 1-63 of a-z, 0-9, '_' and '-', start with a letter or "
        "digit, hold no '--' and not start with 'lane'"
    )


def member_problem(member: str) -> str | None:
    """Why ``member`` is not an IAM member Pub/Sub can grant publish to, or None."""
    if MEMBER.match(member):
        return None
    return f"publisher {member!r} is not an IAM member (user:, serviceAccount:, group:, domain:)"


def tenant_of(channel: Channel, named: str | None) -> str | None:
    """The tenant a job is charged to, from its channel; raises ``TenantRefused`` when the
    message's own ``tenant`` field disagrees, or it came through no topic we serve."""
    if not channel.known:
        raise TenantRefused(f"the message came through {channel.name!r}, not a jobs topic")
    if channel.tenant is None:
        if named is not None:
            raise TenantRefused(SHARED_NAMES_TENANT)
        return None
    if named is not None and named != channel.tenant:
        raise TenantRefused(
            f"tenant: {named!r} is not the tenant of this topic ({channel.tenant!r})"
        )
    return channel.tenant


def controls(channel: Channel, job_tenant: str | None) -> bool:
    """Whether a control message (cancel) that came through ``channel`` may act on a job of
    ``job_tenant``: from the shared control topic (operators, ``control_publishers``: trusted)
    any job; from a tenant's control topic only that tenant's jobs (not an untenanted one);
    from a channel that is not served, or names no configured tenant, none."""
    if not channel.known:
        return False
    return channel.tenant is None or channel.tenant == job_tenant


def unknown_tenant(name: str) -> str:
    return f"tenant: {name!r} is not a configured tenant"
