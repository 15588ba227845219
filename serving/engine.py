"""What every endpoint does, apart from HTTP: the BentoML service (`serving.service`) is a thin typed layer over
this, and so is the bare Starlette app the benchmark compares it with, so both do exactly the same work.

Consent is decided here, from the online store (the freshest copy, shared by every replica):
- without `consent_personalisation`, /recommend gives best sellers, flagged, and uses nothing of the
  customer's (no history, no latest order); the caller's own `exclude` and `cart` are still left out;
- without `consent_profiling`, /churn, /cltv and the 360 view return no score for the customer at all.

Without a next-best-product champion (not trained yet, or skipped by training) the best sellers stand in
(`Loader._best_sellers`): /recommend answers them flagged `no_model` rather than fail.

The errors are BentoML's `ServiceUnavailable` and `NotFound`: the service answers them 503 (with the message, which
BentoML would hide) and 404.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from bentoml.exceptions import NotFound, ServiceUnavailable

from features.ingest.suppression import suppression_folder
from features.store import open_store
from features.store.settings import FeatureStoreSettings
from serving.champions import Loader, Poller, Snapshot, Watcher
from serving.customers import Directory, consent, golden_record, sells_products
from serving.features import CustomerLive, LiveFeatures
from serving.recommender import exclusions
from serving.schemas import (
    ChurnResponse,
    CltvResponse,
    CustomerView,
    EventRequest,
    EventResponse,
    FallbackReason,
    Labels,
    RecommendRequest,
    RecommendResponse,
    SimilarItemsRequest,
    SimilarItemsResponse,
)
from serving.scores import Scored, Scorer
from serving.settings import ServeSettings

log = logging.getLogger(__name__)
ANSWER_AHEAD_CHUNK = 500


class NotReady(ServiceUnavailable):
    """A model the endpoint needs has no champion yet."""


class UnknownCustomer(NotFound):
    """No live customer has this id, nor was it merged into one."""


class UnknownProduct(NotFound):
    """Neither the model nor the catalogue knows this sku."""


def _freeze_heap() -> None:
    """Move everything loaded so far out of the garbage collector's sight.

    The loaded libraries and models are some 500k tracked objects: a full collection walks them all, a pause
    of 0.3-0.6 s that lands on whichever request triggers it (a p99 killer). Frozen objects are still freed
    by reference counting when a snapshot is replaced; only reference cycles among them stay.
    """
    gc.collect()
    gc.freeze()


class ErasureWatch(Poller):
    """Notices an erasure within a second: the erasure log (`data/suppression/audit.jsonl`, appended after every
    store was rewritten) is stat'ed every `seconds`; when it changes, the engine forgets the customers that vanished
    from the directory's files at once, whoever erased them (`tessera erase`, another worker's or replica's
    `DELETE`), without waiting for the champion poll's reload. A failed check is retried at the next tick (the
    poll's reload drops them anyway)."""

    name = "tessera-erasure-watch"

    def __init__(self, engine: Engine, seconds: float = 1.0) -> None:
        self.engine = engine
        self.path = suppression_folder(engine.workspace) / "audit.jsonl"
        self.seen = self._stamp()
        super().__init__(seconds)

    def _stamp(self) -> tuple[float, int] | None:
        try:
            found = self.path.stat()
        except FileNotFoundError:
            return None
        return found.st_mtime, found.st_size

    def check(self) -> bool:
        """Forget the vanished customers if an erasure happened since the last check; whether one did. The log is
        taken as seen only once they are forgotten: a failed check is retried."""
        stamp = self._stamp()
        if stamp == self.seen:
            return False
        self.engine.forget_vanished()
        self.seen = stamp
        return True

    def failure(self) -> str:
        return "forgetting erased customers failed"


class Engine:
    """The loaded champions, customer directory and online store, and one method per endpoint."""

    def __init__(self, settings: ServeSettings, store_settings: FeatureStoreSettings) -> None:
        self.settings = settings
        self.workspace = settings.workspace_paths()
        self.store = open_store(self.workspace, store_settings)
        self.live = LiveFeatures(self.store)
        # An export without products never gets a recommender: /recommend then answers an empty list.
        self.sells_products = sells_products(self.workspace)
        self.loader = Loader(self.workspace, settings, self.store, self.live, self.now)
        self.snapshot: Snapshot = self.loader.load()
        # Called after every reload, in the reloading thread: what others derive from the files is rebuilt there.
        self.on_install: list[Callable[[], None]] = []
        self.warm_up()
        _freeze_heap()
        self.watcher = Watcher(self.loader, lambda: self.snapshot, self._install, settings.poll_seconds)
        self.watcher.start()
        # The erasure log is taken as it stands, then the directory's files are read again: an erasure that landed
        # while the snapshot was loading (another worker's DELETE while this one starts) is honoured now, a later
        # one by the watch.
        self._erasures = ErasureWatch(self)
        self.forget_vanished()
        self._erasures.start()

    def _install(self, snapshot: Snapshot) -> None:
        log.info("new snapshot: %s (was %s)", snapshot.versions, self.snapshot.versions)
        # The reload read the directory before installing it: an erasure since then (whose watch may already have
        # fired on the snapshot it replaces) is honoured before it serves, and one between that read and the
        # switch right after it.
        self.forget_vanished(snapshot)
        self.snapshot = snapshot
        self.forget_vanished()
        self.warm_up()
        for prepare in self.on_install:
            prepare()
        _freeze_heap()

    def warm_up(self) -> None:
        """Every endpoint's work once, for a known customer and an unknown one, answers serialised: whatever is
        built on first use (encoders, caches, lazily imported code) is built now, not on the first requests."""
        snapshot = self.snapshot
        known = next(iter(sorted(snapshot.directory.ids)), None)
        ids = [c for c in (known, "\x00unknown") if c is not None]
        calls: list[Any] = []
        for customer in ids:
            calls.append(lambda c=customer: self.recommend(RecommendRequest(customer_id=c, k=10)))
            if snapshot.churn is not None:
                calls.append(lambda c=customer: self.churn([c]))
            if snapshot.cltv is not None:
                calls.append(lambda c=customer: self.cltv([c]))
        if known is not None:
            calls.append(lambda: self.customer(known))
        if snapshot.recommender is not None and len(snapshot.recommender.skus):
            calls.append(
                lambda: self.similar_items(SimilarItemsRequest(sku=str(snapshot.recommender.skus[0]), k=5))
            )
        for call in calls:
            try:
                call().model_dump_json()
            except (NotFound, ServiceUnavailable):
                pass  # an unknown customer or a model not registered yet: answers, not failures
            except Exception:  # the requests would fail alike: said, but the service still starts
                log.exception("warming up the endpoints failed")
        self._answer_ahead(snapshot)

    def _answer_ahead(self, snapshot: Snapshot) -> None:
        """With a fixed now, every customer's /churn and /cltv answer computed and kept (`scores_json`), so the
        first request for each is answered from it; with the clock as now answers are never reused."""
        if self.settings.now is None:
            return
        ids = sorted(snapshot.directory.ids)
        for scorer in (snapshot.churn, snapshot.cltv):
            if scorer is None:
                continue
            try:
                for start in range(0, len(ids), ANSWER_AHEAD_CHUNK):
                    self.scores_json(scorer, ids[start : start + ANSWER_AHEAD_CHUNK])
            except Exception:  # the requests compute their answers themselves: said, but the service starts
                log.exception("computing the %s answers ahead failed", scorer.version)

    def forget(self, customer_ids: frozenset[str], snapshot: Snapshot | None = None) -> None:
        """Drop erased customers from the loaded state (the snapshot served, or `snapshot`) at once: the directory
        and the 360 view's history no longer know them, the recommender's folded rows and the scorers' kept scores
        are gone. Until the reload that follows the erasure, they are unknown customers to every endpoint."""
        snapshot = self.snapshot if snapshot is None else snapshot
        snapshot.directory.forget(customer_ids)
        snapshot.history.forget(customer_ids)
        for part in (snapshot.recommender, snapshot.churn, snapshot.cltv):
            if part is not None:
                part.forget(customer_ids)

    def forget_vanished(self, snapshot: Snapshot | None = None) -> int:
        """Forget at once the customers the directory's files no longer hold (erased by `tessera erase` or by
        another worker's `DELETE`) from the snapshot served, or `snapshot`; how many. The reload on the next poll
        then drops them from memory."""
        snapshot = self.snapshot if snapshot is None else snapshot
        gone = snapshot.directory.ids - Directory.load(self.workspace).ids
        if gone:
            self.forget(frozenset(gone), snapshot)
            log.info("forgot %d erased customers ahead of the reload", len(gone))
        return len(gone)

    def close(self) -> None:
        """Stop watching for new champions and erasures (waiting for a reload under way), hand the heap back to the
        collector."""
        self.watcher.stop()
        self._erasures.stop()
        gc.unfreeze()

    def now(self) -> datetime:
        """The service's current time: TESSERA_SERVE_NOW when set, else the clock."""
        return self.settings.now or datetime.now(UTC)

    def ready(self) -> bool:
        """Ready once the recommender (the champion, or the best sellers standing in for it) is loaded, or at once
        when no product is sold (churn and CLTV answer 503 on their own until theirs are)."""
        return self.snapshot.recommender is not None or not self.sells_products

    def recommend(self, request: RecommendRequest) -> RecommendResponse:
        """Top-k products for a customer; never empty while the catalogue has available products."""
        snapshot = self.snapshot
        recommender = snapshot.recommender
        customer_id = snapshot.directory.resolve(request.customer_id)
        if recommender is None and not self.sells_products:
            return RecommendResponse(
                customer_id=customer_id or request.customer_id,
                items=[],
                model_version="none",
                personalised=False,
                fallback=True,
                fallback_reason="no_products",
            )
        if recommender is None:
            raise NotReady(
                "no next_best_product champion is registered yet: run `tessera train next-best-product`"
            )
        live = self.live.one(customer_id) if customer_id is not None else None
        consented = live is not None and live.consent_personalisation
        # What the customer bought a moment ago (pushed by /events) is not offered again right away.
        last_order = live.last_order_skus if live is not None and consented else ()
        excluded = exclusions(recommender, request.exclude, request.cart, last_order)
        if consented and request.exclude_purchased:
            excluded = np.concatenate([excluded, recommender.bought(str(customer_id))])
        # Without consent not even the cart is used to personalise; an unknown visitor's cart is.
        cart = recommender.positions(request.cart if consented or customer_id is None else ())
        items, personal = recommender.recommend(
            customer_id if consented and not recommender.stand_in else None,  # best sellers read no history
            request.k,
            recommender.allowed(request.category, excluded),
            cart,
        )
        reason: FallbackReason | None = None
        if customer_id is None:
            reason = "unknown_customer"
        elif not consented:
            reason = "no_personalisation_consent"
        elif recommender.stand_in:
            reason = "no_model"
        elif not personal:
            reason = "no_history"
        return RecommendResponse(
            customer_id=customer_id or request.customer_id,
            items=items,
            model_version=recommender.version,
            personalised=personal,
            fallback=reason is not None,
            fallback_reason=reason,
        )

    def similar_items(self, request: SimilarItemsRequest) -> SimilarItemsResponse:
        """Products similar to one; for a product the model has not seen, or that nothing is similar to, best sellers
        of its category (of all products when it has none), flagged."""
        recommender = self.snapshot.recommender
        if recommender is None and not self.sells_products:
            raise UnknownProduct(f"unknown sku {request.sku!r}: the orders name no product")
        if recommender is None:
            raise NotReady("no next_best_product champion is registered yet")
        items = recommender.similar(request.sku, request.k)
        fallback = items is None
        if items is None:
            if not recommender.lists(request.sku):
                raise UnknownProduct(
                    f"unknown sku {request.sku!r}: neither the model nor the catalogue lists it"
                )
            category = recommender.category_of(request.sku)  # None: every best seller
            items = [
                item for item in recommender.popular(request.k + 1, category) if item.sku != request.sku
            ][: request.k]
        return SimilarItemsResponse(
            sku=request.sku, items=items, model_version=recommender.version, fallback=fallback
        )

    def _churn(self) -> Scorer:
        if (scorer := self.snapshot.churn) is None:
            raise NotReady("no churn champion is registered yet: run `tessera train churn`")
        return scorer

    def _cltv(self) -> Scorer:
        if (scorer := self.snapshot.cltv) is None:
            raise NotReady("no cltv champion is registered yet: run `tessera train cltv`")
        return scorer

    def churn(self, customer_ids: list[str]) -> ChurnResponse:
        """Churn probability, risk band and reasons of each customer who consented to profiling."""
        scorer = self._churn()
        return ChurnResponse(**scorer.head(), scores=self._scores(scorer, customer_ids))

    def cltv(self, customer_ids: list[str]) -> CltvResponse:
        """Value over the horizon with its interval, value band and reasons, for customers who consented."""
        scorer = self._cltv()
        return CltvResponse(**scorer.head(), scores=self._scores(scorer, customer_ids))

    def churn_json(self, customer_ids: list[str], compute: bool = True) -> bytes | None:
        """`churn`'s answer as JSON, from the kept answers where the online store holds the same as when they were
        computed; without `compute`, None when any would have to be computed (`scores_json`)."""
        return self.scores_json(self._churn(), customer_ids, compute)

    def cltv_json(self, customer_ids: list[str], compute: bool = True) -> bytes | None:
        """`cltv`'s answer as JSON, as `churn_json`."""
        return self.scores_json(self._cltv(), customer_ids, compute)

    def scores_json(self, scorer: Scorer, ids: list[str], compute: bool = True) -> bytes | None:
        """The scorer's response to these ids as JSON, exactly `scorer.response(...).model_dump_json()`.

        With a fixed now an id's answer depends only on the champion, the surviving id and what the online store
        holds for that customer in the views the score and the consent are read from: an answer kept beside those
        stored values (undecoded) is reused while they are unchanged (a live event, a materialization, a consent
        withdrawal, an erasure, another worker's or replica's write change them). The rest are computed (scored
        only where the model input changed, `Scorer.score`) and kept. With the clock as now every answer is
        computed. Without `compute`, None as soon as one would have to be (the caller then computes off the event
        loop)."""
        if self.settings.now is None:
            return self._json(scorer, self._scores(scorer, ids)) if compute else None
        directory = self.snapshot.directory
        resolved = [directory.resolve(i) for i in ids]
        known = list(dict.fromkeys(r for r in resolved if r is not None))
        views = [self.live.consent_view] + [
            view for view, _ in scorer.reader.reads if view.name != self.live.consent_view.name
        ]
        stored = dict(zip(known, self.live.stored(known, views), strict=True))
        stamps = [(r, stored.get(r)) for r in resolved]
        items: list[bytes | None] = []
        for asked, stamp in zip(ids, stamps, strict=True):
            kept = scorer.answers.get(asked)
            items.append(kept[1] if kept is not None and kept[0] == stamp else None)
        missing = [i for i, item in enumerate(items) if item is None]
        if not compute and any(resolved[i] is not None for i in missing):
            return None
        if missing:
            # An unknown id's answer reads nothing and is never kept (ids asked are the caller's: unbounded).
            asked = list(dict.fromkeys(ids[i] for i in missing))
            computed = dict(zip(asked, self._scores(scorer, asked), strict=True))
            for i in missing:
                items[i] = computed[ids[i]].model_dump_json().encode()
                if resolved[i] is not None:
                    scorer.answers[ids[i]] = (stamps[i], items[i])  # type: ignore[assignment]
        empty = scorer.response(**scorer.head(), scores=[]).model_dump_json().encode()
        return empty[:-2] + b",".join(items) + b"]}"  # type: ignore[arg-type]

    @staticmethod
    def _json(scorer: Scorer, scores: list[Any]) -> bytes:
        return scorer.response(**scorer.head(), scores=scores).model_dump_json().encode()

    def _scores(
        self, scorer: Scorer, ids: list[str], read: dict[str, CustomerLive] | None = None
    ) -> list[Any]:
        """One score per id asked for: the surviving customer's, if they consented to profiling.

        `read`: live values already read for these customers (the 360 view reads them once for both scores).
        """
        directory = self.snapshot.directory
        resolved = [directory.resolve(i) for i in ids]
        known = list(dict.fromkeys(r for r in resolved if r is not None))
        if read is None or any(c not in read for c in known):
            read = dict(zip(known, self.live.read(known), strict=True))
        to_score = [c for c in known if read[c].consent_profiling]
        scored: dict[str | None, Scored] = (
            dict(zip(to_score, scorer.score(to_score, self.now()), strict=True)) if to_score else {}
        )
        out = []
        for asked, customer in zip(ids, resolved, strict=True):
            result = scored.get(customer)
            if result is None:
                reason = "unknown_customer" if customer is None else "no_profiling_consent"
                out.append(
                    scorer.kind(
                        customer_id=asked, resolved_id=customer, scored=False, not_scored_reason=reason
                    )
                )
            else:
                out.append(
                    scorer.kind(
                        customer_id=asked,
                        resolved_id=customer,
                        scored=True,
                        reasons=result.reasons,
                        **result.fields,
                    )
                )
        return out

    def _view_score(self, scorer: Scorer | None, customer_id: str, live: CustomerLive) -> Any:
        """The 360 view's score: with a fixed now the kept answer (`scores_json`: one undecoded read of the online
        store, no vector decoded), else scored from the live values already read."""
        if scorer is None:
            return None
        if self.settings.now is not None:
            return scorer.response.model_validate_json(self.scores_json(scorer, [customer_id])).scores[0]  # type: ignore[arg-type]
        return self._scores(scorer, [customer_id], {customer_id: live})[0]

    def resolve(self, any_id: str) -> str | None:
        """The surviving customer id for any id ever issued, or None."""
        return self.snapshot.directory.resolve(any_id)

    def customer(self, customer_id: str) -> CustomerView:
        """The 360 view of a live customer id (resolve merged ids first)."""
        snapshot = self.snapshot
        history = snapshot.history
        record = history.golden_record(customer_id)
        if record is None:
            raise UnknownCustomer(f"unknown customer {customer_id!r}")
        live = self.live.one(customer_id)
        churn = self._view_score(snapshot.churn, customer_id, live)
        cltv = self._view_score(snapshot.cltv, customer_id, live)
        limits = self.settings
        return CustomerView(
            customer_id=customer_id,
            golden_record=golden_record(record),
            identities=history.identities(customer_id),
            consent=consent(record),
            recent_orders=history.orders(customer_id, limits.recent_orders),
            recent_interactions=history.interactions(customer_id, limits.recent_interactions),
            labels=Labels(
                risk_band=churn.risk_band if churn else None,
                value_band=cltv.value_band if cltv else None,
                loyalty_tier=record.get("loyalty_tier"),
            ),
            churn=churn,
            cltv=cltv,
            live=live.state(),
        )

    def event(self, request: EventRequest) -> EventResponse:
        """Push a live event to the online store; the next read (any replica) sees the new state."""
        customer_id = self.resolve(request.customer_id)
        if customer_id is None:
            raise UnknownCustomer(
                f"unknown customer {request.customer_id!r}: events need a Tessera customer id"
            )
        state = self.live.push(customer_id, request, self.now())
        return EventResponse(customer_id=customer_id, accepted=True, state=state)
