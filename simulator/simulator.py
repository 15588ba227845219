"""`simulate_retailer`: write a simulated retailer's exports, its sources.yaml and the truth, chunk by chunk."""

from __future__ import annotations

import json
import logging
import shutil
import time
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from simulator import export_events, export_orders, export_people, truth
from simulator.behaviour import Season
from simulator.catalogue import build_catalogue, products_export
from simulator.chunk import Counters, simulate_chunk
from simulator.config import Clock, SimConfig, chunk_rng
from simulator.mapping import EXPORTS, export_file, write_mappings
from simulator.people import EmailBook, tables
from simulator.writers import ParquetSink, TextSink
from tessera.core.progress import track

log = logging.getLogger(__name__)
OUTPUTS = ("exports", "exports_later", "truth", "sources.yaml", "sources_full.yaml")


def _sink(folder: Path, name: str) -> TextSink | ParquetSink:
    spec = EXPORTS[name]
    path = folder / export_file(name)
    if spec["format"] == "parquet":
        return ParquetSink(path)
    return TextSink(
        path, spec.get("encoding", "utf-8"), spec.get("delimiter", ","), jsonl=spec["format"] == "jsonl"
    )


def prepare_output(out: Path) -> Path:
    """The output folder, created, without what an earlier run wrote there (only the simulator's own files)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    return out


def simulate_retailer(
    customers: int,
    seed: int,
    out: Path,
    as_of: date = date(2025, 12, 31),
    holdback: float = 0.0,
    config: SimConfig | None = None,
) -> dict[str, Any]:
    """Simulate `customers` people of a UK retailer into `out`; the same arguments give byte-identical files.

    `config` (default `SimConfig()`) sets every rate and the history's length, e.g. `hard_config()`.
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if not 0.0 <= holdback < 1.0:
        raise ValueError(f"holdback must be in [0, 1), got {holdback}")
    started = time.perf_counter()
    out = prepare_output(out)
    config = config or SimConfig()
    clock = Clock.for_as_of(as_of, config)
    season = Season.build(clock)
    catalogue = build_catalogue(seed, clock, config, len(tables().towns))
    person_sources = [n for n in EXPORTS if n != "products"]
    initial = {name: _sink(out / "exports", name) for name in person_sources}
    later = {name: _sink(out / "exports_later", name) for name in person_sources}
    identity = TextSink(out / "truth" / "identity.csv")
    people_sink = ParquetSink(out / "truth" / "persons.parquet")
    future_sink = ParquetSink(out / "truth" / "future_orders.parquet")
    anonymous_sink = ParquetSink(out / "truth" / "anonymous_ids.parquet")
    counters, emails = Counters(), EmailBook()
    stats: dict[str, int] = {}
    n_chunks = -(-customers // config.chunk_people)
    first_person = first_household = 0
    for k in track(range(n_chunks), "Simulating customers", total=n_chunks):
        n = min(config.chunk_people, customers - first_person)
        chunk = simulate_chunk(
            seed,
            k,
            n,
            first_person,
            first_household,
            clock,
            season,
            config,
            catalogue,
            emails,
            counters,
            holdback,
        )
        rng = chunk_rng(seed, k, "consents")
        splits = {
            "webshop_orders": export_orders.webshop_orders(chunk, catalogue, clock, rng),
            "store_receipts": export_orders.store_receipts(chunk, catalogue, clock),
            "crm_contacts": export_people.crm_contacts(chunk, clock, rng),
            "loyalty_members": export_people.loyalty_members(chunk, clock),
            "web_events": export_events.web_events(chunk, catalogue, rng),
            "email_events": export_events.email_events(chunk, catalogue),
            "support_tickets": export_people.support_tickets(chunk, clock, rng),
            "consents": (export_people.consents(chunk, clock, rng), None),
        }
        for name, (rows, held) in splits.items():
            if held is None or not held.any():
                initial[name].write(rows)
                continue
            initial[name].write(rows.filter(pa.array(~held)))
            later[name].write(rows.filter(pa.array(held)))
        identity.write(truth.identity_rows(chunk))
        people_sink.write(truth.persons(chunk, clock))
        future_sink.write(export_orders.future_orders(chunk, catalogue, clock))
        anonymous_sink.write(truth.anonymous_ids(chunk))
        for key, value in chunk.stats.items():
            stats[key] = stats.get(key, 0) + value
        first_person += n
        first_household = int(chunk.people["household"].max()) + 1
        log.info("chunk %d/%d: %d people", k + 1, n_chunks, n)
    initial["products"] = _sink(out / "exports", "products")
    initial["products"].write(products_export(catalogue))
    rows = {f"exports/{export_file(name)}": sink.rows for name, sink in initial.items()}
    later = {name: sink for name, sink in later.items() if sink.rows}  # sources with held-back rows
    later_rows = {f"exports_later/{export_file(name)}": sink.rows for name, sink in later.items()}
    for sink in [*initial.values(), *later.values(), identity, people_sink, future_sink, anonymous_sink]:
        sink.close()
    write_mappings(out, list(later))
    (out / "truth" / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
    return {
        "people": customers,
        "as_of": as_of.isoformat(),
        "history_days": config.history_days,
        "holdback": holdback,
        "rows": rows,
        "rows_later": later_rows,
        "source_records": sum(rows.values()) + sum(later_rows.values()),
        "records_in_truth": identity.rows,
        "future_order_lines": future_sink.rows,
        "linkage": stats,
        "seconds": round(time.perf_counter() - started, 2),
    }
