"""Identity resolution: standardise person records, link them, cluster them, give each customer a stable id.

See docs/identity.md for the rules, the guards against over-merging and the files written.
"""

from features.identity.evaluate import evaluate_against_truth
from features.identity.ids import id_stability
from features.identity.resolve import resolve_customer_id, resolve_identities

__all__ = ["evaluate_against_truth", "id_stability", "resolve_customer_id", "resolve_identities"]
