"""Tessera's foundations, imported by every stage and importing none: settings and the workspace layout,
errors, the canonical columns, time helpers, progress bars and the known third-party warnings."""
