"""Stand-ins for the external systems, in one place (importable as ``fakes``).

Each records what it was asked so a test reads what happened rather than asserting on mock
calls: the providers' wire protocols as local HTTP servers (``runway``, ``veo``,
``replicate`` on ``base``), Cloud Storage (``storage``, the gcp-storage-emulator in process),
Cloud Monitoring's MetricService as a recording gRPC server (``monitoring``), a clock tests move
by hand (``clock``) and an embedded store that watches the ledger and injects outages
(``store``). ``fixtures`` starts them for a test. The real adapters reach the servers only
through configuration (base URLs, an ADC credentials file, the storage emulator host), so the
code under test is the production code.
"""
