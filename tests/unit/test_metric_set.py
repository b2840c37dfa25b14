"""The declared metric set and the arithmetic of the series the writer keeps."""

from __future__ import annotations

import re
import statistics

import pytest

from aiprod.adapters.metric_series import Distribution
from aiprod.domain import metric_set as m


def test_every_metric_is_declared_once_under_the_aiprod_prefix():
    assert len({metric.type for metric in m.ALL}) == len(m.ALL)
    assert all(metric.type.startswith("custom.googleapis.com/aiprod/") for metric in m.ALL)
    assert set(m.ALL) == {v for v in vars(m).values() if isinstance(v, m.Metric)}


@pytest.mark.parametrize("metric", m.ALL, ids=lambda metric: metric.name)
def test_a_declaration_is_one_cloud_monitoring_accepts(metric):
    # custom metrics: GAUGE or CUMULATIVE; at most 30 labels, keys [a-z][a-z0-9_]*
    assert metric.kind in (m.Kind.GAUGE, m.Kind.CUMULATIVE)
    assert len(metric.labels) <= 10
    assert all(re.fullmatch(r"[a-z][a-z0-9_]{0,99}", key) for key in metric.label_keys)
    assert (metric.value_type is m.ValueType.DISTRIBUTION) == (metric.buckets is not None)
    if metric.value_type is m.ValueType.DISTRIBUTION:
        assert metric.kind is m.Kind.CUMULATIVE  # merges across instances, charts percentiles


def test_bucket_index_follows_the_exponential_bounds():
    buckets = m.Buckets(scale=1.0, growth=2.0, count=3)  # [1,2) [2,4) [4,8), then overflow
    found = [buckets.index(v) for v in (0.5, 1, 1.9, 2, 3.99, 4, 7.9, 8, 100)]
    assert found == [0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_distribution_keeps_count_mean_and_squared_deviation():
    values = [0.3, 1.0, 2.5, 2.5, 40.0, 900.0]
    dist = Distribution(m.SECONDS)
    for value in values:
        dist.add(value)

    written = dist.as_value()["distribution_value"]
    assert written["count"] == len(values)
    assert written["mean"] == pytest.approx(statistics.fmean(values))
    assert written["sum_of_squared_deviation"] == pytest.approx(
        statistics.pvariance(values) * len(values)
    )
    assert sum(written["bucket_counts"]) == len(values)
