"""Feast declarations only: entities, data sources, feature views, on-demand views and feature services.

Feast (through `features.store.repo.load_declarations`) imports every module here; nothing else does.
Offline source paths are relative to the workspace's `data/feast/` and resolved when the repository is applied.
"""
