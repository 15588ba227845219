"""Point-in-time correctness through real Feast retrieval (`training_frame`) on the hand-made retailer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feature_store_fixtures import orders, t

from features.store import open_store, training_frame
from tessera.core.errors import InputError


def _frame(embedded, rows: list[tuple[str, str]], service: str = "churn_v1", **extra) -> pd.DataFrame:
    workspace, settings, _ = embedded
    entities = pd.DataFrame({"customer_id": [c for c, _ in rows], "cutoff": [t(m) for _, m in rows], **extra})
    return training_frame(entities, service, open_store(workspace, settings))


def test_purchases_after_the_cutoff_never_appear(embedded) -> None:
    frame = _frame(
        embedded, [("bob", "2025-05-01"), ("bob", "2025-06-01 08:59:59"), ("bob", "2025-06-01 09:00")]
    )
    before, just_before, at = frame.to_dict("records")
    assert before["orders_lifetime"] == 1 and before["spend_lifetime"] == 5.0 and before["spend_365d"] == 5.0
    assert just_before["orders_lifetime"] == 1 and just_before["distinct_categories_365d"] == 1
    assert at["orders_lifetime"] == 2 and at["spend_lifetime"] == 26.0  # an order at the cutoff itself counts
    # Recency is computed at the cutoff, from the last order before it.
    assert before["days_since_last_order"] == pytest.approx(
        (t("2025-05-01") - t("2025-02-01 09:00")).days + 15 / 24
    )


def test_days_since_each_kind_of_engagement_count_from_its_latest_event_once_known(embedded) -> None:
    """alice opened an email on 2025-02-01 09:00 (known from the next UTC midnight, as the engagement counts);
    bob's latest web event is his add-to-cart of 2025-04-01 20:06, his ticket was opened on 2025-03-10 08:00."""
    frame = _frame(embedded, [("alice", "2025-02-01 23:00"), ("alice", "2025-02-11"), ("bob", "2025-05-01")])
    same_day, later, bob = frame.to_dict("records")
    assert math.isnan(same_day["days_since_last_email_engagement"])  # not known before the day has ended
    assert later["days_since_last_email_engagement"] == pytest.approx(10 - 9 / 24)
    assert math.isnan(later["days_since_unsubscribe"])  # a sent email is not engagement, nor an unsubscribe
    assert bob["days_since_last_web_visit"] == pytest.approx(
        (t("2025-05-01") - t("2025-04-01 20:06")).total_seconds() / 86400
    )
    assert bob["days_since_last_ticket"] == pytest.approx(
        (t("2025-05-01") - t("2025-03-10 08:00")).total_seconds() / 86400
    )
    assert math.isnan(bob["days_since_last_email_engagement"])


def test_windowed_counts_match_a_brute_force_count_at_every_cutoff(embedded) -> None:
    cutoffs = pd.date_range("2024-12-01", "2025-07-01", freq="61h", tz="UTC")
    rows = [(c, str(m)) for c in ("alice", "bob", "carol") for m in cutoffs]
    frame = _frame(embedded, rows)
    sales = orders()
    sales = sales[(sales["line_type"] == "sale") & sales["customer_id"].notna()]
    for record in frame.to_dict("records"):
        mine = sales[
            (sales["customer_id"] == record["customer_id"]) & (sales["ordered_at"] <= record["cutoff"])
        ]
        for days in (30, 90, 365):
            window = mine[mine["ordered_at"] > record["cutoff"] - pd.Timedelta(days=days)]
            assert record[f"orders_{days}d"] == window["order_id"].nunique(), (record["cutoff"], days)
            assert record[f"spend_{days}d"] == pytest.approx(window["amount"].sum()), (record["cutoff"], days)
        assert record["orders_lifetime"] == mine["order_id"].nunique()


def test_a_customer_without_history_gets_the_declared_defaults(embedded) -> None:
    frame = _frame(embedded, [("carol", "2025-05-01"), ("alice", "2023-01-01"), ("nobody", "2025-05-01")])
    for record in frame.to_dict("records"):
        assert record["orders_30d"] == 0 and record["spend_365d"] == 0.0 and record["tickets_90d"] == 0
        assert math.isnan(record["avg_order_value"]) and math.isnan(record["days_since_last_order"])
        assert record["loyalty_tier"] == "none" and not record["loyalty_member"]
        assert record["age_band"] == "unknown" and record["region"] == "unknown"
        assert record["cart_items"] == 0
    assert frame["orders_30d"].dtype == np.int64 and frame["loyalty_member"].dtype == bool


def test_the_frame_keeps_the_entity_rows_their_order_and_extra_columns(embedded) -> None:
    rows = [("bob", "2025-05-01"), ("alice", "2025-02-01"), ("bob", "2025-03-01"), ("alice", "2025-02-01")]
    frame = _frame(embedded, rows, label=[1, 0, 1, 0])
    assert list(frame["customer_id"]) == ["bob", "alice", "bob", "alice"]
    assert list(frame["label"]) == [1, 0, 1, 0]
    assert frame.iloc[1].drop("cutoff").equals(frame.iloc[3].drop("cutoff"))
    assert "event_timestamp" not in frame and "request_time" not in frame and "last_order_at" not in frame


def test_product_features_are_point_in_time_too(embedded) -> None:
    frame = _frame(
        embedded,
        [("alice", "2025-06-02 12:00"), ("alice", "2025-06-03 00:00"), ("alice", "2025-05-01")],
        service="next_best_product_v1",
        sku=["A", "A", "C"],
    )
    before, after, before_first_sale = frame.to_dict("records")
    # The anonymous receipt of 2025-06-02 is counted from the next UTC midnight.
    assert (
        before["units_sold_7d"] == 0.0 and after["units_sold_7d"] == 1.0 and after["last_sold_price"] == 9.0
    )
    assert before_first_sale["category"] == "unknown"  # C is first sold on 2025-06-01
    assert math.isnan(before["list_price"])  # the list price is only known as of the build


def test_entity_frame_errors_name_the_problem(embedded) -> None:
    workspace, settings, _ = embedded
    with pytest.raises(InputError, match="sku"):
        training_frame(
            pd.DataFrame({"customer_id": ["a"], "cutoff": [t("2025-01-01")]}),
            "next_best_product_v1",
            open_store(workspace, settings),
        )
    with pytest.raises(InputError, match="clash"):
        training_frame(
            pd.DataFrame({"customer_id": ["a"], "cutoff": [t("2025-01-01")], "orders_30d": [1]}),
            "churn_v1",
            open_store(workspace, settings),
        )


def test_the_file_offline_store_gives_the_same_frame_as_duckdb(embedded) -> None:
    workspace, settings, _ = embedded
    assert settings.offline_store == "duckdb"  # the default every other test here retrieves through
    cutoffs = [t(m) for m in ("2024-01-01", "2025-02-09 10:00", "2025-05-01", "2025-07-01")]
    customers = ["alice", "bob", "carol", "nobody"]
    entities = pd.DataFrame(
        {"customer_id": [c for c in customers for _ in cutoffs], "cutoff": cutoffs * len(customers)}
    )
    duckdb_frame = training_frame(entities, "churn_v1", open_store(workspace, settings))
    file_frame = training_frame(
        entities, "churn_v1", open_store(workspace, settings.model_copy(update={"offline_store": "file"}))
    )
    pd.testing.assert_frame_equal(duckdb_frame, file_frame, check_dtype=False)
    # Equal, and not merely equally empty: sales orders up to each cutoff (alice: O1 on 01-10, O2 on 03-01;
    # bob: O3 on 02-01, O4 on 06-01; carol and nobody: none).
    orders = duckdb_frame["orders_lifetime"].to_numpy().reshape(len(customers), len(cutoffs)).tolist()
    assert orders == [[0, 1, 2, 2], [0, 1, 1, 2], [0, 0, 0, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("service", ["churn_v1", "cltv_v1"])
def test_the_frame_is_what_feasts_own_retrieval_of_the_service_gives(embedded, service: str) -> None:
    """training_frame runs the on-demand view on its inputs alone; Feast's own path, asked for the whole service,
    must give the same values (defaults filled the same way) at every cutoff, before and after each event."""
    from features.store.defaults import fill_defaults, service_features

    workspace, settings, _ = embedded
    store = open_store(workspace, settings)
    cutoffs = [t(m) for m in ("2024-01-01", "2025-02-01 23:00", "2025-02-11", "2025-05-01", "2025-07-01")]
    customers = ["alice", "bob", "carol", "nobody"]
    entities = pd.DataFrame(
        {"customer_id": [c for c in customers for _ in cutoffs], "cutoff": cutoffs * len(customers)}
    )
    ours = training_frame(entities, service, store)
    asked = entities.rename(columns={"cutoff": "event_timestamp"})
    feasts = store.get_historical_features(
        entity_df=asked.assign(request_time=asked["event_timestamp"]),
        features=store.get_feature_service(service),
    ).to_df()
    features = service_features(store, service)
    names = [f.name for f in features]
    feasts = fill_defaults(feasts, features).set_index(["customer_id", "event_timestamp"])[names]
    ours = ours.rename(columns={"cutoff": "event_timestamp"}).set_index(["customer_id", "event_timestamp"])[
        names
    ]
    pd.testing.assert_frame_equal(ours, feasts.loc[ours.index], check_dtype=False, check_index_type=False)
    assert ours["days_since_last_order"].notna().sum() >= 8  # request-time values compared, not only nulls


def test_a_moved_workspace_reads_its_own_tables(tmp_path) -> None:
    """The registry names each offline table by its absolute path; a workspace moved (or copied, then the original
    deleted) read the old folder's tables, or failed on their absence. Opened, it names its own again."""
    import shutil

    from feature_store_fixtures import build, embedded_settings, new_workspace

    from features.store.config import offline_folder
    from tessera.core.settings import Workspace

    settings = embedded_settings()
    build(new_workspace(tmp_path / "before"), settings)
    shutil.move(tmp_path / "before", tmp_path / "after")
    moved = Workspace(tmp_path / "after")

    store = open_store(moved, settings)
    for view in store.list_feature_views():
        assert Path(view.batch_source.path).parent == offline_folder(moved), view.name
    entities = pd.DataFrame({"customer_id": ["bob"], "cutoff": [t("2025-06-01 09:00")]})
    (at,) = training_frame(entities, "churn_v1", store).to_dict("records")
    assert at["orders_lifetime"] == 2 and at["spend_lifetime"] == 26.0
