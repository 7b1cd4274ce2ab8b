"""Who may see what: pure access decisions (no I/O)."""
