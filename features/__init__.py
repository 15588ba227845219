"""Tessera's features: ingestion, identity, the profile and the Feast feature store (see docs/).

Feast is imported without typeguard's import-time instrumentation (`tessera.core.feast_import`).
"""

from tessera.core.feast_import import install

install()
