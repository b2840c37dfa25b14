"""Settings from the environment, read once per process; never holds or logs secrets.

Every variable is optional except where a feature needs it; a malformed one raises
``ConfigError`` naming the variable (not its value). Provider API keys are not settings: the
adapter that needs one reads it with ``secret()`` at first use (Secret Manager injects them as
environment variables in deployment), so they never sit in a settings object or a log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiprod.domain.budget import Thresholds
from aiprod.domain.image_uris import bucket_names
from aiprod.domain.policy import RetryPolicy
from aiprod.domain.retention import DAY_S, Retention
from aiprod.domain.semantic_qa import SemanticQa
from aiprod.exceptions import ConfigError
from aiprod.setting_values import budget_thresholds as _thresholds
from aiprod.setting_values import choice as _choice
from aiprod.setting_values import json_object as _json
from aiprod.setting_values import number as _float
from aiprod.setting_values import semantic_qa as _semantic_qa
from aiprod.setting_values import time_zone as _zone
from aiprod.setting_values import usd_or_none as _usd_or_none
from aiprod.setting_values import usd_to_micros

__all__ = ["ProviderSettings", "Settings", "secret", "usd_to_micros"]


# Where each provider's API key is read from (the names the SDKs themselves use).
RUNWAY_KEY_ENV = "RUNWAYML_API_SECRET"
REPLICATE_KEY_ENV = "REPLICATE_API_TOKEN"
# What a deployed function must be given, by the optional-dependency group whose code reads
# it (a function installs ``gcp`` and, to reach providers, their groups and ``storage``): a
# setting every process of a group must agree on, or that the code cannot do without. The
# deploy (cloudbuild.yaml) is checked against these (tests/deploy/test_cloudbuild.py).
SETTINGS_BY_GROUP: dict[str, tuple[str, ...]] = {
    "gcp": (
        "GOOGLE_CLOUD_PROJECT",
        "AIPROD_PREFIX",
        "AIPROD_REGION",
        "AIPROD_PROVIDER_MODE",
        "AIPROD_DAILY_BUDGET_USD",
        "AIPROD_BUDGET_TIMEZONE",
        "AIPROD_IMAGE_BUCKETS",  # route_job and the render functions must agree
        "AIPROD_RETENTION_DAYS",  # every save of a finished job or a ledger day stamps it
        "AIPROD_LEDGER_RETENTION_DAYS",
        # Semantic output QA: route_job holds a rating's estimate on every attempt (mode and
        # model), the functions that keep outputs rate them (all four); every process parses
        # all four, so all get the same values
        "AIPROD_QA_SEMANTIC",
        "AIPROD_QA_SEMANTIC_MODEL",
        "AIPROD_QA_SEMANTIC_MIN",
        "AIPROD_QA_POLICY",
    ),
    "storage": (
        "AIPROD_OUTPUT_BUCKET",  # every poll that finds a render keeps its output
        # the Veo poller asks the location the submit used; a keeper's Gemini rating
        # (adapters/gemini_qa) calls Vertex AI there too
        "AIPROD_VEO_LOCATION",
    ),
}
SECRETS_BY_GROUP: dict[str, tuple[str, ...]] = {
    "runway": (RUNWAY_KEY_ENV,),
    "replicate": (REPLICATE_KEY_ENV,),
}
PROVIDER_MODES = ("simulated", "live")
SUBMIT_MARGIN_S = 15.0  # storing a task id (three tries) and the claim's own transactions
CONTENT_POLICIES = ("terminal", "fallback")


def secret(name: str, env: Mapping[str, str] | None = None) -> str:
    """A secret from the environment, or a ConfigError naming the missing variable."""
    value = (os.environ if env is None else env).get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set (provide it from Secret Manager)")
    return value


@dataclass(frozen=True)
class ProviderSettings:
    """How the live adapters reach their providers. Base URLs are None in production (each
    SDK's default host); tests point them at local fakes."""

    output_bucket: str = ""
    content_policy: str = "terminal"  # a moderation refusal ends the job, or falls back
    timeout_s: float = 30.0
    runway_base_url: str | None = None
    replicate_base_url: str | None = None
    veo_base_url: str | None = None
    veo_project: str | None = None  # defaults to the settings' project
    veo_location: str = "us-central1"
    semantic_qa: SemanticQa = field(default_factory=SemanticQa)  # off unless configured

    @classmethod
    def from_env(cls, get) -> ProviderSettings:
        policy = _choice(get, "AIPROD_CONTENT_POLICY", CONTENT_POLICIES, cls.content_policy)
        return cls(
            output_bucket=get("AIPROD_OUTPUT_BUCKET", "").removeprefix("gs://").strip("/"),
            content_policy=policy,
            timeout_s=_float(get, "AIPROD_PROVIDER_TIMEOUT_S", cls.timeout_s),
            runway_base_url=get("AIPROD_RUNWAY_BASE_URL") or None,
            replicate_base_url=get("AIPROD_REPLICATE_BASE_URL") or None,
            veo_base_url=get("AIPROD_VEO_BASE_URL") or None,
            veo_project=get("AIPROD_VEO_PROJECT") or None,
            veo_location=get("AIPROD_VEO_LOCATION") or cls.veo_location,
            semantic_qa=_semantic_qa(get),
        )

    def bucket(self) -> str:
        """The bucket outputs are kept in (checked at first use, not at start-up)."""
        if not self.output_bucket:
            raise ConfigError("AIPROD_OUTPUT_BUCKET is not set (live providers keep outputs there)")
        return self.output_bucket


@dataclass(frozen=True)
class Settings:
    project: str = "aiprod-local"
    prefix: str = "aiprod-"
    global_limit_micros: int = 100_000_000
    tenant_limit_micros: int | None = None
    tenant_limits: Mapping[str, int] = field(default_factory=dict)
    timezone: str = "UTC"
    thresholds: Thresholds = field(default_factory=Thresholds)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease_s: float = 600.0
    # From a claim until its task id is stored: a worker lost in between is noticed after
    # this, not a whole lease. None: derived from the provider timeout (submit_lease_s).
    submit_window_s: float | None = None
    poll_interval_s: float = 5.0
    queue_spill_after_s: float = 300.0  # a queued job may then spill: domain.queueing
    render_deadline_s: float = 480.0
    max_backoff_wait_s: float = 30.0
    ledger_shards: int = 16
    provider_mode: str = "simulated"
    simulation: Mapping[str, object] = field(default_factory=dict)
    providers: ProviderSettings = field(default_factory=ProviderSettings)
    # "cloud" (Cloud Monitoring, deployed), "memory", "jsonl:<path>" (stack, demo) or "off"
    metrics: str = "memory"
    metrics_flush_s: float = 2.0  # the bound on each invocation's metric flush
    push_lanes: int = 1  # topology.lane_topic: 1 deployed; more on the emulator stack
    region: str = "global"  # generic_task location of this instance's metric series
    image_buckets: frozenset[str] = frozenset()  # gs:// images only from these: image_uris
    retention: Retention = field(default_factory=Retention)  # of finished records (TTL)

    @property
    def submit_lease_s(self) -> float:
        """The lease from a claim until the task id is stored: the image fetch and the
        create (each bounded by the provider timeout) plus a margin for storing the id,
        unless set; never longer than a lease."""
        window = self.submit_window_s
        if window is None:
            window = 2 * self.providers.timeout_s + SUBMIT_MARGIN_S
        return min(window, self.lease_s)

    def limit_for(self, scope: str) -> int:
        if scope == "global":
            return self.global_limit_micros
        tenant = scope.removeprefix("tenant:")
        if tenant in self.tenant_limits:
            return self.tenant_limits[tenant]
        default = self.tenant_limit_micros
        return self.global_limit_micros if default is None else default

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        get = env.get
        tenants = _json(get("AIPROD_TENANT_BUDGETS_USD", "{}"), "AIPROD_TENANT_BUDGETS_USD")
        return cls(
            project=get("GOOGLE_CLOUD_PROJECT") or get("GCP_PROJECT") or cls.project,
            prefix=get("AIPROD_PREFIX", cls.prefix),
            global_limit_micros=usd_to_micros(
                get("AIPROD_DAILY_BUDGET_USD", "100"), "AIPROD_DAILY_BUDGET_USD"
            ),
            tenant_limit_micros=_usd_or_none(get, "AIPROD_TENANT_BUDGET_USD"),
            tenant_limits={
                k: usd_to_micros(str(v), "AIPROD_TENANT_BUDGETS_USD") for k, v in tenants.items()
            },
            timezone=_zone(get("AIPROD_BUDGET_TIMEZONE") or cls.timezone),
            thresholds=_thresholds(
                _float(get, "AIPROD_BUDGET_WARNING", Thresholds.warning),
                _float(get, "AIPROD_BUDGET_CRITICAL", Thresholds.critical),
            ),
            retry=RetryPolicy(
                max_attempts=int(_float(get, "AIPROD_MAX_ATTEMPTS", 6)),
                max_retries_same=int(_float(get, "AIPROD_MAX_RETRIES_SAME", 2)),
                base_backoff_s=_float(get, "AIPROD_RETRY_BACKOFF_S", 2.0),
                max_wall_s=_float(get, "AIPROD_MAX_JOB_WALL_S", 3600.0),
            ),
            lease_s=_float(get, "AIPROD_LEASE_S", 600.0),
            submit_window_s=_float(get, "AIPROD_SUBMIT_WINDOW_S", None),
            poll_interval_s=_float(get, "AIPROD_POLL_INTERVAL_S", 5.0),
            queue_spill_after_s=_float(get, "AIPROD_QUEUE_SPILL_AFTER_S", 300.0),
            render_deadline_s=_float(get, "AIPROD_RENDER_DEADLINE_S", 480.0),
            ledger_shards=int(_float(get, "AIPROD_LEDGER_SHARDS", 16)),
            provider_mode=_choice(get, "AIPROD_PROVIDER_MODE", PROVIDER_MODES, cls.provider_mode),
            simulation=_json(get("AIPROD_SIMULATION", "{}"), "AIPROD_SIMULATION"),
            providers=ProviderSettings.from_env(get),
            metrics=get("AIPROD_METRICS") or "cloud",
            metrics_flush_s=_float(get, "AIPROD_METRICS_FLUSH_S", 2.0),
            push_lanes=int(_float(get, "AIPROD_PUSH_LANES", 1)),
            region=get("AIPROD_REGION") or get("FUNCTION_REGION") or "global",
            image_buckets=bucket_names(get("AIPROD_IMAGE_BUCKETS", "")),
            retention=Retention(
                _float(get, "AIPROD_RETENTION_DAYS", 30.0) * DAY_S,
                _float(get, "AIPROD_LEDGER_RETENTION_DAYS", 400.0) * DAY_S,
            ),
        )
