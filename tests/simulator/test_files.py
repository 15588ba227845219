"""The files: deterministic, counted right, each export in its own system's shape."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from simulator import simulate_retailer
from tests.simulator.conftest import load_mapping, read_export


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    first = simulate_retailer(customers=200, seed=5, out=tmp_path / "a", holdback=0.1)
    simulate_retailer(customers=200, seed=5, out=tmp_path / "b", holdback=0.1)
    simulate_retailer(customers=200, seed=6, out=tmp_path / "c", holdback=0.1)
    a, b, c = (_digests(tmp_path / x) for x in "abc")
    assert a == b
    assert a.keys() == c.keys() and a != c
    json.dumps(first)  # the summary is JSON-able


def test_rerun_into_the_same_folder_leaves_no_stale_files(tmp_path: Path) -> None:
    simulate_retailer(customers=100, seed=1, out=tmp_path, holdback=0.2)
    assert (tmp_path / "exports_later").is_dir()
    simulate_retailer(customers=100, seed=1, out=tmp_path)
    assert not (tmp_path / "exports_later").exists() and not (tmp_path / "sources_full.yaml").exists()


def _rows(path: Path, source: dict[str, Any]) -> int:
    if source["format"] == "parquet":
        return pq.read_metadata(path).num_rows
    lines = path.read_bytes().count(b"\n")
    return lines if source["format"] == "jsonl" else lines - 1


def test_summary_counts_the_rows_of_every_file(out: Path, sim: tuple[Path, dict[str, Any]]) -> None:
    summary = sim[1]
    counted = {**summary["rows"], **summary["rows_later"]}
    for source in load_mapping(out / "sources_full.yaml"):
        assert _rows(out / source["path"], source) == counted[source["path"]], source["name"]
    assert summary["source_records"] == sum(counted.values())
    assert summary["records_in_truth"] == sum(1 for _ in (out / "truth" / "identity.csv").open()) - 1
    assert summary["people"] == pq.read_metadata(out / "truth" / "persons.parquet").num_rows


def test_at_least_ten_source_rows_per_person(sim: tuple[Path, dict[str, Any]]) -> None:
    # 100k people must give over a million source records; the rate per person does not depend on size.
    assert sim[1]["source_records"] > 10 * sim[1]["people"]


def test_each_system_has_its_own_shape(out: Path, sources: dict[str, dict]) -> None:
    assert sources["store_receipts"]["delimiter"] == ";" and sources["store_receipts"]["decimal"] == ","
    assert sources["loyalty_members"]["format"] == "parquet"
    assert sources["web_events"]["columns"]["customer_ref"] == "user.customer_id"
    assert sources["web_events"]["id_namespace"] == sources["webshop_orders"]["id_namespace"] == "webshop"
    assert sources["email_events"]["id_namespace"] == sources["crm_contacts"]["id_namespace"] == "crm"
    assert sources["store_receipts"]["returns"]["by"] == "id_prefix"
    assert sources["webshop_orders"]["returns"]["by"] == "negative_quantity"
    assert sources["webshop_orders"]["cancellations"]["by"] == "flag"
    ref_columns = [s["columns"].get("customer_ref") for s in sources.values()]
    assert len({c for c in ref_columns if c}) >= 5  # every system names its id differently
    raw = (out / "exports" / "store_receipts.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # accented product names in latin-1
    receipts = read_export(out, sources["store_receipts"])
    assert receipts["Price"].str.fullmatch(r"\d+,\d\d").all()
    assert receipts["Date"].str.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d").all()
    assert receipts["ReceiptNo"].str.startswith("RT").any()
    assert (out / "exports" / "crm_contacts.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_every_mapped_column_exists_in_its_export(out: Path) -> None:
    for source in load_mapping(out / "sources_full.yaml"):
        frame = read_export(out, source)
        missing = set(source["columns"].values()) - set(frame.columns)
        assert not missing, (source["name"], missing)
        for column, mapping in source.get("values", {}).items():
            written = set(frame[source["columns"][column]]) - {""}
            assert written <= set(mapping), (source["name"], column, written - set(mapping))


def test_holdback_files_and_full_mapping(out: Path, sources: dict[str, dict]) -> None:
    initial = set(sources)
    full = {s["name"]: s for s in load_mapping(out / "sources_full.yaml")}
    later = {name for name in full if name.endswith("_later")}
    assert initial <= set(full) and not initial & later
    assert {"crm_contacts_later", "loyalty_members_later", "webshop_orders_later"} <= later
    for name in later:
        base = full[name.removesuffix("_later")]
        assert full[name]["path"].startswith("exports_later/")
        assert (out / full[name]["path"]).exists()
        assert full[name]["type"] == base["type"] and full[name].get("id_namespace") == base.get(
            "id_namespace"
        )


def test_holdback_only_moves_rows(tmp_path: Path) -> None:
    simulate_retailer(customers=200, seed=9, out=tmp_path / "all")
    simulate_retailer(customers=200, seed=9, out=tmp_path / "held", holdback=0.2)
    for name in ("webshop_orders.csv", "crm_contacts.csv", "support_tickets.csv"):
        whole = (tmp_path / "all" / "exports" / name).read_text(encoding="utf-8-sig").splitlines()
        first = (tmp_path / "held" / "exports" / name).read_text(encoding="utf-8-sig").splitlines()
        later_path = tmp_path / "held" / "exports_later" / name
        later = later_path.read_text(encoding="utf-8-sig").splitlines() if later_path.exists() else [first[0]]
        assert first[0] == later[0] == whole[0]
        assert sorted(first[1:] + later[1:]) == sorted(whole[1:]), name
