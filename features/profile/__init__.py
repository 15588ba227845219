"""The unified customer profile: golden records, unified event tables, consent state, data quality."""

from features.profile.build import build_profile

__all__ = ["build_profile"]
