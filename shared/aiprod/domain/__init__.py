"""Pure domain logic: no I/O, no vendor imports (standard library and pydantic only)."""
