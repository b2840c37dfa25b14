"""The BigQuery subscription on the job-events topic (issue 12, part 5): every event lands in
a table with no code, in columns that are the event payload's fields, both ways.

The table schema (``infra/bigquery/job_events.json``) is compared with
``aiprod.domain.messages.JobEvent`` field by field, types and nesting included: a field
added to the event and not to the table (or the reverse) fails here, not in a backlog.
"""

from __future__ import annotations

import json
import types
import typing
from enum import Enum

import pytest
from pydantic import BaseModel

from aiprod import topology
from aiprod.domain.messages import JobEvent
from support import terraform
from support.terraform import only_expression, render

SCHEMA = terraform.INFRA / "bigquery" / "job_events.json"
# write_metadata adds these (the subscription, message id, publish time, attributes)
METADATA = {
    "subscription_name": ("STRING", "NULLABLE"),
    "message_id": ("STRING", "NULLABLE"),
    "publish_time": ("TIMESTAMP", "NULLABLE"),
    "attributes": ("JSON", "NULLABLE"),
}
SCALARS = {str: "STRING", int: "INTEGER", float: "FLOAT", bool: "BOOLEAN"}


@pytest.fixture(scope="module")
def tf() -> terraform.Config:
    return terraform.load()


def column_for(annotation) -> tuple[str, str, list | None]:
    """The BigQuery (type, mode, nested columns) a pydantic field's JSON value writes into."""
    args = [a for a in typing.get_args(annotation) if a is not types.NoneType]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return column_for(args[0])
    if origin is list:
        kind, _, nested = column_for(args[0])
        return kind, "REPEATED", nested
    if origin is dict:
        return "JSON", "NULLABLE", None  # free-form keys: one JSON value
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "RECORD", "NULLABLE", expected_columns(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "STRING", "NULLABLE", None
    return SCALARS[annotation], "NULLABLE", None


def expected_columns(model: type[BaseModel]) -> list:
    return [(name, *column_for(f.annotation)) for name, f in model.model_fields.items()]


def declared(columns: list[dict]) -> list:
    return [
        (c["name"], c["type"], c["mode"], declared(c["fields"]) if "fields" in c else None)
        for c in columns
    ]


def test_the_table_columns_are_the_event_payload_and_the_message_metadata():
    columns = declared(json.loads(SCHEMA.read_text()))
    payload = [c for c in columns if c[0] not in METADATA]
    metadata = {c[0]: c[1:3] for c in columns if c[0] in METADATA}

    # THEN every payload field is a column of its type (nested attempts as records), both ways
    assert payload == expected_columns(JobEvent)
    # AND the metadata columns write_metadata fills are there, with their types
    assert metadata == METADATA
    # AND none is REQUIRED: an event with a field unset still writes
    assert all(c["mode"] != "REQUIRED" for c in json.loads(SCHEMA.read_text()))


def test_the_events_topic_feeds_the_table_through_a_bigquery_subscription(tf):
    # GIVEN the subscription, the table and its dataset
    sub = tf.resource("google_pubsub_subscription", "events_to_bigquery")
    table = tf.resource("google_bigquery_table", "job_events")
    dataset = tf.resource("google_bigquery_dataset", "events")

    # THEN it reads the topology's events topic
    assert tf.locals["events_topic"] == topology.JOB_EVENTS
    assert sub["topic"] == "${google_pubsub_topic.topic[local.events_topic].id}"
    assert render(sub["name"], {"prefix": "aiprod-"}, locals_=tf.locals) == (
        "aiprod-job-events--bigquery"
    )
    # AND writes the message's fields into the table's columns, with the metadata
    (config,) = sub["bigquery_config"]
    ref = "google_bigquery_table.job_events"
    assert config["table"] == f"${{{ref}.project}}.${{{ref}.dataset_id}}.${{{ref}.table_id}}"
    assert config["use_topic_schema"] is False and config["use_table_schema"] is True
    assert config["write_metadata"] is True and config["drop_unknown_fields"] is True
    # AND the table's schema is the file checked above, partitioned by publish time
    assert table["schema"] == '${file("${path.module}/bigquery/job_events.json")}'
    assert table["time_partitioning"][0]["field"] == "publish_time"
    assert table["dataset_id"] == "${google_bigquery_dataset.events.dataset_id}"
    assert only_expression(dataset["dataset_id"]) == "local.events_dataset"
    assert "bigquery.googleapis.com" in tf.locals["apis"]


def test_the_pubsub_agent_may_write_the_events_dataset(tf):
    grant = tf.resource("google_bigquery_dataset_iam_member", "pubsub_writes_events")
    assert grant["dataset_id"] == "${google_bigquery_dataset.events.dataset_id}"
    assert grant["role"] == "roles/bigquery.dataEditor"
    assert only_expression(grant["member"]) == "local.pubsub_agent"
    sub = tf.resource("google_pubsub_subscription", "events_to_bigquery")
    assert "${google_bigquery_dataset_iam_member.pubsub_writes_events}" in sub["depends_on"]
