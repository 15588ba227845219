"""Feature-store benchmark: build, online reads and point-in-time retrieval on a synthetic 100k-customer profile.

    uv run python benchmarks/feature_store.py                      # every stage, embedded and production
    uv run python benchmarks/feature_store.py --customers 20000    # smaller
    uv run python benchmarks/feature_store.py --offline-store file   # Feast's dask store (slower)
    uv run python benchmarks/feature_store.py --customers 20000 --compare-feast-precomputed

Each stage runs in a child process, so its wall time and peak memory (max RSS) are its own. Targets (issue):
build ≤ 120 s for 100k customers × ≥ 40 features; one churn_v1 vector p99 ≤ 2 ms and 100 vectors p99 ≤ 20 ms
(SQLite and Redis); point-in-time retrieval of 100k entity rows ≤ 60 s. `--compare-feast-precomputed` builds
the Redis store only and reads the same vectors from Tessera's packed layout and from Feast's own
pre-computed vectors (`FeatureService(precompute_online=True)` on Feast's Redis store), side by side.
Results: docs/feature_store.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from _measure import machine, run_measured

NOW = datetime(2025, 12, 31, 23, 59, tzinfo=UTC)
START = datetime(2024, 1, 1, tzinfo=UTC)
WEB = ["page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "checkout_start"]
EMAIL = ["sent", "open", "click", "unsubscribe", "bounce"]


def _times(rng: np.random.Generator, n: int) -> np.ndarray:
    span = (NOW - START).total_seconds()
    seconds = rng.uniform(0, span, n).astype("int64")
    return (pd.Timestamp(START) + pd.to_timedelta(seconds, unit="s")).to_numpy()


def generate(workspace: Path, customers: int, seed: int = 7) -> dict[str, int]:
    """Write a synthetic profile (docs/profile.md schema) and catalogue: ~6 orders, ~30 interactions a customer."""
    rng = np.random.default_rng(seed)
    profile, catalogue = workspace / "data" / "profile", workspace / "data" / "canonical" / "products"
    profile.mkdir(parents=True, exist_ok=True)
    catalogue.mkdir(parents=True, exist_ok=True)
    ids = np.array([f"C{i:07d}" for i in range(customers)])
    n_skus = 2000
    skus = np.array([f"SKU{i:05d}" for i in range(n_skus)])
    prices = np.round(rng.lognormal(3, 0.6, n_skus), 2)
    tops = np.array(["Home", "Garden", "Fashion", "Beauty", "Sport", "Toys", "Food", "Tech"])
    categories = np.array([f"{tops[i % 8]} > Group {i % 50}" for i in range(n_skus)])
    pd.DataFrame(
        {
            "sku": skus,
            "category": categories,
            "brand": [f"Brand {i % 120}" for i in range(n_skus)],
            "price": prices,
            "available": rng.random(n_skus) > 0.1,
            "source": "catalogue",
        }
    ).to_parquet(catalogue / "catalogue.parquet")

    member = rng.random(customers) < 0.4
    pd.DataFrame(
        {
            "customer_id": ids,
            "first_name": "X",
            "email": [f"{c.lower()}@example.com" for c in ids],
            "country": rng.choice(["GB", "FR", "DE", "NL", "IE"], customers),
            "birth_date": (
                pd.Timestamp("1945-01-01") + pd.to_timedelta(rng.integers(0, 60 * 365, customers), "D")
            ).date,
            "loyalty_tier": np.where(member, rng.choice(["bronze", "silver", "gold"], customers), None),
            "loyalty_points": np.where(member, rng.integers(0, 5000, customers), np.nan),
            "loyalty_joined_at": pd.Series(_times(rng, customers)).where(member),
        }
    ).to_parquet(profile / "customers.parquet")

    n_orders = rng.poisson(6, customers)
    order_customer = np.repeat(ids, n_orders)
    order_ids = np.array([f"O{i}" for i in range(len(order_customer))])
    order_times = _times(rng, len(order_ids))
    lines_per_order = rng.integers(1, 4, len(order_ids))
    line_order = np.repeat(np.arange(len(order_ids)), lines_per_order)
    line_sku = np.minimum(rng.zipf(1.3, len(line_order)) - 1, n_skus - 1)
    quantity = rng.integers(1, 3, len(line_order)).astype(float)
    sales = pd.DataFrame(
        {
            "customer_id": order_customer[line_order],
            "order_id": order_ids[line_order],
            "ordered_at": order_times[line_order],
            "sku": skus[line_sku],
            "quantity": quantity,
            "unit_price": prices[line_sku],
            "channel": np.where(rng.random(len(order_ids)) < 0.5, "online", "store")[line_order],
            "line_type": "sale",
        }
    )
    returned = sales[rng.random(len(sales)) < 0.05].copy()
    returned["order_id"] = "R" + returned["order_id"]
    returned["ordered_at"] = returned["ordered_at"] + pd.Timedelta(days=10)
    returned["quantity"] = -returned["quantity"]
    returned["line_type"] = "return"
    orders = pd.concat([sales, returned[returned["ordered_at"] <= NOW]], ignore_index=True)
    orders["amount"] = orders["quantity"] * orders["unit_price"]
    orders.to_parquet(profile / "orders.parquet")

    n_events = rng.poisson(30, customers)
    event_customer = np.repeat(ids, n_events)
    channel = rng.choice(["web", "email", "service"], len(event_customer), p=[0.6, 0.37, 0.03])
    event_type = np.where(
        channel == "web",
        rng.choice(WEB, len(channel), p=[0.4, 0.3, 0.1, 0.1, 0.03, 0.07]),
        np.where(
            channel == "email", rng.choice(EMAIL, len(channel), p=[0.6, 0.25, 0.1, 0.01, 0.04]), "ticket"
        ),
    )
    pd.DataFrame(
        {
            "customer_id": event_customer,
            "occurred_at": _times(rng, len(event_customer)),
            "channel": channel,
            "event_type": event_type,
            "sku": np.where(channel == "web", skus[rng.integers(0, n_skus, len(channel))], None),
            "session_id": np.char.add(event_customer, rng.integers(0, 20, len(channel)).astype(str)),
            "satisfaction": np.where(channel == "service", rng.integers(1, 6, len(channel)), np.nan),
        }
    ).to_parquet(profile / "interactions.parquet")

    pd.DataFrame(
        {
            "customer_id": ids,
            "purpose": rng.choice(["email", "sms", "personalisation", "profiling"], customers),
            "granted": rng.random(customers) < 0.7,
            "recorded_at": _times(rng, customers),
        }
    ).to_parquet(profile / "consent_events.parquet")
    return {"customers": customers, "order_lines": len(orders), "interactions": int(n_events.sum())}


def _settings(args: argparse.Namespace):
    from features.store.settings import FeatureStoreSettings

    production = args.online == "redis"
    return FeatureStoreSettings(
        _env_file=None,
        project=args.project,
        online_store=args.online,
        registry="sql" if production else "file",
        offline_store=args.offline_store,
        registry_cache_ttl_seconds=0,
    )


def stage_build(args: argparse.Namespace) -> dict:
    from features.store import build_feature_store
    from tessera.core.settings import Settings, Workspace

    summary = build_feature_store(Workspace(args.workspace), NOW, Settings(), _settings(args))
    rows = {name: table["rows"] for name, table in summary["tables"].items()}
    return {"seconds": summary["seconds"], "rows": rows, "materialized": summary["materialized"]}


def _percentiles(samples: list[float]) -> dict[str, float]:
    values = np.array(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
    }


def _sample_ids(customers: int) -> list[str]:
    rng = np.random.default_rng(1)
    return [f"C{i:07d}" for i in rng.integers(0, customers, 5000)]


def _read_timings(read: Callable[[list[str]], object], ids: list[str]) -> dict[str, dict[str, float]]:
    """p50/p99 wall and CPU time of `read` for one customer (3,000 calls) and for 100 (300 calls)."""
    for customer in ids[:200]:  # warm caches and connections
        read([customer])
    batches = {
        "one_customer": [[customer] for customer in ids[:3000]],
        "hundred_customers": [[ids[(i * 100 + j) % len(ids)] for j in range(100)] for i in range(300)],
    }
    timings = {}
    for name, calls in batches.items():
        wall, cpu = [], []
        for batch in calls:
            started, cpu_started = time.perf_counter(), time.process_time()
            read(batch)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        timings[name] = _percentiles(wall)
        # CPU time of this process alone: what the read costs when the machine is not shared.
        timings[f"{name}_cpu"] = _percentiles(cpu)
    return timings


def stage_online(args: argparse.Namespace) -> dict:
    from features.store import OnlineFeatures
    from tessera.core.settings import Workspace

    reader = OnlineFeatures.open(Workspace(args.workspace), "churn_v1", _settings(args))
    return {
        "features": len(reader.names),
        **_read_timings(reader.vectors, _sample_ids(args.customers)),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }


def _stored_service(name: str, precompute: bool):
    """churn_v1 without its request-time view: Feast pre-computes only services without one."""
    from feast import FeatureService

    from features.feature_repo.feature_services import churn_v1
    from features.feature_repo.on_demand import customer_request_time

    views = [view for view in churn_v1._features if view.name != customer_request_time.name]
    return FeatureService(name=name, features=views, precompute_online=precompute)


def _feast_redis_store(args: argparse.Namespace):
    """A FeatureStore on the same offline tables with Feast's own Redis store, in a project of its own."""
    from feast import FeatureStore, RepoConfig

    from features.store.config import DECLARATIONS, config_dict
    from tessera.core.settings import Workspace

    workspace, settings = Workspace(args.workspace), _settings(args)
    raw = config_dict(workspace, settings)
    raw["project"] = f"{settings.project}_feast"
    raw["online_store"] = {"type": "redis", "connection_string": settings.redis_url.get_secret_value()}
    raw["registry"] = {
        "registry_type": "file",
        "path": str(workspace.feature_repo_data / "feast_registry.db"),
    }
    config = RepoConfig(**raw)
    config.repo_path = DECLARATIONS
    return FeatureStore(config=config)


def stage_feast_precomputed(args: argparse.Namespace) -> dict:
    """The same vectors read from Tessera's packed layout and from Feast's pre-computed vectors, on Redis."""
    from features.store import OnlineFeatures, open_store
    from features.store.repo import apply_declarations, materialize, teardown_project
    from tessera.core.settings import Workspace

    workspace, ids = Workspace(args.workspace), _sample_ids(args.customers)
    ours = open_store(workspace, _settings(args))
    ours.apply([_stored_service("churn_v1_stored", precompute=False)])
    packed = OnlineFeatures(ours, "churn_v1_stored")

    feast = _feast_redis_store(args)
    apply_declarations(feast, workspace)
    precomputed = _stored_service("churn_v1_stored", precompute=True)
    feast.apply([precomputed])
    started = time.perf_counter()
    materialize(feast, workspace, NOW, full=True)
    materialized = time.perf_counter()
    vectors = feast.precompute_feature_service(precomputed.name)
    computed = time.perf_counter()

    def read_precomputed(customers: list[str]) -> object:
        rows = [{"customer_id": customer} for customer in customers]
        # Feast 0.67 stores the vectors under `view__feature` names and finds them only when asked for those.
        response = feast.get_online_features(features=precomputed, entity_rows=rows, full_feature_names=True)
        return response.to_dict()

    try:
        # Equal answers first: a faster read of different values would prove nothing.
        sample = ids[:100]
        theirs = {name.split("__")[-1]: values for name, values in read_precomputed(sample).items()}
        for i, vector in enumerate(packed.vectors(sample)):
            for name, value in vector.items():
                if theirs[name][i] != value:
                    raise SystemExit(
                        f"{sample[i]} {name}: packed {value!r}, Feast pre-computed {theirs[name][i]!r}"
                    )
        return {
            "features": len(packed.names),
            "feast_materialize_seconds": round(materialized - started, 1),
            # What Feast redoes for every entity after each push to a view of the service.
            "feast_precompute_seconds": round(computed - materialized, 1),
            "feast_vectors": vectors,
            "packed": _read_timings(packed.vectors, ids),
            "feast_precomputed": _read_timings(read_precomputed, ids),
            "load_average": [round(x, 1) for x in os.getloadavg()],
        }
    finally:
        teardown_project(feast)


def stage_retrieval(args: argparse.Namespace) -> dict:
    from features.store import open_store, training_frame
    from tessera.core.settings import Workspace

    rng = np.random.default_rng(2)
    entities = pd.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in rng.integers(0, args.customers, args.entity_rows)],
            "cutoff": pd.Timestamp(NOW)
            - pd.to_timedelta(rng.integers(0, 365 * 86400, args.entity_rows), "s"),
        }
    )
    started = time.perf_counter()
    frame = training_frame(entities, "churn_v1", open_store(Workspace(args.workspace), _settings(args)))
    return {"seconds": round(time.perf_counter() - started, 2), "rows": len(frame), "columns": frame.shape[1]}


def stage_teardown(args: argparse.Namespace) -> dict:
    from features.store import open_store
    from features.store.repo import teardown_project
    from tessera.core.settings import Workspace

    teardown_project(open_store(Workspace(args.workspace), _settings(args)))
    return {}


STAGES = {
    "build": stage_build,
    "online": stage_online,
    "retrieval": stage_retrieval,
    "feast_precomputed": stage_feast_precomputed,
    "teardown": stage_teardown,
}


def _child(args: argparse.Namespace, stage: str, **overrides: str) -> None:
    command = [sys.executable, __file__, "--stage", stage, "--workspace", str(args.workspace)]
    options = {
        "customers": args.customers,
        "entity_rows": args.entity_rows,
        "offline_store": args.offline_store,
        "online": args.online,
        "project": args.project,
    }
    options.update(overrides)
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    measured = run_measured(f"{stage} {overrides}", command)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"  {stage:<10} {overrides or ''} wall {measured.seconds:7.1f} s, peak {measured.peak_gib:5.2f} GiB (load {load})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stage", choices=["all", "generate", *STAGES], default="all")
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/tessera-feature-store-benchmark"))
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--entity-rows", type=int, default=100_000)
    parser.add_argument("--offline-store", choices=["file", "duckdb"], default="duckdb")
    parser.add_argument("--online", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--project", default="tessera_bench")
    parser.add_argument(
        "--compare-feast-precomputed",
        action="store_true",
        help="build the Redis store only and compare its reads with Feast's own pre-computed vectors",
    )
    args = parser.parse_args()
    if args.stage == "generate":
        print(json.dumps(generate(args.workspace, args.customers)))
    elif args.stage != "all":
        result = STAGES[args.stage](args)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(f"  {args.stage}: {json.dumps(result)} (peak {peak:.2f} GiB)", flush=True)
    else:
        print(f"{machine()} · {args.customers:,} customers · offline store: {args.offline_store}", flush=True)
        if not (args.workspace / "data" / "profile" / "customers.parquet").exists():
            _child(args, "generate")
        # Every build starts empty: a registry left by an earlier run would make materialisation incremental.
        shutil.rmtree(args.workspace / "data" / "feast", ignore_errors=True)
        if args.compare_feast_precomputed:
            _child(args, "teardown", online="redis")
            _child(args, "build", online="redis")
            _child(args, "feast_precomputed", online="redis")
            _child(args, "teardown", online="redis")
            return
        _child(args, "build", online="sqlite")
        _child(args, "online", online="sqlite")
        _child(args, "retrieval", online="sqlite")
        _child(args, "teardown", online="redis")
        _child(args, "build", online="redis")
        _child(args, "online", online="redis")
        _child(args, "teardown", online="redis")


if __name__ == "__main__":
    main()
