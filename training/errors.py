"""Why a model was not trained: the run goes on with the other models and says this reason in one line."""

from __future__ import annotations


class ModelSkipped(Exception):
    """The data cannot train this model (one label class, one product, too few customers, ...).

    The message is one line a user can read: what is missing and what the run did instead.
    """
