"""The commands that read or prepare rather than search: ``pareto``, ``relocate``, ``space validate``,
``space sample``, ``try`` and ``examples``."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from gatesearch.search.system.redact import shown
from gatesearch.search.ui.app import _fail, _print_links, _warn_passwords, app, console, err_console, space_app
from gatesearch.spaces import SpaceError, load_space_file, trial_configuration


@app.command()
def pareto(
    experiment: Optional[str] = typer.Option(None, help="MLflow experiment (default: the newest one)"),
    output_dir: Path = typer.Option(Path("gatesearch-runs"), help="output dir of `run` (for its sqlite store)"),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (overrides --output-dir)"),
    plot: Optional[Path] = typer.Option(None, help="also save the front figure to this PNG"),
    importance: bool = typer.Option(False, "--importance", help="also print how much each searched parameter "
                                    "mattered, per objective (PED-ANOVA, logged at the end of the search)"),
) -> None:
    """Print the Pareto front of the latest search of an experiment, read from MLflow."""
    _warn_passwords(tracking_uri=tracking_uri)
    uri = tracking_uri or f"sqlite:///{output_dir.expanduser().resolve() / 'mlflow.db'}"
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():  # before any heavy import
        _fail(f"no tracking store at {uri}; run a search first or pass --tracking-uri")
        return
    from gatesearch.objectives import get_objective
    from gatesearch.search.front.report import read_front
    from gatesearch.search.lifecycle.runner import latest_search
    from gatesearch.search.tracking.tracker import Tracker
    from gatesearch.search.ui.console import front_table

    try:
        names = Tracker.experiments(uri)
        name = experiment or (names[0] if names else None)
        if name is None or name not in names:
            _fail(f"experiment {experiment!r} not found in {shown(uri)}; known: {names}")
            return
        tracker = Tracker(uri, name)
        parent, objectives, modes = latest_search(tracker)
        parent_params = tracker.params(parent)
        try:  # the objective declares its columns; a user objective may not be importable here
            obj = get_objective(parent_params.get("objective", ""))
            columns, metrics = obj.front_columns, obj.summary_metrics
        except ValueError:
            columns, metrics = (), ()
        if not columns:  # a user objective (or a training function): what its trials searched
            fixed = {k[len("fixed."):] for k in parent_params if k.startswith("fixed.")}
            children = tracker.children(parent)
            columns = tuple(k for k in (children[0].params if children else {}) if k not in fixed)[:6]
        _, values, ranks, rows, front = read_front(tracker, parent, objectives, modes, columns=columns, metrics=metrics)
    except ValueError as e:
        _fail(str(e))
        return
    import numpy as np

    infeasible = np.array([bool(r.get("infeasible")) for r in rows], dtype=bool)
    console.print(front_table(front, objectives, columns=columns, metrics=metrics,
                              title=f"Pareto front of {name} ({len(rows)} finished trials"
                                    + (f", {int(infeasible.sum())} infeasible" if infeasible.any() else "") + ")"))
    if infeasible.any():
        console.print(f"{int(infeasible.sum())} finished trials are outside the search's constraints: kept off the "
                      f"front (child run tag gatesearch.infeasible says why)", markup=False)
    if len(values):
        from gatesearch.search.front.pareto import hypervolume, reference_point

        ok = ~infeasible & np.isfinite(values).all(axis=1)
        logged = parent_params.get("reference_point")
        ref = np.array(json.loads(logged), dtype=float) if logged else (
            reference_point(values[ok], modes) if ok.any() else None)
        if ref is not None:
            hv = hypervolume(values[ok], modes, ref) if ok.any() else 0.0
            console.print(f"hypervolume {hv:,.2f} (reference point [{', '.join(f'{v:.6g}' for v in ref)}]"
                          + ("" if logged else ", inferred from these trials") + ")", markup=False)
    if importance:
        _print_importances(tracker, parent)
    _print_links(uri, tracker.experiment_id, parent)
    if plot is not None:
        import matplotlib.pyplot as plt

        from gatesearch.search.front.figure import pareto_figure

        fig = pareto_figure(values, (ranks == 0) & ~infeasible, objectives, modes,
                            labels=[str(r.get("trial", "")) for r in rows], title=name, infeasible=infeasible)
        fig.savefig(plot)
        plt.close(fig)
        console.print(f"figure written to {plot.resolve()}", markup=False)


def _print_importances(tracker, parent: str) -> None:
    """The parent run's ``importances.json`` as one table: a row per parameter, a column per objective."""
    from rich.table import Table

    from gatesearch.search.tracking.insights import IMPORTANCES_FILE

    logged = tracker.load_dict(parent, IMPORTANCES_FILE)
    found = (logged or {}).get("importances") or {}
    if not found:
        why = (logged or {}).get("why_empty") or "not logged (the search has not finished, or finished before " \
                                                  "gatesearch logged importances)"
        console.print(f"parameter importances: none ({why})", markup=False, highlight=False)
        return
    targets = list(found)
    params = sorted({p for imp in found.values() for p in imp}, key=lambda p: -max(imp.get(p, 0.0) for imp in
                                                                                  found.values()))
    table = Table(title="parameter importances (PED-ANOVA, each column sums to 1)")
    table.add_column("parameter")
    for t in targets:
        table.add_column(t, justify="right")
    for p in params:
        table.add_row(p, *(f"{found[t].get(p, 0.0):.3f}" for t in targets))
    console.print(table)


@app.command()
def relocate(output_dir: Path = typer.Argument(..., help="a moved or copied output folder of `run`")) -> None:
    """Make a moved or copied output folder open again: re-root its MLflow artifact locations
    (and its search manifests) from the old absolute path to this one."""
    from gatesearch.search.lifecycle.manifest import relocate_manifests
    from gatesearch.search.tracking.tracker import relocate_sqlite_store

    db = output_dir.expanduser().resolve() / "mlflow.db"
    if not db.exists():
        _fail(f"{db}: no MLflow store here; pass the output folder of `gatesearch run` (it holds mlflow.db)")
        return
    try:
        old, rows = relocate_sqlite_store(db, db.parent)
    except ValueError as e:
        _fail(str(e))
        return
    manifests = relocate_manifests(db.parent, old)
    console.print(f"re-rooted {old} -> {db.parent}: {rows} MLflow rows, {manifests} search manifests", markup=False,
                  highlight=False, soft_wrap=True)


@space_app.command("validate")
def space_validate(space_file: Path) -> None:
    """Check a space file against its objective; print its parameters."""
    from gatesearch.search.config.validate import validate_space_file
    from gatesearch.search.searchers.registry import searcher_named

    try:
        sf = load_space_file(space_file)
        objective, settings = validate_space_file(sf)
    except SpaceError as e:
        _fail(str(e))
        return
    console.print(f"[green]ok[/] {escape(sf.path)}: objective {objective.name}, {len(sf.space.params)} parameters, "
                  f"searcher {searcher_named(settings.searcher, sf.space)}, {settings.num_samples} trials")
    console.print("  optimises: " + ", ".join(f"{m.name} ({m.mode})" for m in objective.objectives),
                  highlight=False, markup=False)
    rules = objective.schema.rules

    def doc(name: str) -> str:  # a training function's keys have no docs of ours
        return "" if rules[name].kind == "any" else f"\n      {rules[name].doc}"

    for name, p in sf.space.params.items():
        console.print(f"  {name}: {p}{doc(name)}", highlight=False, markup=False)
    for name, value in sf.fixed.items():
        console.print(f"  {name} = {value!r} (fixed){doc(name)}", highlight=False, markup=False)
    if sf.constraints:
        from gatesearch.search.config.constraints import from_space_file

        console.print(f"  constraints: {from_space_file(sf, objective).describe()} (a trial outside them is "
                      f"infeasible: logged, kept off the front)", highlight=False, markup=False)


@space_app.command("sample")
def space_sample(space_file: Path, n: int = typer.Option(3, "-n", help="how many"),
                 seed: int = typer.Option(0, help="sampling seed")) -> None:
    """Print n random configurations (JSON lines) drawn from the space."""
    from gatesearch.search.config.validate import validate_space_file

    try:
        sf = load_space_file(space_file)
        validate_space_file(sf)
    except SpaceError as e:
        _fail(str(e))
        return
    rng = random.Random(seed)
    for _ in range(n):
        console.print_json(json.dumps(trial_configuration(sf.fixed, sf.space.sample(rng))))


@app.command("try")
def try_(
    space_file: Path = typer.Argument(..., help="YAML search-space file"),
    seed: int = typer.Option(0, help="which configuration to draw"),
    epochs: int = typer.Option(1, help="epochs to train (where the configuration has epochs); 0: as the space says"),
    device: str = typer.Option("cpu", help="cpu or cuda"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="KEY=VALUE (JSON value) instead of a drawn one; "
                                             "repeatable"),
) -> None:
    """Run one trial here, in seconds: no Ray, nothing written. Prints what it reported, the time
    per epoch, and whether the search can use it; exits 1 with the reason (and your file:line) if not."""
    from gatesearch.search.lifecycle.dry_run import dry_run

    values = {}
    for item in set_ or []:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            _fail(f"--set {item!r}: write KEY=VALUE, e.g. --set k=2 or --set gate='\"topk\"'")
            return
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw  # a plain word: text
    try:
        sf = load_space_file(space_file)
        unknown = [k for k in values if k not in sf.space.params]
        if unknown:
            from gatesearch._hints import did_you_mean

            _fail(f"--set {unknown[0]}: not a parameter of {sf.path}{did_you_mean(unknown[0], sf.space.params)}; "
                  f"parameters: {list(sf.space.params)}")
            return
        result = dry_run(sf, seed=seed, epochs=epochs or None, device=device, config=values)
    except SpaceError as e:
        _fail(str(e))
        return
    console.print(f"config: {json.dumps(result.config, default=str)}", markup=False, highlight=False, soft_wrap=True)
    if result.epochs_note:
        console.print(f"({result.epochs_note})", markup=False, highlight=False)
    names = [n for n, _ in result.objectives]
    for r, t in zip(result.reports, result.seconds):
        shown = {k: v for k, v in r.items() if k != "epoch"}
        body = "  ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
        console.print(f"epoch {r.get('epoch')}: {t:.2f} s  {body}", markup=False, highlight=False, soft_wrap=True)
    if result.saved_states:
        console.print(f"checkpoint: {result.saved_states} state(s) saved and read back as a trial's would be",
                      markup=False, highlight=False)
    if not result.ok:
        where = f" in your code at {result.where}" if result.where else ""
        err_console.print(f"[bold red]error[/]{escape(where)}: {escape(result.error)}\n  the search would fail every "
                          f"trial like this one: fix it first", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    per_epoch = sum(result.seconds) / max(1, len(result.seconds))
    console.print(f"ok: {', '.join(f'{n} ({m})' for n, m in result.objectives)} reported, finite numbers; "
                  f"{per_epoch:.2f} s per epoch here" + (f"; {result.reports[-1]['macs_per_sample']:,.0f} MACs per sample"
                                                        if "macs_per_sample" in result.reports[-1] else ""),
                  markup=False, highlight=False, soft_wrap=True)
    missing = [n for n in names if n not in result.reports[-1]]
    assert not missing, missing  # EpochReports.finish checked it


@app.command()
def examples(
    dest: Path = typer.Argument(Path("."), help="where to copy them (created if missing)"),
    force: bool = typer.Option(False, "--force", help="overwrite files of the same name"),
) -> None:
    """Copy the example space files that come with gatesearch into DEST (default: here), e.g. to run
    `gatesearch run digits_moe.yaml` after `pip install gatesearch`."""
    from importlib import resources

    found = sorted((f for f in resources.files("gatesearch.spaces").joinpath("examples").iterdir()
                    if f.name.endswith(".yaml")), key=lambda f: f.name)
    if not found:
        _fail("no example space files are installed with this gatesearch (a broken install?)", code=1)
        return
    clash = [f.name for f in found if (dest / f.name).exists()]
    if clash and not force:
        _fail(f"{dest.resolve()}: {', '.join(clash)} already there; pass --force to overwrite, or another folder")
        return
    dest.mkdir(parents=True, exist_ok=True)
    for f in found:
        (dest / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    console.print(f"{len(found)} example space files copied to {dest.resolve()}:", markup=False, highlight=False)
    for f in found:
        console.print(f"  {f.name}", markup=False, highlight=False)
    console.print(f"try: gatesearch run {dest / 'digits_moe.yaml'}", markup=False, highlight=False)
