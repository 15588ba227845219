"""The models and data the service answers from, loaded as one snapshot and replaced whole when they change.

A snapshot holds the three champions (the versions the registry's current release names, read in one go
and loaded through `training.tracking`, the only module that talks to MLflow), the recommender's precomputed
histories and the customer directory: champions of one release always, never of two trainings.
`Watcher` checks every few seconds whether another release is current or a profile file was rewritten; if so it builds a new snapshot in its own thread, reusing what did not change, and hands it over
with one assignment: requests already running finish on the old snapshot, new ones get the new one, and none
is refused or dropped meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import pandas as pd
from feast import FeatureStore

from features.profile.read import load_anonymous_purchases, load_catalogue, load_events
from features.store import OnlineFeatures
from serving.customers import Directory, History
from serving.features import LiveFeatures
from serving.recommender import Recommender, load_products
from serving.scores import ChurnScorer, CltvScorer, Scorer, value_thresholds
from serving.settings import ServeSettings
from tessera.core.settings import Workspace
from training import tracking
from training.baselines import baseline_params, signal_params
from training.recommend import NextBestProduct
from training.settings import TrainingSettings

log = logging.getLogger(__name__)
MODELS = ("churn", "cltv", "next_best_product")
NO_MODEL_VERSION = "none"  # the model_version of answers given without a champion
SCORE_AHEAD_CHUNK = 1000  # customers per online read and model call when scoring ahead
S = TypeVar("S", bound=Scorer)


def _stamp(paths: list[Any]) -> tuple[float, ...]:
    return tuple(p.stat().st_mtime if p.exists() else 0.0 for p in paths)


def history_files(workspace: Workspace) -> tuple[float, ...]:
    """Modification times of the files the recommender's histories and the catalogue come from."""
    return _stamp(
        [
            workspace.profile / "orders.parquet",
            workspace.profile / "interactions.parquet",
            workspace.canonical_table("products"),
        ]
    )


def directory_files(workspace: Workspace) -> tuple[float, ...]:
    """Modification times of the files the customer directory and the golden records come from."""
    return _stamp(
        [
            workspace.profile / "customers.parquet",
            workspace.identity / "aliases.parquet",
            workspace.identity / "crosswalk.parquet",
        ]
    )


@dataclass(frozen=True)
class Fingerprint:
    """What a snapshot was built from: champion versions and the source files' modification times."""

    versions: dict[str, str | None] = field(default_factory=dict)
    histories: tuple[float, ...] = ()
    directory: tuple[float, ...] = ()

    @classmethod
    def now(cls, workspace: Workspace) -> Fingerprint:
        champions = tracking.champions(workspace)  # one read: the versions of one release
        return cls(
            {name: champions.get(name) for name in MODELS},
            history_files(workspace),
            directory_files(workspace),
        )


@dataclass(frozen=True)
class Snapshot:
    """Everything a request reads that is not in the online store."""

    fingerprint: Fingerprint
    directory: Directory
    history: History
    recommender: Recommender | None
    churn: ChurnScorer | None
    cltv: CltvScorer | None

    @property
    def versions(self) -> dict[str, str | None]:
        return self.fingerprint.versions


@dataclass(frozen=True)
class Loader:
    """Builds snapshots for a workspace: `load(previous)` reuses whatever `previous` already has unchanged."""

    workspace: Workspace
    settings: ServeSettings
    store: FeatureStore
    live: LiveFeatures
    clock: Callable[[], datetime]

    def load(self, previous: Snapshot | None = None) -> Snapshot:
        """A snapshot of the current champions and files."""
        fingerprint = Fingerprint.now(self.workspace)
        old = previous.fingerprint if previous is not None else Fingerprint()
        directory = (
            previous.directory if previous is not None and old.directory == fingerprint.directory else None
        )
        if directory is None:
            directory = Directory.load(self.workspace)
        history = (
            previous.history
            if previous is not None
            and (old.directory, old.histories) == (fingerprint.directory, fingerprint.histories)
            else History(self.workspace)
        )
        same = {
            name: previous is not None and old.versions.get(name) == fingerprint.versions[name]
            for name in MODELS
        }
        recommender = (
            previous.recommender
            if same["next_best_product"] and old.histories == fingerprint.histories
            else None
        )
        churn = previous.churn if same["churn"] else None
        cltv = previous.cltv if same["cltv"] else None
        if previous is not None and directory is not previous.directory:
            # Parts kept from the previous snapshot forget whoever left the directory (an erasure; a reload
            # that started while the erasure was rewriting the files may have kept answers for them).
            gone = frozenset(previous.directory.ids - directory.ids)
            for part in (recommender, churn, cltv):
                if gone and part is not None:
                    part.forget(gone)
        snapshot = Snapshot(
            fingerprint,
            directory,
            history,
            recommender if recommender is not None else self._recommender(fingerprint),
            churn if churn is not None else self._churn(fingerprint, directory),
            cltv if cltv is not None else self._cltv(fingerprint, directory),
        )
        log.info("serving champions %s", snapshot.versions)
        return snapshot

    def _champion(self, fingerprint: Fingerprint, name: str) -> tuple[Any, dict[str, Any], str] | None:
        """The estimator, metadata and version of the model's champion in the snapshot's release, or None."""
        version = fingerprint.versions.get(name)
        found = None if version is None else tracking.load_champion(self.workspace, name, version)
        return None if found is None or version is None else (found[0], found[1], version)

    def _recommender(self, fingerprint: Fingerprint) -> Recommender | None:
        """The champion folded in; without one (not trained yet, or skipped), the best sellers stand in."""
        found = self._champion(fingerprint, "next_best_product")
        now = self.clock()
        events = load_events(self.workspace, now)
        if found is None:
            return self._best_sellers(events, now)
        model, _, version = found
        return Recommender(
            model, version, events, now, load_products(self.workspace), self.settings.cart_weight
        )

    def _best_sellers(self, events: pd.DataFrame, now: datetime) -> Recommender | None:
        """The `popularity` baseline fitted at load as a stand-in for a missing champion: /recommend answers recent
        best sellers (flagged `no_model`) instead of 503; None when no purchase names a product."""
        if not (events["kind"] == "purchase").any():
            return None
        params = baseline_params(signal_params(TrainingSettings()))["popularity"]
        model = NextBestProduct(**params).fit(
            events, now, load_catalogue(self.workspace), load_anonymous_purchases(self.workspace, now)
        )
        log.warning("no next_best_product champion: serving recent best sellers until one is registered")
        products = load_products(self.workspace)
        return Recommender(
            model, NO_MODEL_VERSION, events, now, products, self.settings.cart_weight, stand_in=True
        )

    def _reader(self, metadata: dict[str, Any], default: str) -> OnlineFeatures:
        return OnlineFeatures(self.store, str(metadata.get("feature_service", default)))

    def _scored_ahead(self, scorer: S, directory: Directory) -> S:
        """The scorer, having scored every customer who consented to profiling, when the service's now is fixed.

        With the clock as now a score is only ever reused within the same instant: nothing is scored ahead.
        """
        if self.settings.now is None:
            return scorer
        ids = sorted(directory.ids)
        for start in range(0, len(ids), SCORE_AHEAD_CHUNK):
            chunk = ids[start : start + SCORE_AHEAD_CHUNK]
            consented = [
                c for c, live in zip(chunk, self.live.read(chunk), strict=True) if live.consent_profiling
            ]
            if consented:
                scorer.score(consented, self.settings.now)
        return scorer

    def _churn(self, fingerprint: Fingerprint, directory: Directory) -> ChurnScorer | None:
        found = self._champion(fingerprint, "churn")
        if found is None:
            return None
        estimator, metadata, version = found
        scorer = ChurnScorer(
            estimator,
            version,
            metadata.get("horizon_days"),
            self._reader(metadata, "churn_v1"),
            self.settings.risk_bands,
        )
        return self._scored_ahead(scorer, directory)

    def _cltv(self, fingerprint: Fingerprint, directory: Directory) -> CltvScorer | None:
        found = self._champion(fingerprint, "cltv")
        if found is None:
            return None
        estimator, metadata, version = found
        reader = self._reader(metadata, "cltv_v1")
        size = self.settings.value_band_sample
        sample = sorted(directory.ids)[:: max(1, len(directory.ids) // size)][:size]
        thresholds = value_thresholds(
            estimator, reader, sample, self.clock(), self.settings.value_band_quantiles
        )
        return self._scored_ahead(
            CltvScorer(estimator, version, metadata.get("horizon_days"), reader, thresholds), directory
        )

    def changed(self, snapshot: Snapshot) -> bool:
        """Whether another release is current or a source file changed since the snapshot was built."""
        return Fingerprint.now(self.workspace) != snapshot.fingerprint


class Poller:
    """A daemon thread calling `check` every `seconds` (never when 0) until stopped. A failed check is logged and
    the next tick retries."""

    name = "tessera-poller"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        if self.seconds > 0:
            self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for a check under way to finish (a reload may be writing the desk's index)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def check(self) -> bool:
        """Do the periodic work now; whether anything changed."""
        raise NotImplementedError

    def failure(self) -> str:
        """What the log says when a check raised."""
        return f"{self.name}: the check failed"

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.check()
            except Exception:
                log.exception(self.failure())


class Watcher(Poller):
    """Reloads the snapshot when it changed; a failed reload keeps the current snapshot serving."""

    name = "tessera-champion-watcher"

    def __init__(
        self,
        loader: Loader,
        current: Callable[[], Snapshot],
        install: Callable[[Snapshot], None],
        seconds: float,
    ) -> None:
        self.loader = loader
        self.current = current
        self.install = install
        super().__init__(seconds)

    def check(self) -> bool:
        """Reload now if anything changed; whether a new snapshot was installed."""
        snapshot = self.current()
        if not self.loader.changed(snapshot):
            return False
        self.install(self.loader.load(snapshot))
        return True

    def failure(self) -> str:
        return f"reloading the champions failed; still serving {self.current().versions}"
