"""What the tooling prints for people: plain-text tables and the HTML report (no dependency)."""
