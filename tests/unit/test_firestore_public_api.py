"""The Firestore adapter uses only the SDK's public API, so an SDK upgrade within the pinned
range (pyproject) cannot silently change how a conditioned write is built.

It used ``_helpers.pbs_for_set_no_merge`` and ``WriteBatch._add_write_pbs`` to put an
update-time precondition on a whole-document set; it now uses ``WriteBatch.update`` with
``Client.write_option(last_update_time=...)`` and ``DELETE_FIELD`` for dropped fields, whose
replace semantics the contract suite pins on the emulator
(tests/contract/test_store_replace_and_expiry.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

ADAPTER = Path(__file__).resolve().parents[2] / "shared/aiprod/adapters/firestore_store.py"


def test_no_private_sdk_module_or_attribute_is_used():
    tree = ast.parse(ADAPTER.read_text())
    private_imports = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("google")
        for alias in node.names
        if alias.name.startswith("_") or "._" in (node.module or "")
    ]
    # an underscore attribute on anything but this module's own objects (self)
    private_uses = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    assert private_imports == [] and private_uses == []
