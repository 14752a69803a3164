"""The ``gatesearch`` command line (typer)."""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from gatesearch.search.redact import shown
from gatesearch.search.searchers import SEARCHERS
from gatesearch.spaces import SpaceError, load_space_file

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Multi-objective search over sparse-MoE gates and early-exit networks (accuracy vs compute).")
space_app = typer.Typer(no_args_is_help=True, help="Inspect search-space files.")
app.add_typer(space_app, name="space")


class _Scrubbed:
    """A text stream that writes through :func:`~gatesearch.search.redact.scrub`: a password seen by
    this process never reaches the terminal or a log file (a Slurm log, a CI log), whoever printed it."""

    def __init__(self, stream):
        self._stream = stream  # a stream, or a function returning the stream of the moment (sys.stdout)

    @property
    def target(self):
        return self._stream() if callable(self._stream) else self._stream

    def write(self, text):
        from gatesearch.search.redact import scrub

        return self.target.write(scrub(text))

    def __getattr__(self, name):
        return getattr(self.target, name)


console = Console(width=None if sys.stdout.isatty() else 160, file=_Scrubbed(lambda: sys.stdout))
err_console = Console(file=_Scrubbed(lambda: sys.stderr))


TRUST_HELP = ("read a search dir that others can write (or that is not yours): its saved state is unpickled "
              "and its plugins imported, so only if you trust everyone who can write there")


def _warn_passwords(**urls: Optional[str]) -> None:
    """A URL given on the command line with a password in it: every local user sees it in ``ps``,
    and Ray's job table and Slurm's accounting keep the command line. gatesearch never stores or
    prints it, but it should not be there."""
    from gatesearch.search.redact import has_password, remember_urls

    remember_urls(urls.values())
    for option, url in urls.items():
        if has_password(url):
            err_console.print(f"[bold yellow]warning:[/] --{option.replace('_', '-')} carries a password: other users "
                              "see it in `ps`, and Ray's job table and Slurm's accounting keep the command line. "
                              "gatesearch never stores or prints it; leave it out of the URL and set PGPASSWORD or "
                              "~/.pgpass (PostgreSQL) or MLFLOW_TRACKING_PASSWORD (an MLflow server) instead",
                              highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def run(
    space_file: Path = typer.Argument(..., help="YAML search-space file, e.g. spaces/examples/digits_moe.yaml"),
    num_samples: Optional[int] = typer.Option(None, "--num-samples", "-n", help="number of trials"),
    max_concurrent: Optional[int] = typer.Option(None, help="trials running at once"),
    searcher: Optional[str] = typer.Option(None, help=" | ".join(SEARCHERS)),
    seed: Optional[int] = typer.Option(None, help="searcher seed"),
    output_dir: Path = typer.Option(Path("gatesearch-runs"), help="where the MLflow db and Ray results go"),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: sqlite in output-dir)"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: a private local instance)"),
    optuna_storage: Optional[str] = typer.Option(
        None, help="storage of the Optuna mirror (for optuna-dashboard), e.g. "
                   "postgresql+psycopg://user:pw@host:5432/db (pip install 'gatesearch\\[postgres]'); "
                   "default: sqlite optuna.db in output-dir"),
    warm_start: Optional[str] = typer.Option(
        None, help="an earlier search of the same objective (its search directory, or its parent run id in "
                   "this search's store): its finished trials are told to the searcher first, not trained"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no live progress (only the front at the end)"),
    trust_dir: bool = typer.Option(False, "--trust-dir", help=TRUST_HELP),
    allow_failed: bool = typer.Option(False, "--allow-failed", help="exit 0 when the search finished with some "
                                      "failed trials (default: exit 3)"),
) -> None:
    """Run a search and print the Pareto front."""
    from gatesearch.search.validate import validate_space_file

    overrides = {"num_samples": num_samples, "max_concurrent": max_concurrent, "searcher": searcher, "seed": seed}
    _warn_passwords(tracking_uri=tracking_uri, optuna_storage=optuna_storage)
    try:  # arguments and the space file first: a mistake is reported in well under a second
        sf = load_space_file(space_file)
        from gatesearch.search.settings import SearchSettings

        try:  # the options against the file's search: first (no user module imported yet)
            early = SearchSettings.from_mapping(sf.search)
        except ValueError:
            early = None  # the file's own mistake: validation reports it at its line
        if early is not None:
            early.override(**overrides)
        _, settings = validate_space_file(sf)
        settings.override(**overrides)
    except SpaceError as e:
        _fail(str(e))
        return
    except ValueError as e:
        option = str(e).split(":", 1)[0].replace("_", "-")
        _fail(f"--{option}: {str(e).split(':', 1)[-1].strip()}" if option in ("num-samples", "max-concurrent",
                                                                              "searcher", "seed") else str(e))
        return
    if output_dir.exists() and not output_dir.is_dir():
        _fail(f"--output-dir {output_dir}: exists and is not a folder; pass a folder (it is created if missing)")
        return

    def start():
        from gatesearch.search.runner import run_search

        return run_search(sf, overrides=overrides, output_dir=output_dir, tracking_uri=tracking_uri,
                          address=address, progress=None if quiet else "auto", optuna_storage=optuna_storage,
                          warm_start=warm_start, trust_dir=trust_dir)

    _search_and_print(start, allow_failed)


@app.command()
def extend(
    search_dir: Path = typer.Argument(..., help="a finished search's directory (printed by `run`), or its --output-dir"),
    num_samples: int = typer.Option(..., "--num-samples", "-n", help="how many more trials"),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: the one recorded)"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: the one recorded)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no live progress (only the front at the end)"),
    trust_dir: bool = typer.Option(False, "--trust-dir", help=TRUST_HELP),
    allow_failed: bool = typer.Option(False, "--allow-failed", help="exit 0 when the search finished with some "
                                      "failed trials (default: exit 3)"),
) -> None:
    """Run more trials on top of a finished search: same MLflow parent run, the searcher continuing
    from its saved state."""
    from gatesearch.search.runner import finished_search_dir
    from gatesearch.search.settings import SearchSettings

    _warn_passwords(tracking_uri=tracking_uri)

    try:  # the folder, its manifest and the number first: a mistake is reported in well under a second
        SearchSettings().override(num_samples=num_samples)
        found = finished_search_dir(search_dir)
    except ValueError as e:
        _fail(str(e).replace("num_samples:", "--num-samples:").replace("(trials in the search)", "(more trials)"))
        return

    def start():
        from gatesearch.search.runner import extend_search

        return extend_search(found, num_samples=num_samples, address=address, tracking_uri=tracking_uri,
                             progress=None if quiet else "auto", trust_dir=trust_dir)

    _search_and_print(start, allow_failed)


@app.command()
def resume(
    search_dir: Path = typer.Argument(..., help="the search directory printed by `run` (or its --output-dir)"),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: the one recorded)"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: the one recorded)"),
    optuna_storage: Optional[str] = typer.Option(None, help="Optuna mirror's storage (default: the one recorded)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no live progress (only the front at the end)"),
    trust_dir: bool = typer.Option(False, "--trust-dir", help=TRUST_HELP),
    allow_failed: bool = typer.Option(False, "--allow-failed", help="exit 0 when the search finished with some "
                                      "failed trials (default: exit 3)"),
) -> None:
    """Finish an interrupted search: same trials, searcher state and MLflow parent run."""
    from gatesearch.search.manifest import Manifest, find_search_dir

    _warn_passwords(tracking_uri=tracking_uri, optuna_storage=optuna_storage)
    try:  # the folder and its manifest first: a mistake is reported in well under a second
        found = find_search_dir(search_dir)
        if Manifest.read(found).status == "finished":
            raise ValueError(f"{found}: this search already finished; nothing to resume (`gatesearch extend "
                             f"{found} --num-samples N` runs N more trials)")
    except ValueError as e:
        _fail(str(e))
        return

    def start():
        from gatesearch.search.runner import resume_search

        return resume_search(found, address=address, tracking_uri=tracking_uri, progress=None if quiet else "auto",
                             optuna_storage=optuna_storage, trust_dir=trust_dir)

    _search_and_print(start, allow_failed)


def _search_and_print(start, allow_failed: bool = False) -> None:
    """Run ``start()`` (a search), always shut Ray down, print the front or a clean error.
    An interrupted search (SIGINT/SIGTERM) prints how to finish it and exits 130; one stopped by
    repeated failures prints the failure once and exits 4; one that finished with some failed
    trials says so last and exits 3 (0 with ``allow_failed``): :mod:`gatesearch.search.failures`."""
    import signal

    from gatesearch.search.failures import EXIT_FAILING, EXIT_SOME_FAILED, SearchFailing
    from gatesearch.search.interrupt import EXIT_INTERRUPTED, SearchInterrupted

    def stop_now(signum, frame):  # SIGTERM before the search runs (Ray starting): unwind, shut Ray down
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, stop_now)
    try:
        from gatesearch.search.console import front_table
        from gatesearch.search.outbox import TrackingUnavailable
        from gatesearch.search.ray import shutdown_ray

        try:
            result = start()
        except SearchFailing as e:
            where = f" at {e.failure.where}" if e.failure.where else ""
            summary = e.failure.summary.removesuffix(f" (at {e.failure.where})")
            err_console.print(f"[bold red]stopped[/]: {escape(e.why)}{escape(where)}:\n  {escape(summary)}\n"
                              f"{e.failed} failed, {e.finished} finished; fix it, then `gatesearch resume "
                              f"{escape(e.search_dir)}` runs the rest of the budget (each failed trial's traceback is "
                              f"its child run's error.txt in MLflow; search: {{fail_fast: 0}} never stops)",
                              highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_FAILING) from None
        except SearchInterrupted as e:
            err_console.print(f"[bold yellow]interrupted[/] ({escape(e.signal_name)}): {e.finished} of {e.budget} "
                              f"finished; finish it with `gatesearch resume {escape(e.search_dir)}`",
                              highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM while Ray or the stores were starting
            err_console.print(f"[bold yellow]interrupted[/] ({escape(str(e) or 'SIGINT')}) before the search "
                              f"started; run the command again", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (SpaceError, ValueError, TrackingUnavailable) as e:
            _fail(str(e))
            return
        finally:
            shutdown_ray()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not result.trials:
        why = (f"{result.failed} failed: the errors are on their child runs in MLflow ({shown(result.tracking_uri)}), tag "
               f"gatesearch.error and artifact error.txt" if result.failed else
               f"{result.extra.get('early_stopped', 0)} stopped early by the scheduler, 0 failed")
        _fail(f"no trial finished ({why})", code=1)
    console.print(front_table(result.front, result.objectives, columns=result.columns, metrics=result.summary_metrics,
                              title=f"Pareto front of {result.experiment} "
                                    f"({len(result.trials)} finished trials, {result.failed} failed"
                                    + (f", {result.extra['infeasible']} infeasible" if result.extra.get("infeasible")
                                       else "") + ")"))
    ref = ", ".join(f"{v:.6g}" for v in result.reference_point)
    console.print(f"hypervolume {result.hypervolume:,.2f} (reference point [{ref}]), "
                  f"search took {result.wall_seconds:.0f} s", markup=False)
    if result.extra.get("warm_start"):
        console.print(result.extra["warm_start"], soft_wrap=True, markup=False, highlight=False)
    if result.extra.get("infeasible"):
        console.print(f"{result.extra['infeasible']} finished trials are outside the space file's constraints: kept "
                      f"off the front (child run tag gatesearch.infeasible says why)", markup=False)
        if not result.front:
            err_console.print("[bold yellow]warning:[/] no finished trial satisfies the constraints, so the front is "
                              "empty; loosen `constraints:` or search where they hold", highlight=False, soft_wrap=True)
    if result.extra.get("searcher_deduplicated"):
        console.print(f"{result.extra['searcher_deduplicated']} repeated proposals were answered from earlier "
                      "results (not trained, not counted as trials; `dedup: false` trains them)", markup=False)
    console.print(f"search dir (for `gatesearch resume`): {result.search_dir}", soft_wrap=True, markup=False,
                  highlight=False)
    _print_links(result.tracking_uri, result.experiment_id, result.parent_run_id)
    if result.optuna_storage:
        console.print(f"Also in optuna-dashboard (pip install 'gatesearch[dashboard]'), study {result.optuna_study}:\n"
                      f"  optuna-dashboard {shown(result.optuna_storage)}", soft_wrap=True, highlight=False,
                      markup=False)
    if result.failed:
        total = len(result.trials) + result.failed
        err_console.print(f"[bold yellow]{result.failed} of {total} trials failed[/] (each one's traceback is its "
                          f"child run's error.txt in MLflow)"
                          + ("" if allow_failed else f"; exit status {EXIT_SOME_FAILED} (--allow-failed: 0)"),
                          highlight=False, soft_wrap=True)
        if not allow_failed:
            raise typer.Exit(EXIT_SOME_FAILED)


def _print_links(uri: str, experiment_id: str, parent_run_id: str) -> None:
    """How to open the search in MLflow: the `mlflow ui` command for a local store, and a deep
    link to the parent run (its description is the front, linked to each trial's run)."""
    from gatesearch.search.front_report import run_link
    from gatesearch.search.redact import shown

    uri = shown(uri)
    if uri.startswith("sqlite:"):
        console.print(f"Inspect it in MLflow:\n  mlflow ui --backend-store-uri {uri} --port 5000\n"
                      f"  then open http://127.0.0.1:5000/{run_link(experiment_id, parent_run_id)}", soft_wrap=True,
                      highlight=False, markup=False)
    else:
        console.print(f"Inspect it in MLflow: {uri.rstrip('/')}/{run_link(experiment_id, parent_run_id)}",
                      soft_wrap=True, highlight=False, markup=False)


@app.command()
def pareto(
    experiment: Optional[str] = typer.Option(None, help="MLflow experiment (default: the newest one)"),
    output_dir: Path = typer.Option(Path("gatesearch-runs"), help="output dir of `run` (for its sqlite store)"),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (overrides --output-dir)"),
    plot: Optional[Path] = typer.Option(None, help="also save the front figure to this PNG"),
) -> None:
    """Print the Pareto front of the latest search of an experiment, read from MLflow."""
    _warn_passwords(tracking_uri=tracking_uri)
    uri = tracking_uri or f"sqlite:///{output_dir.expanduser().resolve() / 'mlflow.db'}"
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():  # before any heavy import
        _fail(f"no tracking store at {uri}; run a search first or pass --tracking-uri")
        return
    from gatesearch.objectives import get_objective
    from gatesearch.search.console import front_table
    from gatesearch.search.front_report import read_front
    from gatesearch.search.runner import latest_search
    from gatesearch.search.tracking import Tracker

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
        from gatesearch.search.pareto import hypervolume, reference_point

        ok = ~infeasible & np.isfinite(values).all(axis=1)
        logged = parent_params.get("reference_point")
        ref = np.array(json.loads(logged), dtype=float) if logged else (
            reference_point(values[ok], modes) if ok.any() else None)
        if ref is not None:
            hv = hypervolume(values[ok], modes, ref) if ok.any() else 0.0
            console.print(f"hypervolume {hv:,.2f} (reference point [{', '.join(f'{v:.6g}' for v in ref)}]"
                          + ("" if logged else ", inferred from these trials") + ")", markup=False)
    _print_links(uri, tracker.experiment_id, parent)
    if plot is not None:
        import matplotlib.pyplot as plt

        from gatesearch.search.figure import pareto_figure

        fig = pareto_figure(values, (ranks == 0) & ~infeasible, objectives, modes,
                            labels=[str(r.get("trial", "")) for r in rows], title=name, infeasible=infeasible)
        fig.savefig(plot)
        plt.close(fig)
        console.print(f"figure written to {plot.resolve()}", markup=False)


@app.command()
def relocate(output_dir: Path = typer.Argument(..., help="a moved or copied output folder of `run`")) -> None:
    """Make a moved or copied output folder open again: re-root its MLflow artifact locations
    (and its search manifests) from the old absolute path to this one."""
    from gatesearch.search.manifest import relocate_manifests
    from gatesearch.search.tracking import relocate_sqlite_store

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
    from gatesearch.search.validate import validate_space_file

    try:
        sf = load_space_file(space_file)
        objective, settings = validate_space_file(sf)
    except SpaceError as e:
        _fail(str(e))
        return
    console.print(f"[green]ok[/] {escape(sf.path)}: objective {objective.name}, {len(sf.space.params)} parameters, "
                  f"searcher {settings.searcher}, {settings.num_samples} trials")
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
        from gatesearch.search.constraints import from_space_file

        console.print(f"  constraints: {from_space_file(sf, objective).describe()} (a trial outside them is "
                      f"infeasible: logged, kept off the front)", highlight=False, markup=False)


@space_app.command("sample")
def space_sample(space_file: Path, n: int = typer.Option(3, "-n", help="how many"),
                 seed: int = typer.Option(0, help="sampling seed")) -> None:
    """Print n random configurations (JSON lines) drawn from the space."""
    from gatesearch.search.validate import validate_space_file

    try:
        sf = load_space_file(space_file)
        validate_space_file(sf)
    except SpaceError as e:
        _fail(str(e))
        return
    rng = random.Random(seed)
    for _ in range(n):
        console.print_json(json.dumps({**sf.fixed, **sf.space.sample(rng)}))


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
    from gatesearch.search.dry_run import dry_run

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


def main() -> None:
    """Entry point: an unexpected error is one line on stderr (exit 1), not a traceback;
    ``GATESEARCH_DEBUG=1`` shows the traceback. Everything printed goes through
    :func:`~gatesearch.search.redact.scrub` (the passwords of the URLs given, and of the
    environment's PGPASSWORD and MLFLOW_TRACKING_PASSWORD)."""
    from gatesearch.search.redact import remember

    remember(*(os.environ.get(k, "") for k in ("PGPASSWORD", "MLFLOW_TRACKING_PASSWORD")))
    if not isinstance(sys.stdout, _Scrubbed):
        sys.stdout, sys.stderr = _Scrubbed(sys.stdout), _Scrubbed(sys.stderr)
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the last line of defence of a command-line tool
        if os.environ.get("GATESEARCH_DEBUG"):
            raise
        first = (str(e).strip().splitlines() or [""])[0][:500]
        user = _user_frame(e)
        if user:  # raised in the user's own code (their objective or model), not ours
            err_console.print(f"[bold red]error[/] in your code at {escape(user)}: {escape(type(e).__name__)}: "
                              f"{escape(first)}\n  (set GATESEARCH_DEBUG=1 to see the traceback)",
                              highlight=False, soft_wrap=True)
            sys.exit(1)
        err_console.print(f"[bold red]error:[/] {escape(type(e).__name__)}: {escape(first)}\n"
                          f"  (unexpected; set GATESEARCH_DEBUG=1 to see the traceback, and please report it)",
                          highlight=False, soft_wrap=True)
        sys.exit(1)


def _user_frame(exc: BaseException) -> str:
    """``file:line`` of the deepest traceback frame outside installed packages when it is not
    gatesearch's own (a user's objective or model code run on the driver), else ''."""
    import traceback

    root = Path(__file__).resolve().parents[1]
    ours = tuple(str(root / d) + os.sep for d in ("models", "objectives", "search", "spaces", "gatesearch"))
    for f in reversed(traceback.extract_tb(exc.__traceback__)):
        if "site-packages" in f.filename or f.filename.startswith("<"):
            continue
        return "" if f.filename.startswith(ours) else f"{f.filename}:{f.lineno}"
    return ""


if __name__ == "__main__":
    sys.exit(main())
