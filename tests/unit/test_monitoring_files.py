"""infra/monitoring/ against the Monitoring API's own types and against the code.

A dashboard or an alert naming a metric nobody writes shows an empty chart or never fires,
without any error, so these checks run both ways: every metric a file names is declared and
written by the code (with labels the code sets), and every declared metric is on the
dashboard.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from google.api import metric_pb2
from google.cloud import monitoring_dashboard_v1, monitoring_v3
from google.protobuf import json_format

from aiprod.domain import metric_set as m
from aiprod.domain.budget import Thresholds

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "infra" / "monitoring"
DASHBOARD = MONITORING / "dashboards" / "pipeline.json"
SERVICES = ROOT / "shared" / "aiprod" / "services"
ALERTS = sorted((MONITORING / "alerts").glob("*.json"))
SLOS = sorted(p for p in (MONITORING / "slo").glob("*.json") if p.name != "service.json")
FILTER_KEYS = ("filter", "goodServiceFilter", "totalServiceFilter")
METRIC_TYPE = re.compile(r'metric\.type\s*=\s*"([^"]+)"')
METRIC_LABEL = re.compile(r"metric\.labels?\.([a-z_]+)")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def parse(path: Path, message_type) -> object:
    """Parse into the client library's protobuf type; an unknown field fails the test."""
    return json_format.Parse(path.read_text(), message_type.pb()(), ignore_unknown_fields=False)


def filters(node, group_by=()) -> list[tuple[str, tuple[str, ...]]]:
    """Every (filter, groupByFields of its aggregations) in a JSON document."""
    found = []
    if isinstance(node, dict):
        aggregations = node.get("aggregations") or [node.get("aggregation") or {}]
        fields = tuple(f for a in aggregations for f in a.get("groupByFields", ()))
        found += [(node[k], fields) for k in FILTER_KEYS if isinstance(node.get(k), str)]
        for value in node.values():
            found += filters(value)
    elif isinstance(node, list):
        for value in node:
            found += filters(value)
    return found


def custom_metrics_named(*paths: Path) -> set[str]:
    named = set()
    for path in paths:
        for text, _ in filters(load(path)):
            named |= {t for t in METRIC_TYPE.findall(text) if t.startswith("custom.")}
    return named


ALL_FILES = [*ALERTS, DASHBOARD, *SLOS]


# -- the files load into the API's types -------------------------------------------------------


@pytest.mark.parametrize("path", ALERTS, ids=lambda p: p.stem)
def test_alert_policy_loads(path):
    policy = parse(path, monitoring_v3.AlertPolicy)
    assert policy.display_name.startswith("aiprod: ")
    assert policy.conditions and policy.documentation.content


def test_dashboard_loads():
    dashboard = parse(DASHBOARD, monitoring_dashboard_v1.Dashboard)
    assert len(dashboard.mosaic_layout.tiles) >= 15


def test_service_and_slos_load():
    parse(MONITORING / "slo" / "service.json", monitoring_v3.Service)
    for path in SLOS:
        slo = parse(path, monitoring_v3.ServiceLevelObjective)
        ratio = slo.service_level_indicator.request_based.good_total_ratio
        assert ratio.good_service_filter and ratio.total_service_filter
        assert slo.rolling_period.seconds == 28 * 86400


def test_metric_descriptors_file_is_the_declared_set():
    assert load(MONITORING / "metric_descriptors.json") == m.descriptors()
    for item in m.descriptors():
        json_format.ParseDict(item, metric_pb2.MetricDescriptor(), ignore_unknown_fields=False)


# -- both directions: files ↔ code ------------------------------------------------------------


def test_every_metric_a_file_names_is_declared():
    assert custom_metrics_named(*ALL_FILES) - set(m.BY_TYPE) == set()


def test_every_declared_metric_is_on_the_dashboard():
    shown = custom_metrics_named(DASHBOARD)
    assert {metric.type for metric in m.ALL} - shown == set()


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.stem)
def test_labels_a_file_filters_or_groups_on_are_labels_the_code_sets(path):
    for text, group_by in filters(load(path)):
        types = [t for t in METRIC_TYPE.findall(text) if t in m.BY_TYPE]
        for metric_type in types:
            declared = set(m.BY_TYPE[metric_type].label_keys)
            used = set(METRIC_LABEL.findall(text)) | set(METRIC_LABEL.findall(" ".join(group_by)))
            assert used <= declared, f"{path.name}: {metric_type} has no label {used - declared}"


def test_every_declared_metric_is_written_by_a_service():
    # GIVEN the metrics telemetry.py records, and the telemetry methods services call
    tree = ast.parse((SERVICES / "telemetry.py").read_text())
    recorded = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    methods = {
        node.name: {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
    }
    calls = {
        n.attr
        for path in SERVICES.glob("*.py")
        if path.name != "telemetry.py"
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.Attribute)
    }
    names = {value: key for key, value in vars(m).items() if isinstance(value, m.Metric)}

    # THEN every declared metric is recorded by a telemetry method that a service calls
    for metric in m.ALL:
        constant = names[metric]
        assert constant in recorded, f"{metric.name} is never recorded"
        writers = [name for name, used in methods.items() if constant in used]
        assert set(writers) & calls, f"{metric.name}: no service calls {writers}"


# -- the numbers the files hold are the code's ------------------------------------------------


def thresholds(name: str) -> list[float]:
    policy = load(MONITORING / "alerts" / f"{name}.json")
    return [c["conditionThreshold"]["thresholdValue"] for c in policy["conditions"]]


def test_alert_thresholds_are_the_product_policy():
    defaults = Thresholds()
    assert thresholds("budget_warning") == [defaults.warning]
    assert thresholds("budget_limit")[0] == defaults.critical
    assert thresholds("quality_low") == [m.QUALITY_FLOOR]
    assert thresholds("pipeline_latency") == [m.LATENCY_TARGET_S]
    assert thresholds("queue_stuck") == [m.LATENCY_TARGET_S]  # queued past the target
    assert thresholds("backend_errors") == [5]
    latency = load(MONITORING / "slo" / "latency.json")
    assert latency["goal"] == 0.95


def test_the_quality_alert_and_slo_read_measured_quality():
    # the alert: mean of the measured score per backend (a whole-fleet mean would hide one
    # backend's broken outputs behind the others')
    [condition] = load(MONITORING / "alerts" / "quality_low.json")["conditions"]
    threshold = condition["conditionThreshold"]
    assert m.QUALITY.type in threshold["filter"]
    [aggregation] = threshold["aggregations"]
    assert aggregation["crossSeriesReducer"] == "REDUCE_MEAN"
    assert aggregation["groupByFields"] == ["metric.label.backend"]
    # the SLO: completed jobs whose delivered output was checked (n/a: not measured)
    ratio = load(MONITORING / "slo" / "quality.json")["serviceLevelIndicator"]
    ratio = ratio["requestBased"]["goodTotalRatio"]
    assert 'quality_met="true"' in ratio["goodServiceFilter"]
    assert 'quality_met=one_of("true", "false")' in ratio["totalServiceFilter"]


def test_the_dashboard_shows_measured_quality_and_rejections_per_backend():
    shown = {
        metric_type: group_by
        for text, group_by in filters(load(DASHBOARD))
        for metric_type in METRIC_TYPE.findall(text)
    }
    assert "metric.label.backend" in shown[m.QUALITY.type]
    assert "metric.label.check" in shown[m.QUALITY_REJECTED.type]
