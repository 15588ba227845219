"""Clustering's union-find names why it refused a union the same way in every process."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = """
from datetime import date
from features.identity.cluster import _Components
from features.identity.conflict import Person

persons = {
    0: Person("anna", "smith", None),
    1: Person("anna", "smith", date(1970, 1, 1)),
    2: Person("bob", "smith", None),
    3: Person("bob", "smith", date(1990, 5, 5)),
}
forest = _Components(persons, {})
assert forest.union(0, 1) is None and forest.union(2, 3) is None
print(forest.union(0, 2))
"""


def test_a_birth_date_conflict_is_named_first_whatever_the_hash_order() -> None:
    # {anna, anna 1970} against {bob, bob 1990}: first names conflict (anna/bob) and birth dates do (1970/1990);
    # the sets are walked in hash order, which PYTHONHASHSEED changes.
    reasons = {
        subprocess.run(
            [sys.executable, "-c", SCRIPT],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in range(4)
    }
    assert reasons == {"birth_date"}
