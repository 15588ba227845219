"""Can a careful human link each person's records? A record links to another of the same person when
they share a strong identifier (account/contact/member id, loyalty card, a personal email, a mobile), or
a name plus one more attribute (address, birth date, a shared family email or landline).

Used to repair records that would be unlinkable, to measure how many records are "hard" (linkable only
through names) and to find held-back records that bridge two parts of a person.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from simulator.records import (
    ADDR_CURRENT,
    ADDR_OLD,
    EMAIL_ALT,
    EMAIL_MAIN,
    PHONE_LANDLINE,
    PHONE_MOBILE,
)


def tokens(records: pd.DataFrame, shared_email: np.ndarray) -> pd.DataFrame:
    """Long table (record, token, strong) of what each record could be linked on."""
    r = np.arange(len(records))
    person = records["person"].to_numpy().astype(str).astype(object)
    name = records["has_name"].to_numpy()
    ek = records["email_kind"].to_numpy()
    pk = records["phone_kind"].to_numpy()
    addr = records["addr"].to_numpy()
    shared = shared_email[records["person"].to_numpy()]
    parts = [
        (r, records["id_token"].to_numpy(dtype=object), True),
        (
            r[records["card"].notna().to_numpy()],
            ("card:" + records["card"].dropna()).to_numpy(dtype=object),
            True,
        ),
    ]
    for kind in (EMAIL_MAIN, EMAIL_ALT):
        personal = (ek == kind) & ~(shared & (kind == EMAIL_MAIN))
        parts.append((r[personal], f"e{kind}:" + person[personal], True))
    family = (ek == EMAIL_MAIN) & shared & name
    parts.append((r[family], "ne:" + person[family], False))
    mobile = pk == PHONE_MOBILE
    parts.append((r[mobile], "m:" + person[mobile], True))
    land = (pk == PHONE_LANDLINE) & name
    parts.append((r[land], "nl:" + person[land], False))
    for bit in (ADDR_CURRENT, ADDR_OLD):
        has = name & ((addr & bit) > 0)
        parts.append((r[has], f"na{bit}:" + person[has], False))
    dob = name & records["dob_ok"].to_numpy()
    parts.append((r[dob], "nd:" + person[dob], False))
    return pd.DataFrame(
        {
            "record": np.concatenate([p[0] for p in parts]),
            "token": np.concatenate([np.asarray(p[1], dtype=object) for p in parts]),
            "strong": np.concatenate([np.full(len(p[0]), p[2]) for p in parts]),
        }
    )


def components(n_records: int, toks: pd.DataFrame, keep: np.ndarray | None = None) -> np.ndarray:
    """Connected-component label of every record (records outside `keep` get -1)."""
    if keep is not None:
        toks = toks[keep[toks["record"].to_numpy()]]
    codes, _ = pd.factorize(toks["token"])
    rows = toks["record"].to_numpy()
    cols = n_records + codes
    size = n_records + (codes.max() + 1 if len(codes) else 0)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(size, size)).tocsr()
    _, labels = connected_components(graph, directed=False)
    labels = labels[:n_records].astype(np.int64)
    if keep is not None:
        labels = np.where(keep, labels, -1)
    return labels


def parts_per_person(person: np.ndarray, labels: np.ndarray) -> pd.Series:
    """How many separate groups each person's (kept) records fall into."""
    kept = labels >= 0
    return pd.Series(labels[kept]).groupby(person[kept]).nunique()


def stray_records(person: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Records not in their person's largest group (those a careful human could not link)."""
    frame = pd.DataFrame({"person": person, "label": labels})
    sizes = frame.groupby(["person", "label"]).size().rename("size").reset_index()
    main = sizes.sort_values(["person", "size", "label"], ascending=[True, False, True]).drop_duplicates(
        "person"
    )
    main_label = pd.Series(main["label"].to_numpy(), index=main["person"].to_numpy())
    return labels != main_label.reindex(person).to_numpy()


def hard_records(records: pd.DataFrame, toks: pd.DataFrame) -> np.ndarray:
    """Records of multi-record people that share no strong identifier with another record of theirs."""
    strong = toks[toks["strong"].to_numpy()]
    shared = strong.groupby("token")["record"].transform("nunique").to_numpy() > 1
    easy = np.zeros(len(records), dtype=bool)
    easy[strong["record"].to_numpy()[shared]] = True
    person = records["person"].to_numpy()
    multi = pd.Series(person).map(pd.Series(person).value_counts()).to_numpy() > 1
    return multi & ~easy
