"""The behavioural exports: clickstream as nested JSON lines, email-tool events as CSV."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulator import fmt
from simulator.catalogue import LEAVES, Catalogue
from simulator.chunk import Chunk
from simulator.export_orders import Split, record_index

WEB_CODES = np.array(["pv", "pdp", "search", "atc", "rfc", "chk"], dtype=object)
EMAIL_CODES = np.array(["Sent", "Open", "Click", "Unsubscribe", "HardBounce"], dtype=object)
SITE = "https://www.tessera-shop.co.uk"


def _slug(path: str) -> str:
    return path.split(" > ")[-1].lower().replace(" & ", "-and-").replace(" ", "-")


def web_events(chunk: Chunk, catalogue: Catalogue, rng: np.random.Generator) -> tuple[pa.Array, np.ndarray]:
    """Clickstream events as JSON lines: nested session, user (null when anonymous), page and props.

    Every piece that repeats (a session's ids, a product's URL, a search's props) is written once and
    looked up, so a line is the join of a handful of strings.
    """
    ev, sessions = chunk.events.sort_values(["t", "session", "seq"], kind="stable"), chunk.sessions
    session = ev["session"].to_numpy()
    etype = ev["type"].to_numpy()
    product = ev["product"].to_numpy()
    leaf = ev["leaf"].to_numpy()
    skus = catalogue.products["sku"].to_numpy(dtype=object)
    nouns = np.array([noun.lower() for leaf_def in LEAVES for noun in leaf_def[4]], dtype=object)
    count = np.array([len(leaf_def[4]) for leaf_def in LEAVES])
    noun = (np.cumsum(count) - count)[leaf] + rng.integers(0, 1 << 30, len(ev)) % count[leaf]

    # Per session: its ids and the user object, ending where the page URL begins.
    logged_in = sessions["logged_in"].to_numpy()
    sid = fmt.join("sess_", fmt.numbers(sessions["number"].to_numpy(), 10))
    user = fmt.where(
        logged_in,
        fmt.join(
            '{"customer_id":"',
            fmt.lookup(chunk.ids.webshop, np.where(logged_in, sessions["person"], -1)),
            '"}',
        ),
        "null",
    )
    session_part = fmt.join(
        '","session":{"id":"', sid, '","anonymous_id":"anon-', fmt.numbers(sessions["anonymous"].to_numpy(), 10),
        '"},"user":', user, ',"page":{"url":"',
    )  # fmt: skip
    # Every URL the site has: home, categories, products, searches, basket, checkout.
    slugs = [_slug(leaf_def[0]) for leaf_def in LEAVES]
    urls = np.array(
        [SITE + "/"] + [f"{SITE}/c/{s}" for s in slugs] + [f"{SITE}/p/{k}" for k in skus]
        + [f"{SITE}/search?q={q.replace(' ', '+')}" for q in nouns] + [SITE + "/basket", SITE + "/checkout"],
        dtype=object,
    )  # fmt: skip
    home_or_category = np.where(rng.random(len(ev)) < 0.3, 0, 1 + leaf)
    url = np.select(
        [etype == 0, np.isin(etype, [1, 3, 4]), etype == 2, etype == 5],
        [home_or_category, 1 + len(slugs) + np.maximum(product, 0), 1 + len(slugs) + len(skus) + noun,
         len(urls) - 1],
        len(urls) - 2,
    )  # fmt: skip
    props = np.array(
        ['"},"props":{}}\n'] + [f'"}},"props":{{"sku":"{k}"}}}}\n' for k in skus]
        + [f'"}},"props":{{"query":"{q}"}}}}\n' for q in nouns],
        dtype=object,
    )  # fmt: skip
    prop = np.where(product >= 0, 1 + np.maximum(product, 0), np.where(etype == 2, 1 + len(skus) + noun, 0))
    lines = fmt.join(
        '{"event_id":"', fmt.take(sid, session), "-", fmt.numbers(ev["seq"].to_numpy()),
        '","ts":"', fmt.timestamps(ev["t"].to_numpy(), "%Y-%m-%dT%H:%M:%SZ"),
        '","type":"', fmt.lookup(WEB_CODES, etype),
        fmt.take(session_part, session), fmt.lookup(urls, url), fmt.lookup(props, prop),
    )  # fmt: skip
    return lines, np.zeros(len(ev), dtype=bool)


def email_events(chunk: Chunk, catalogue: Catalogue) -> Split:
    """The email tool's event log: subscriber key (CRM contact id, empty for newsletter-only) and address."""
    mail = chunk.mail
    person = mail["person"].to_numpy()
    rec = record_index(chunk.records, "email_crm", person)
    rec = np.where(rec >= 0, rec, record_index(chunk.records, "email_only", person))
    records = chunk.records
    address = pc.utf8_lower(pc.utf8_trim_whitespace(fmt.column(records, "email")))
    is_crm = records["kind"].to_numpy()[rec] == "email_crm"
    campaign = mail["campaign"].to_numpy()
    table = pa.table(
        {
            "SubscriberKey": fmt.lookup(chunk.ids.crm, np.where(is_crm, person, -1)),
            "EmailAddress": fmt.take(address, rec),
            "EventType": fmt.lookup(EMAIL_CODES, mail["type"].to_numpy()),
            "EventDate": fmt.timestamps(mail["t"].to_numpy(), "%m/%d/%Y %I:%M:%S %p"),
            "CampaignID": fmt.lookup(catalogue.campaign_ids, campaign),
            "CampaignName": fmt.lookup(catalogue.campaign_names, campaign),
        }
    )
    return table, np.zeros(len(mail), dtype=bool)
