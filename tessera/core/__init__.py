"""Tessera's foundations, imported by every stage and importing none: settings and the workspace layout,
errors, the canonical columns, time helpers, progress bars, the known third-party warnings and the workspace's
write lock."""
