"""The emulator stack: the Cloud SDK's emulators, every function under functions-framework,
the topology provisioned on them (``aiprod dev``, the e2e tests, the benchmarks)."""
