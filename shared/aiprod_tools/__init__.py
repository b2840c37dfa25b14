"""aiprod's tooling, apart from the runtime that the functions deploy.

The ``aiprod`` command (``cli/``), the embedded runtime and the demo, the emulator stack
(``stack/``), text and HTML views for people (``views/``), and building deployable folders
(``packaging``) and their venvs (``venvs``). ``aiprod package`` copies only ``shared/aiprod``:
the tooling imports the runtime, never the reverse.
"""
