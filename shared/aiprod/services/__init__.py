"""Services: one handler per message kind, orchestrating domain logic and ports."""
