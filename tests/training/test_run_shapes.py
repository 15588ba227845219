"""`tessera run` on the data shapes real exports have: it finishes, and says what was skipped or shortened and why.

Each test writes a tiny seeded order-lines export, runs the whole chain through the command line and reads
what it printed: the JSON summary on stdout, one line per skipped model (and per note on the plan) on stderr.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from training_fixtures import TILL_MAPPING, small_environment
from typer.testing import CliRunner

from tessera.cli import app

pytestmark = pytest.mark.integration

START = datetime(2025, 1, 1, tzinfo=UTC)


def till_export(customers: int, days: int, seed: int, skus: int = 12, weekly: bool = False) -> pd.DataFrame:
    """Receipts of `customers` people over `days` from START: varied rhythms and drop-outs, or everyone weekly."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        t = rng.uniform(0, days * 0.25)
        gap = 7.0 if weekly else float(rng.choice([6.0, 20.0, 45.0]))
        end = days if weekly else t + rng.exponential(days * 0.6)
        favourites = rng.choice(skus, size=min(3, skus), replace=False)
        n = 0
        while t < min(end, days):
            n += 1
            for line, item in enumerate(
                rng.choice(favourites, size=rng.integers(1, len(favourites) + 1), replace=False)
            ):
                time = START + timedelta(days=t)
                rows.append((f"R{c}-{n}", line + 1, f"K{c:04d}", time, f"P{item:02d}", 1 + line, 2.5 + item))
            t += gap * rng.uniform(0.6, 1.3)
    frame = pd.DataFrame(rows, columns=["Receipt", "Line", "Customer", "Time", "Item", "Qty", "Price"])
    frame["Time"] = frame["Time"].dt.strftime("%d/%m/%Y %H:%M:%S")
    return frame


def run(
    tmp_path: Path,
    export: pd.DataFrame,
    days: int,
    *extra: str,
    with_items: bool = True,
    with_amounts: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """`tessera run` on the export as of its last day: the summary's models and what it said about them."""
    dropped = [] if with_items else ["Item"]
    export.drop(columns=dropped + ([] if with_amounts else ["Price"])).to_csv(
        tmp_path / "till.csv", sep=";", index=False
    )
    # Without products: the export has no product column and the mapping names no sku. Without amounts: no
    # price column, and the price a constant 0 (docs/sources.md).
    mapping = TILL_MAPPING if with_items else TILL_MAPPING.replace("sku: Item, ", "")
    if not with_amounts:
        mapping = mapping.replace(", unit_price: Price", "").replace(
            "currency: GBP}", 'currency: GBP, unit_price: "0"}'
        )
    (tmp_path / "sources.yaml").write_text(mapping)
    now = (START + timedelta(days=days)).isoformat()
    args = ["run", "--sources", str(tmp_path / "sources.yaml"), "--workspace", str(tmp_path / "ws")]
    result = CliRunner().invoke(app, [*args, "--now", now, *extra], env=small_environment())
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    models = json.loads(result.stdout)["models"]
    # stderr also carries the libraries' logging: keep the run's own lines about skips and the plan.
    said = [line for line in result.stderr.splitlines() if line.startswith(("note: ", *models))]
    return models, said


def trained(models: dict[str, Any]) -> set[str]:
    return {name for name, result in models.items() if "gate" in result}


def test_nine_months_with_a_273_day_horizon_train_on_the_longest_window_that_fits(tmp_path: Path) -> None:
    models, lines = run(tmp_path, till_export(160, 273, seed=1), 273, "--horizon-days", "273")
    assert trained(models) == {"churn", "cltv", "next_best_product"}
    churn = models["churn"]["cutoffs"]
    assert (churn["target_horizon_days"], int(churn["horizon_days"]) < 273) == ("273", True)
    assert lines == [f"note: {models['churn']['note']}"]
    assert lines[0].startswith(f"note: labels cover {churn['horizon_days']} days, not the 273 asked")


def test_orders_without_products_train_churn_and_cltv_and_skip_the_recommender(tmp_path: Path) -> None:
    models, lines = run(tmp_path, till_export(150, 365, seed=2), 365, with_items=False)
    assert trained(models) == {"churn", "cltv"}
    reason = "no purchase names a product: there is nothing to recommend"
    assert models["next_best_product"] == {"skipped": reason}
    assert lines == [f"next_best_product skipped: {reason}"]


def test_purchases_without_amounts_train_churn_and_the_recommender_and_skip_cltv(tmp_path: Path) -> None:
    # Gamma-Gamma has no repeat buyer with positive spend to learn from: churn's BG/NBD features go on without it.
    models, lines = run(tmp_path, till_export(150, 365, seed=6), 365, with_amounts=False)
    assert trained(models) == {"churn", "next_best_product"}
    reason = models["cltv"]["skipped"]
    assert reason.startswith("every customer in the training windows spent the same (0) within 90 days (")
    assert lines == [f"cltv skipped: {reason}"]


def test_a_single_product_skips_only_the_recommender(tmp_path: Path) -> None:
    models, lines = run(tmp_path, till_export(150, 365, seed=3, skus=1), 365)
    assert trained(models) == {"churn", "cltv"}
    assert lines == [
        "next_best_product skipped: every purchase is of the same product (P00): there is nothing to choose between"
    ]


def test_nobody_churning_in_the_training_windows_skips_churn_only(tmp_path: Path) -> None:
    models, lines = run(tmp_path, till_export(150, 365, seed=4, weekly=True), 365)
    assert trained(models) == {"cltv", "next_best_product"}
    reason = models["churn"]["skipped"]
    assert reason.startswith("every customer in the training windows bought again within 90 days (")
    assert reason.endswith("a churn model needs both outcomes")
    assert lines == [f"churn skipped: {reason}"]


def test_fifty_customers_skip_every_model_with_the_minimum_named(tmp_path: Path) -> None:
    models, lines = run(tmp_path, till_export(50, 365, seed=5), 365)
    assert trained(models) == set()
    assert len(lines) == 3
    for line, name in zip(lines, ("churn", "cltv", "next_best_product"), strict=True):
        assert line.startswith(f"{name} skipped: only ") and "TESSERA_TRAINING_MIN_CUSTOMERS" in line
