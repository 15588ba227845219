"""Resolution end to end on hand-made canonical tables: who links, who must not, and the files written."""

from __future__ import annotations

import pandas as pd
from identity_fixtures import NOW, contact, write_canonical

from features.identity import resolve_identities
from features.identity.cluster import _Components
from features.identity.conflict import Person, conflict, known_as
from tessera.core.settings import Settings, Workspace


def _customers_by_record(workspace: Workspace) -> dict[str, str]:
    crosswalk = pd.read_parquet(workspace.identity / "crosswalk.parquet")
    return dict(
        zip(crosswalk["source"] + "/" + crosswalk["record_id"], crosswalk["customer_id"], strict=True)
    )


def test_typo_nickname_and_new_address_are_one_customer(workspace: Workspace) -> None:
    write_canonical(
        workspace,
        "contacts",
        "crm",
        [
            contact(
                "c1",
                "Jonathan",
                "Smith",
                email="jon.smith@example.com",
                phone="07700 900456",
                street="1 Park Road",
                postcode="AB1 2CD",
                city="Leeds",
                birth_date="1975-03-14",
            ),
            contact("c2", "Mary", "Jones", street="4 Mill Lane", postcode="LS2 9JT", birth_date="1990-01-01"),
        ],
    )
    guest = {
        "order_id": "o9",
        "ordered_at": "2024-05-01T10:00:00Z",
        "sku": "s1",
        "quantity": 1,
        "unit_price": 5.0,
    }
    write_canonical(
        workspace,
        "order_lines",
        "webshop",
        # A guest checkout with a typo in the first name, same address written differently, no email.
        [
            {
                **guest,
                "record_id": "order:o9",
                "first_name": "Jonathon",
                "last_name": "Smith",
                "street": "1, Park Rd.",
                "postcode": "ab12cd",
                "birth_date": "1975-03-14",
            }
        ],
    )
    write_canonical(
        workspace,
        "loyalty_members",
        "loyalty",
        # The nickname at a new address, with the phone written the international way.
        [
            {
                "customer_ref": "m7",
                "loyalty_number": "L123",
                "first_name": "Jon",
                "last_name": "Smith",
                "phone": "+44 (0)7700 900456",
                "street": "9 Elm Grove",
                "postcode": "ZZ1 1ZZ",
                "joined_at": "2025-02-01",
            }
        ],
    )
    summary = resolve_identities(workspace, NOW, Settings())
    ids = _customers_by_record(workspace)
    assert ids["crm/c1"] == ids["webshop/order:o9"] == ids["loyalty/m7"]
    assert ids["crm/c2"] != ids["crm/c1"]
    assert summary["customers"] == 2
    assert summary["links"] == {"phone": 1, "probabilistic": 1}
    links = pd.read_parquet(workspace.identity / "links.parquet")
    assert {"kind", "match_weight", "match_probability", "gamma_name", "gamma_address"} <= set(links.columns)


def test_a_household_sharing_email_and_landline_stays_two_customers(workspace: Workspace) -> None:
    home = {
        "email": "smiths@example.com",
        "phone": "0113 496 0000",
        "street": "3 Oak Close",
        "postcode": "LS1 4AB",
    }
    write_canonical(
        workspace,
        "contacts",
        "crm",
        [
            contact("h1", "John", "Smith", birth_date="1970-06-01", **home),
            contact("h2", "Jane", "Smith", birth_date="1972-09-30", **home),
            contact("h3", "Jane", "Smith", email="smiths@example.com"),
        ],
    )
    # A newsletter recipient known only by the shared address must not bridge the two.
    write_canonical(
        workspace,
        "email_events",
        "newsletter",
        [
            {
                "customer_ref": "n1",
                "email": "Smiths@Example.com",
                "occurred_at": "2025-03-01",
                "event_type": "open",
            }
        ],
    )
    resolve_identities(workspace, NOW, Settings())
    ids = _customers_by_record(workspace)
    assert ids["crm/h1"] != ids["crm/h2"]
    assert ids["crm/h2"] == ids["crm/h3"]
    assert ids["newsletter/n1"] in {ids["crm/h1"], ids["crm/h2"]}
    links = pd.read_parquet(workspace.identity / "links.parquet")
    john_jane = links[links[["identity_key_l", "identity_key_r"]].isin(["crm:h1", "crm:h2"]).all(axis=1)]
    assert not (john_jane["kind"].isin(["email", "phone"]) & john_jane["kept"]).any()


def test_conflict_rules() -> None:
    john = Person("john", "smith", None)
    assert conflict(john, Person("jane", "smith", None)) == "first_name"
    assert conflict(john, Person("johnny", "smith", None)) is None
    assert conflict(john, Person("jhon", "smith", None)) is None
    assert conflict(john, Person("smith", "john", None)) is None  # swapped
    assert conflict(john, Person("j", "smith", None)) is None  # an initial
    assert conflict(john, Person(None, "smith", None)) is None
    assert conflict(Person("ava", "lee", None), Person("aca", "lee", None)) is None  # one typo
    assert (
        conflict(Person("paul", "lee", None), Person("paula", "lee", None)) == "first_name"
    )  # two real names
    assert conflict(Person("doave", "lee", None), Person("david", "lee", None)) is None  # typo of dave
    assert conflict(Person("tommy", "ross", None), Person("ross", "thomas", None)) is None  # swapped nickname
    born = Person("john", "smith", pd.Timestamp("1980-04-02").date())
    assert conflict(born, Person("john", "smith", pd.Timestamp("1980-02-04").date())) is None
    assert conflict(born, Person("john", "smith", pd.Timestamp("1981-04-02").date())) is None
    assert conflict(born, Person("john", "smith", pd.Timestamp("2008-11-20").date())) == "birth_date"


def test_outputs_are_written(workspace: Workspace) -> None:
    write_canonical(workspace, "contacts", "crm", [contact("a", "Ann", "Lee", email="ann@example.com")])
    summary = resolve_identities(workspace, NOW, Settings())
    names = {p.name for p in workspace.identity.iterdir()}
    assert {
        "records.parquet",
        "links.parquet",
        "crosswalk.parquet",
        "customers.parquet",
        "aliases.parquet",
        "model.json",
        "summary.json",
    } <= names
    customers = pd.read_parquet(workspace.identity / "customers.parquet")
    assert customers.columns.tolist() == ["customer_id", "created_at", "n_records", "sources"]
    assert summary["records"] == 1 and summary["customers"] == 1


def test_the_same_national_id_excuses_one_differing_attribute_never_both() -> None:
    born, other_day = pd.Timestamp("1951-08-06").date(), pd.Timestamp("1977-03-14").date()
    amber = Person("amber", "held", born, national_id="h1")
    assert conflict(amber, Person("sarsha", "held", born, national_id="h1")) is None  # a replaced first name
    assert conflict(amber, Person("amber", "held", other_day, national_id="h1")) is None  # a mistyped date
    assert conflict(amber, Person("sarsha", "held", None, national_id="h1")) is None
    # Both differing: the id written on another person's record.
    assert conflict(amber, Person("sarsha", "held", other_day, national_id="h1")) == "birth_date"
    # Without the same id each difference is a conflict, as between two people of one household.
    assert conflict(amber, Person("sarsha", "held", born, national_id="h2")) == "first_name"
    assert conflict(amber, Person("sarsha", "held", born)) == "first_name"


def test_a_person_tied_by_a_national_id_is_compared_by_every_name_it_is_known_by() -> None:
    # nathan challenor's records: the id ties a replaced first name (caleb) to his; a third record of nathan's
    # with the id mistyped is still him. A john of the same household with another id is not.
    born = pd.Timestamp("1960-02-13").date()
    nathan = [Person("nathan", "challenor", born, "h1"), Person("caleb", "challenor", born, "h1")]
    persons = dict(
        enumerate(
            [*nathan, Person("nathan", "challenor", born, "h9"), Person("john", "challenor", born, "h7")]
        )
    )
    forest = _Components(persons, {})
    assert forest.union(0, 1) is None
    assert forest.union(1, 2) is None  # caleb ~ nathan through the id: nathan (h9) joins
    assert forest.union(0, 3) == "first_name"
    assert known_as(persons.values())[0] == nathan
