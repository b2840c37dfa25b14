"""aiprod: event-driven video rendering on Google Cloud.

Layers (see docs/architecture.md): ``domain`` is pure logic, ``services`` orchestrate one
message each, ``adapters`` talk to Pub/Sub, Firestore and providers, ``bootstrap`` wires them.
"""

__version__ = "0.1.0"
