"""The identity step end to end: canonical tables in, records, links, clusters and stable ids out.

Files in `workspace.identity`: records.parquet (standardised identity records), links.parquet (every
link with its evidence), crosswalk.parquet (source, record_id, identity_key, customer_id),
customers.parquet, aliases.parquet, model.json (the fitted matcher) and summary.json.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.identity.cluster import cluster_records
from features.identity.decisions import constraints, read_decisions, with_steward_links
from features.identity.ids import alias_targets, assign_customer_ids, empty_aliases, follow_alias
from features.identity.incremental import Resolution, dirty_keys, link_incrementally, standardise_changed
from features.identity.match import (
    MATCH_COLUMNS,
    IdentityMatcher,
    MatchPlan,
    distinct_records,
    identical_groups,
    model_fingerprint,
    plan_matching,
)
from features.identity.records import (
    Summaries,
    arrow_text,
    canonical_files,
    identity_records,
    is_in,
    read_records,
    summarise_files,
    write_table,
)
from features.identity.standardise import null_placeholders
from features.ingest.manifest import FileHashes
from tessera.core.settings import Settings, Workspace
from tessera.core.timeutil import as_utc

logger = logging.getLogger(__name__)

# The matcher's plan is checked against the data again once this share of the records changed since the
# last check; a model whose plan no longer fits is retrained.
REPLAN_SHARE = 0.05

# Identifiers (and birth dates) that a form or a shop may fill with one value for everybody.
PLACEHOLDER_COLUMNS = ("email", "phone", "loyalty_number", "national_id", "birth_date")


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None


class _Background:
    """Tables written in threads beside the next steps (Parquet's encoding runs outside the GIL); `wait` raises
    the first write's error."""

    def __init__(self) -> None:
        self.writes: list[Future] = []

    def write(self, frame: pd.DataFrame, path: Path) -> Future:
        pool = ThreadPoolExecutor(max_workers=1)
        self.writes.append(pool.submit(write_table, frame, path))
        pool.shutdown(wait=False)  # the thread ends with its write, whether or not this run gets to `wait`
        return self.writes[-1]

    def wait(self) -> None:
        for write in self.writes:
            write.result()


def load_matcher(path: Path, plan: MatchPlan | None) -> IdentityMatcher | None:
    """The matcher saved at `path`, or None when there is none, it is untrained or not built for `plan`.

    `plan` is what a fit on today's records would choose: a model fitted on other columns (or before the
    comparisons changed) has another fingerprint and is retrained. None: the saved model's own plan, so
    only a change of the comparisons in the code retrains.
    """
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if plan is None and "plan" in data:
        plan = MatchPlan.from_json(data["plan"])
    if plan is None or data.get("fingerprint") != model_fingerprint(plan):
        logger.warning(
            "saved identity model %s was built for other attributes or comparisons; retraining", path
        )
        return None
    if not data.get("trained"):
        return None  # priors only: train as soon as there is enough data
    return IdentityMatcher.from_json(data)


def _saved_priors(path: Path, matcher: IdentityMatcher) -> bool:
    """Whether `path` holds an untrained matcher with `matcher`'s structure and parameters (the same priors)."""
    if not path.exists():
        return False
    data = json.loads(path.read_text(encoding="utf-8"))
    return (
        not data.get("trained")
        and data.get("fingerprint") == matcher.fingerprint_
        and data.get("params") == matcher.get_params()
    )


def previous_resolution(folder: Path) -> Resolution | None:
    """The records and links the last run wrote in `folder`, or None when there is no complete one."""
    records, links = folder / "records.parquet", folder / "links.parquet"
    if not (records.exists() and links.exists()):
        return None
    wanted = [*MATCH_COLUMNS, "customer_id"]
    if not set(wanted) <= set(pq.read_schema(records).names):
        return None  # written for other attributes: nothing to compare with
    return Resolution(read_records(records, columns=wanted), read_records(links, nullable_ints=True))


def resolve_identities(
    workspace: Workspace,
    now: datetime,
    settings: Settings,
    retrain: bool = False,
    full: bool = False,
) -> dict:
    """Standardise, link and cluster every identity record and give each cluster a stable customer id.

    With a previous resolution and its model reused, only new or changed records are scored and only
    the clusters they touch are rebuilt (`incremental.py`); `full=True` (or a retrained model) scores
    every record again.
    """
    now = as_utc(now)
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    timings: dict[str, float] = {}
    cpu: dict[
        str, float
    ] = {}  # user + system of every thread: on a busy machine it moves far less than wall time

    def lap(step: str) -> None:
        timings[step] = round(time.perf_counter() - started - sum(timings.values()), 2)
        cpu[step] = round(_cpu_seconds() - cpu_started - sum(cpu.values()), 2)
        logger.info("identity: %s done in %.1fs (CPU %.1fs)", step, timings[step], cpu[step])

    out = workspace.identity
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = canonical_files(workspace)
    summaries = summarise_files(con, files, out / "summaries", FileHashes(workspace))
    raw = identity_records(con, summaries)
    con.close()
    lap("load")

    background = _Background()
    records, invalid = standardise_changed(raw, settings.default_phone_region, out, background.write)
    records, placeholders = null_placeholders(records, PLACEHOLDER_COLUMNS)
    lap("standardise")

    reuse = not retrain and (out / "model.json").exists()
    last_run = previous_resolution(out) if reuse and not full else None
    changes = dirty_keys(records, last_run) if last_run is not None else None
    # Planning reads every record: done when there is no saved model to check, or once the records that
    # changed since the last check pass `REPLAN_SHARE` of them (a daily 1% cannot move the plan's counts).
    unplanned = _changed_since_plan(out) + (len(changes.dirty) + len(changes.removed) if changes else 0)
    check_plan = changes is None or unplanned > REPLAN_SHARE * len(records)
    # Records written alike, grouped once for whichever of the plan check, fit and predict run.
    groups = identical_groups(records) if (reuse and check_plan) or last_run is None else None
    matcher = None
    if reuse:
        matcher = load_matcher(
            out / "model.json", plan_matching(distinct_records(records, groups)) if check_plan else None
        )
    trained = matcher is None
    if trained and groups is None:  # a daily run whose saved model no longer fits: fit and predict anew
        groups = identical_groups(records)
    if matcher is None:
        matcher = IdentityMatcher().fit(records, groups)
        lap("fit")
    # The last run's links stay valid only under its model: reused, or the same priors again.
    same_model = not trained or (not matcher.trained_ and _saved_priors(out / "model.json", matcher))
    if not same_model:
        last_run = None
    decisions = read_decisions(out)
    steward = constraints(decisions)
    incremental, carried = {}, None
    if last_run is None:
        links = matcher.predict(records, groups=groups)
        lap("predict")
        links = with_steward_links(links, steward.must, records["identity_key"])
        clusters, links = cluster_records(records, links, steward.cannot)
        lap("cluster")
    else:
        linked = link_incrementally(matcher, records, last_run, changes, steward)
        clusters, links, carried = linked.clusters, linked.links, linked.carried
        incremental = {"dirty": linked.dirty, "removed": linked.removed, "reclustered": linked.reclustered}
        lap("link incrementally")

    ids = assign_customer_ids(
        clusters,
        _without_split_votes(
            _previous_keys(out) if last_run is None else last_run.records[["identity_key", "customer_id"]],
            steward.left,
        ),
        _read(out / "customers.parquet"),
        _read(out / "aliases.parquet"),
        now,
        carried,
    )
    # Each record's customer by one hash look-up in Arrow (a pandas map by a million keys: half a second).
    position = pc.index_in(
        arrow_text(records["identity_key"]), value_set=arrow_text(ids.keys["identity_key"])
    )
    customer_id = pc.take(arrow_text(ids.keys["customer_id"]), position)
    records = records.assign(customer_id=pd.arrays.ArrowStringArray(customer_id))

    out.mkdir(parents=True, exist_ok=True)
    records_written = background.write(records, out / "records.parquet")
    background.write(links, out / "links.parquet")
    background.write(ids.aliases if not ids.aliases.empty else empty_aliases(), out / "aliases.parquet")
    source_records = _write_crosswalk(summaries, ids.keys, out / "crosswalk.parquet")
    records_written.result()
    _write_customers(ids.customers, out / "records.parquet", out / "customers.parquet")
    background.wait()
    if trained:
        (out / "model.json").write_text(json.dumps(matcher.to_json(), indent=2), encoding="utf-8")
    lap("ids and write")

    kept = links[links["kept"]]
    summary = {
        "now": now.isoformat(),
        "source_types": sorted({file.source_type for file in files}),
        "canonical_files_reused": summaries.reused,
        "records": len(records),
        "source_records": source_records,
        "links": {kind: int(n) for kind, n in kept["kind"].value_counts().sort_index().items()},
        "links_cut_by_guards": int((~links["kept"]).sum()),
        "customers": len(ids.customers),
        "new_ids": ids.minted,
        "kept_ids": ids.kept,
        "merges": ids.merged,
        "retired_ids": ids.retired,
        "aliases": len(ids.aliases),
        "steward_decisions": int(decisions["decision_id"].nunique()),
        "invalid_values": invalid,
        "placeholder_values": placeholders,
        "model": ("trained" if matcher.trained_ else "priors only") if trained else "reused",
        "plan": matcher.plan_.to_json(),
        # Records changed since the plan was last checked against the data (0: checked in this run).
        "changed_since_plan_check": 0 if check_plan or trained else unplanned,
        "mode": "incremental" if last_run is not None else "full",
        "incremental_records": incremental,
        "seconds": round(time.perf_counter() - started, 2),
        "step_seconds": timings,
        "step_cpu_seconds": cpu,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _without_split_votes(previous: pd.DataFrame | None, left: pd.DataFrame) -> pd.DataFrame | None:
    """The previous keys without a steward's split-off records still on the customer they were split off:
    they do not vote for that id, so it stays with the rest and the split-off record gets a new one."""
    if previous is None or left.empty:
        return previous
    pairs = previous["identity_key"].astype(str) + "\0" + previous["customer_id"].astype(str)
    return previous[~is_in(pairs, left["identity_key"] + "\0" + left["customer_id"])]


def _cpu_seconds() -> float:
    """User + system time of this process and of the processes it forked (standardising does)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _changed_since_plan(folder: Path) -> float:
    """How many records changed since the last run that checked the matcher's plan (summary.json); infinite
    when unknown (no summary, or one written before the count existed), so the plan is checked."""
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return float("inf")
    return summary.get("changed_since_plan_check", float("inf"))


def _previous_keys(folder: Path) -> pd.DataFrame | None:
    """Each identity key's customer id as the last run left it (records.parquet: one row per key)."""
    path = folder / "records.parquet"
    return read_records(path, columns=["identity_key", "customer_id"]) if path.exists() else None


def _write_crosswalk(summaries: Summaries, keys: pd.DataFrame, path: Path) -> int:
    """crosswalk.parquet from each file's record ids and `keys` (identity_key, customer_id); its row count.

    In Arrow: the files' distinct record ids (cached with their summaries, each in record-id order) get
    their key's customer id by one hash look-up and are written out as they are, never sorted or joined.
    """
    ids = pa.concat_tables(
        pq.read_table(ids_path, columns=["source", "record_id", "identity_key"]).cast(
            pa.schema(list(CROSSWALK_SCHEMA)[:3])
        )
        for ids_path in summaries.record_ids
    )
    position = pc.index_in(ids["identity_key"], value_set=pa.array(keys["identity_key"], type=pa.string()))
    customer_ids = pa.array(keys["customer_id"], type=pa.string(), from_pandas=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(ids.append_column(CROSSWALK_SCHEMA.field(3), pc.take(customer_ids, position)), tmp)
    os.replace(tmp, path)
    return len(ids)


CROSSWALK_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("source", "record_id", "identity_key", "customer_id")]
)


def _write_customers(customers: pd.DataFrame, records: Path, path: Path) -> None:
    """customers.parquet: customer_id, created_at, n_records (identity records) and their sorted sources.

    Joined and written by DuckDB: the per-customer lists of sources never become Python objects.
    """
    con = duckdb.connect()
    con.register(
        "customers", pa.Table.from_pandas(customers[["customer_id", "created_at"]], preserve_index=False)
    )
    tmp = path.with_suffix(".tmp")
    con.execute(
        f"""COPY (
            SELECT c.customer_id, c.created_at, r.n_records, r.sources FROM customers c
            LEFT JOIN (SELECT customer_id, count(*) AS n_records,
                              list_sort(list_distinct(flatten(list(sources)))) AS sources
                       FROM read_parquet('{str(records).replace("'", "''")}') GROUP BY customer_id) r
            USING (customer_id)
            ORDER BY c.customer_id
        ) TO '{str(tmp).replace("'", "''")}' (FORMAT parquet)"""
    )
    con.close()
    os.replace(tmp, path)


def resolve_customer_id(workspace: Workspace, any_id: str) -> str | None:
    """The live customer id for any id ever issued: itself, the customer it was merged into, or None."""
    customers = _read(workspace.identity / "customers.parquet")
    if customers is None:
        return None
    aliases = _read(workspace.identity / "aliases.parquet")
    targets = alias_targets(aliases) if aliases is not None else {}
    return follow_alias(set(customers["customer_id"]), targets, any_id)
