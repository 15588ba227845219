"""MLflow, and the only module that imports it: runs, logged models, the registry, aliases and the gate.

The tracking store is the workspace's `mlruns/`: SQLite (`mlruns/mlflow.db`) for runs and the registry,
artifacts beside it in `mlruns/artifacts/`. A workspace may name other databases for runs and the registry
(`TESSERA_MLFLOW_TRACKING_URI`, `TESSERA_MLFLOW_REGISTRY_URI`: PostgreSQL in production); artifacts stay in
`mlruns/artifacts/`. Registered models are named like the models (`churn`, `cltv`,
`next_best_product`). The champions are named by a release: a version of the registered model
`tessera_release` whose tags map each model to its champion version; the alias `current` on it is the release
served, so every champion changes with one alias move (`promote`). The per-model aliases `champion` and
`challenger` follow for people reading the registry; readers go through `champions` / `alias_version`.

Every logged model is a `TesseraModel` pyfunc: `load_pyfunc(workspace, "churn")` gives an object whose
`predict(frame, params=...)` returns a frame (docs/models.md); `load_champion` returns the fitted estimator
inside it for batch use.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, redirect_stderr
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from sqlalchemy.engine import make_url

from tessera.core.settings import Workspace

CHAMPION, CHALLENGER = "champion", "challenger"
# The registered model whose versions are releases: one version's tags name every model's champion, and the
# alias `current` says which release is served (docs/models.md, "All champions move together").
RELEASE, CURRENT = "tessera_release", "current"
_CHAMPION_TAG = "champion."
RELEASE_DESCRIPTION = (
    "Releases of Tessera's champions: each version's tags `champion.<model>` name the model versions served "
    "together; the alias `current` is the release being served."
)
log = logging.getLogger(__name__)


def tracking_uri(workspace: Workspace) -> str:
    """The workspace's tracking store: the database it names, else SQLite in its `mlruns/`."""
    return workspace.mlflow_tracking_uri or f"sqlite:///{workspace.mlruns / 'mlflow.db'}"


def registry_uri(workspace: Workspace) -> str:
    """The workspace's model registry: the database it names, else the tracking store."""
    return workspace.mlflow_registry_uri or tracking_uri(workspace)


def shown_uri(uri: str) -> str:
    """A store's URI to print: any password masked."""
    return make_url(uri).render_as_string(hide_password=True)


def artifact_root(workspace: Workspace) -> str:
    """Where runs and models keep their files: beside the database."""
    return (workspace.mlruns / "artifacts").as_uri()


ARTIFACTS = "/mlruns/artifacts"
# The stores this process checked: a workspace does not move under a running process.
_FOLLOWED: set[str] = set()


def follow_moved_workspace(workspace: Workspace) -> int:
    """Make the embedded store's artefact paths this workspace's when it was copied or moved; how many old roots.

    MLflow names every artefact by absolute path (experiments, runs, logged models, model versions): in a copied
    or moved workspace they still named the old folder, so champions loaded from it (or failed once it was gone)
    and new runs wrote their files, per-customer input examples included, into it. The paths in every text column
    of `mlruns/mlflow.db` that start with another folder's `mlruns/artifacts` are rewritten, as a URI and as a
    path, once per process (the store is opened on every champion poll). A store in a database the workspace
    names (PostgreSQL) may be shared: it is left alone.
    """
    database = workspace.mlruns / "mlflow.db"
    if workspace.mlflow_tracking_uri is not None or not database.exists() or str(database) in _FOLLOWED:
        return 0
    _FOLLOWED.add(str(database))
    here = artifact_root(workspace)
    with closing(sqlite3.connect(database, timeout=30)) as con:
        try:
            locations = [row[0] for row in con.execute("SELECT artifact_location FROM experiments")]
        except sqlite3.OperationalError:  # MLflow has not created its tables yet
            return 0
        roots = {
            location[: location.index(ARTIFACTS) + len(ARTIFACTS)]
            for location in locations
            if location and ARTIFACTS in location
        } - {here}
        if not roots:
            return 0
        tables = [row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        with con:
            for root in sorted(roots):
                log.warning("MLflow's store names artefacts in %s: this workspace moved; now %s", root, here)
                for old, new in (
                    (root, here),
                    (unquote(urlparse(root).path), str(workspace.mlruns / "artifacts")),
                ):
                    for table in tables:
                        for column in _text_columns(con, table):
                            con.execute(
                                f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                                f'WHERE instr("{column}", ?) = 1',
                                (old, new, old),
                            )
    return len(roots)


def _text_columns(con: sqlite3.Connection, table: str) -> list[str]:
    columns = con.execute(f'PRAGMA table_info("{table}")').fetchall()
    return [c[1] for c in columns if any(kind in str(c[2]).upper() for kind in ("CHAR", "TEXT", "CLOB"))]


@contextmanager
def mlflow_store(workspace: Workspace) -> Iterator[MlflowClient]:
    """Point MLflow at the workspace's store for the duration of the block, then restore what was set before."""
    workspace.mlruns.mkdir(parents=True, exist_ok=True)
    follow_moved_workspace(workspace)
    previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    tracking, registry = tracking_uri(workspace), registry_uri(workspace)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)
    try:
        yield MlflowClient(tracking_uri=tracking, registry_uri=registry)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


def frame_digest(frame: pd.DataFrame) -> str:
    """A stable digest of a frame's columns and values (first 16 hex digits of SHA-256)."""
    plain = frame.reset_index(drop=True)
    try:
        hashed = pd.util.hash_pandas_object(plain, index=False).to_numpy()
    except TypeError:  # list-valued columns (e.g. last_order_skus) are hashed by their text
        hashed = pd.util.hash_pandas_object(plain.astype(str), index=False).to_numpy()
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(hashed.tobytes())
    return digest.hexdigest()[:16]


class TesseraModel(mlflow.pyfunc.PythonModel):
    """A fitted Tessera estimator as an MLflow pyfunc: `predict(frame, params)` calls `estimator.predict`."""

    # The logged signature validates inputs; without this MLflow warns, in every process that imports this
    # module, that `predict` has no type hints, and wraps it in a validator that has nothing to check.
    _skip_type_hint_validation = True

    def __init__(self, estimator: Any, kind: str, metadata: dict[str, Any]) -> None:
        self.estimator = estimator
        self.kind = kind
        self.metadata = metadata

    # No type hints here on purpose: MLflow would read them as an input schema competing with the signature.
    def predict(self, context, model_input, params=None):
        """The estimator's predictions for `model_input`, with `params` passed on as keyword arguments."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.estimator.predict(frame, **{k: v for k, v in (params or {}).items() if v is not None})


@dataclass(frozen=True)
class LoggedVersion:
    """A registered model version made by a run."""

    name: str
    version: str
    run_id: str
    model_uri: str


class TrainingRun:
    """The active MLflow run of one training: everything a run logs goes through here."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        """Log parameters; dicts and lists as JSON."""
        mlflow.log_params(
            {k: json.dumps(v) if isinstance(v, dict | list | tuple) else v for k, v in params.items()}
        )

    def log_metrics(self, metrics: dict[str, float], prefix: str = "") -> None:
        """Log metrics under `prefix`; missing values are left out."""
        mlflow.log_metrics({f"{prefix}{k}": float(v) for k, v in metrics.items() if pd.notna(v)})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Tag the run."""
        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_dataset(self, frame: pd.DataFrame, name: str, context: str, targets: str | None = None) -> str:
        """Log a training or validation frame as a run input; returns and records its digest and row count."""
        digest = frame_digest(frame)
        with warnings.catch_warnings():
            # Counts are integers in the frame; the hint about missing integers concerns serving, not this record.
            warnings.filterwarnings(
                "ignore", message="Hint: Inferred schema contains integer", category=UserWarning
            )
            dataset = mlflow.data.from_pandas(frame, name=name, targets=targets, digest=digest)
        mlflow.log_input(dataset, context=context)
        mlflow.log_params({f"{context}_rows": len(frame), f"{context}_digest": digest})
        return digest

    def log_figures(self, figures: dict[str, Figure]) -> None:
        """Log each figure as `plots/<name>.png`."""
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"plots/{name}.png")

    def log_tables(self, tables: dict[str, pd.DataFrame]) -> None:
        """Log each table as `tables/<name>.csv`."""
        for name, table in tables.items():
            mlflow.log_text(table.to_csv(index=False), f"tables/{name}.csv")

    def log_dict(self, data: dict[str, Any], path: str) -> None:
        """Log a dict as a JSON artifact."""
        mlflow.log_dict(data, path)

    def log_model(
        self,
        estimator: Any,
        registered_name: str,
        input_example: pd.DataFrame,
        metadata: dict[str, Any],
        params_example: dict[str, Any] | None = None,
    ) -> LoggedVersion:
        """Log the estimator as a pyfunc with signature and input example, and register a new version."""
        wrapper = TesseraModel(estimator, registered_name, metadata)
        # Integers declared as doubles: a missing count at serving time (NaN) then still fits the schema.
        input_example = input_example.astype(
            {c: float for c in input_example.select_dtypes("integer").columns}
        )
        output = estimator.predict(input_example, **(params_example or {}))
        signature = infer_signature(input_example, output, params=params_example)
        with warnings.catch_warnings():
            # MLflow suggests type hints on `predict` and models-from-code; the signature already says it all.
            warnings.filterwarnings("ignore", message=".*type hint.*", category=UserWarning)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=wrapper,
                signature=signature,
                input_example=input_example,
                metadata=metadata,
                pip_requirements=_requirements(),
            )
        # MLflow prints "Successfully registered model ..." and "Created version ..." on stderr itself, not
        # through logging: they go to this module's log instead (shown with --verbose).
        printed = io.StringIO()
        with redirect_stderr(printed):
            version = mlflow.register_model(info.model_uri, registered_name)
        for line in printed.getvalue().splitlines():
            log.info("mlflow: %s", line)
        self.client.set_model_version_tag(registered_name, version.version, "run_id", self.run_id)
        return LoggedVersion(registered_name, str(version.version), self.run_id, info.model_uri)


def _requirements() -> list[str]:
    """The packages a logged model needs to load, pinned to what trained it (saves MLflow's slow inference)."""
    from importlib.metadata import version

    return [
        f"{name}=={version(name)}"
        for name in ("mlflow", "lightgbm", "implicit", "scikit-learn", "pandas", "numpy", "scipy")
    ]


@contextmanager
def training_run(
    workspace: Workspace, experiment: str, run_name: str, tags: dict[str, str] | None = None
) -> Iterator[TrainingRun]:
    """Start a run in the workspace's store, in the experiment named like the model, and yield its logger."""
    with mlflow_store(workspace) as client:
        found = client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found is not None
            else client.create_experiment(
                experiment, artifact_location=f"{artifact_root(workspace)}/{experiment}"
            )
        )
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
            yield TrainingRun(client, run.info.run_id)


def _version_by_alias(client: MlflowClient, name: str, alias: str) -> Any | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _release_champions(client: MlflowClient) -> dict[str, str]:
    """The champions of the current release (model name → version); empty before the first release."""
    release = _version_by_alias(client, RELEASE, CURRENT)
    if release is None:
        return {}
    return {k.removeprefix(_CHAMPION_TAG): v for k, v in release.tags.items() if k.startswith(_CHAMPION_TAG)}


def champions(workspace: Workspace) -> dict[str, str]:
    """Every model's champion version, read in one go from the current release (model name → version)."""
    with mlflow_store(workspace) as client:
        return _release_champions(client)


def alias_version(workspace: Workspace, name: str, alias: str = CHAMPION) -> str | None:
    """The version an alias names, or None: `champion` from the current release, any other alias from the model."""
    if alias == CHAMPION:
        return champions(workspace).get(name)
    with mlflow_store(workspace) as client:
        found = _version_by_alias(client, name, alias)
        return None if found is None else str(found.version)


def load_pyfunc(workspace: Workspace, name: str, version: str | None = None) -> Any:
    """A registered model version as an MLflow pyfunc (what serving loads): `version`, else the champion."""
    number = version if version is not None else alias_version(workspace, name)
    if number is None:
        raise MlflowException(f"no release of {shown_uri(registry_uri(workspace))} has a `{name}` champion")
    with mlflow_store(workspace):
        return mlflow.pyfunc.load_model(f"models:/{name}/{number}")


def load_champion(
    workspace: Workspace, name: str, version: str | None = None
) -> tuple[Any, dict[str, Any]] | None:
    """The fitted estimator of a version (default: the current champion) and the metadata logged with it, or
    None when the model has no champion."""
    number = version if version is not None else alias_version(workspace, name)
    if number is None:
        return None
    model = load_pyfunc(workspace, name, number)
    return model.unwrap_python_model().estimator, dict(model.metadata.metadata or {})


def runs(workspace: Workspace, experiment: str) -> pd.DataFrame:
    """Every run of an experiment (a model) as a frame: params, metrics and tags, newest first."""
    with mlflow_store(workspace):
        return mlflow.search_runs(experiment_names=[experiment], order_by=["attributes.start_time DESC"])


def gate_decision(
    workspace: Workspace,
    version: LoggedVersion,
    metric: str,
    challenger: float,
    champion: float | None,
    tolerance: float,
) -> dict[str, Any]:
    """Whether `version` should become champion: it beats the champion on the same window by more than
    `-tolerance` (with the default 0 a tie keeps the champion); no write."""
    return {
        "model": version.name,
        "version": version.version,
        "run_id": version.run_id,
        "metric": metric,
        "challenger": challenger,
        "champion": champion,
        "previous_champion_version": alias_version(workspace, version.name),
        "promoted": champion is None or challenger > champion - tolerance,
    }


def _release(client: MlflowClient, workspace: Workspace, chosen: dict[str, str]) -> str:
    """Register a release naming `chosen` (model name → version) in one write; its version number (not yet current)."""
    try:
        client.get_registered_model(RELEASE)
    except MlflowException:  # the first release
        client.create_registered_model(RELEASE, description=RELEASE_DESCRIPTION)
    release = client.create_model_version(
        RELEASE,
        f"{artifact_root(workspace)}/{RELEASE}",  # a release has no files of its own: its tags are the release
        tags={f"{_CHAMPION_TAG}{name}": number for name, number in sorted(chosen.items())},
        description=", ".join(f"{name} v{number}" for name, number in sorted(chosen.items())),
    )
    return str(release.version)


def promote(
    workspace: Workspace,
    decisions: list[dict[str, Any]],
    checkpoint: Callable[[str], None] | None = None,
) -> str | None:
    """Apply the gate decisions of one training together: every promoted model becomes champion at once, or none.

    A new release (the current champions with the promoted versions in their place) is registered, then made
    current by moving the one `current` alias: a single row written in one transaction, so a reader sees the
    old release or the new one, never a mix, however the training is killed. The per-model `champion` and
    `challenger` aliases and the gate tags follow for people reading the registry; nothing serves from them
    (a training killed among them leaves them behind until `sync_champion_aliases`). Returns the release made
    current, or None when no model was promoted. `checkpoint(step)` is called before the first write and after
    each one (tests kill the process there)."""
    step = checkpoint or (lambda _: None)
    made = None
    step("started")
    with mlflow_store(workspace) as client:
        before = _release_champions(client)
        after = before | {d["model"]: str(d["version"]) for d in decisions if d["promoted"]}
        if after != before:
            made = _release(client, workspace, after)
            step("release registered")
            client.set_registered_model_alias(RELEASE, CURRENT, made)
            step("release current")
        for decision in decisions:
            name, number = decision["model"], decision["version"]
            if decision["promoted"]:
                client.set_registered_model_alias(name, CHAMPION, number)
                if _version_by_alias(client, name, CHALLENGER) is not None:
                    client.delete_registered_model_alias(name, CHALLENGER)
            else:
                client.set_registered_model_alias(name, CHALLENGER, number)
            step(f"aliases of {name}")
        for decision in decisions:
            for key in ("metric", "challenger", "champion", "promoted"):
                client.set_model_version_tag(
                    decision["model"], decision["version"], f"gate_{key}", str(decision[key])
                )
            client.set_tag(decision["run_id"], "gate", "promoted" if decision["promoted"] else "rejected")
            log.info("gate %s", decision)
        step("tagged")
    return made


def sync_champion_aliases(workspace: Workspace) -> dict[str, str]:
    """Point each model's `champion` alias at the current release's version where a killed promotion left it
    behind (the aliases are for people; serving reads the release); which aliases moved."""
    moved: dict[str, str] = {}
    with mlflow_store(workspace) as client:
        for name, number in _release_champions(client).items():
            found = _version_by_alias(client, name, CHAMPION)
            if found is None or str(found.version) != number:
                client.set_registered_model_alias(name, CHAMPION, number)
                moved[name] = number
    if moved:
        log.warning("champion aliases brought in line with the current release: %s", moved)
    return moved


def forget_customers(workspace: Workspace, customer_ids: set[str]) -> dict[str, int]:
    """Remove erased customers' per-customer state from every logged model (those with `forget`), in place.

    The logged model's pickle is rewritten, so a version already registered (the champion) forgets them too;
    returns, per rewritten file, how many customers' state it dropped.
    """
    import cloudpickle

    changed: dict[str, int] = {}
    for path in sorted(workspace.mlruns.rglob("python_model.pkl")):
        with path.open("rb") as stored:
            wrapper = cloudpickle.load(stored)
        forget = getattr(getattr(wrapper, "estimator", None), "forget", None)
        dropped = forget(customer_ids) if forget is not None else 0
        if dropped:
            tmp = path.with_name(path.name + ".erase-tmp")
            with tmp.open("wb") as out:
                cloudpickle.dump(wrapper, out)
            tmp.replace(path)
            changed[str(path.relative_to(workspace.root))] = dropped
    return changed


# The files MLflow writes beside a logged model with the rows of its input example (MLflow's pandas "split"
# layout: `columns` and `data`; the serving one nested under `dataframe_split`).
EXAMPLE_FILES = ("input_example.json", "serving_input_example.json")


def _drop_example_rows(node: Any, customer_ids: set[str]) -> int:
    """Remove, in place, the rows of every split frame in `node` whose `customer_id` is one of `customer_ids`."""
    if isinstance(node, list):
        return sum(_drop_example_rows(item, customer_ids) for item in node)
    if not isinstance(node, dict):
        return 0
    columns, rows = node.get("columns"), node.get("data")
    if isinstance(columns, list) and "customer_id" in columns and isinstance(rows, list):
        at = columns.index("customer_id")
        keep = [i for i, row in enumerate(rows) if str(row[at]) not in customer_ids]
        node["data"] = [rows[i] for i in keep]
        if isinstance(node.get("index"), list):
            node["index"] = [node["index"][i] for i in keep]
        return len(rows) - len(keep)
    return sum(_drop_example_rows(value, customer_ids) for value in node.values())


def forget_in_examples(workspace: Workspace, customer_ids: set[str]) -> dict[str, int]:
    """Remove erased customers' rows from the input examples logged with every model, in place; per rewritten
    file, how many rows went. The examples only document a model's input: no load or prediction reads them."""
    changed: dict[str, int] = {}
    for path in sorted(p for name in EXAMPLE_FILES for p in workspace.mlruns.rglob(name)):
        example = json.loads(path.read_text(encoding="utf-8"))
        dropped = _drop_example_rows(example, customer_ids)
        if dropped:
            tmp = path.with_name(path.name + ".erase-tmp")
            tmp.write_text(json.dumps(example), encoding="utf-8")
            tmp.replace(path)
            changed[str(path.relative_to(workspace.root))] = dropped
    return changed
