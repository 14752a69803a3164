"""The commands that run a search: ``run``, ``extend`` and ``resume``, and what they print at the end
(the front, how to open it, or why the search stopped, with its exit status)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from gatesearch.search.searchers.registry import SEARCHERS
from gatesearch.search.system.redact import shown
from gatesearch.search.ui.app import TRUST_HELP, _fail, _print_links, _warn_passwords, app, console, err_console
from gatesearch.spaces import SpaceError, load_space_file


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
                   "postgresql+psycopg://user@host:5432/db with the password in PGPASSWORD or ~/.pgpass "
                   "(pip install 'gatesearch\\[postgres]'); "
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
    from gatesearch.search.config.plan import plan_search

    overrides = {"num_samples": num_samples, "max_concurrent": max_concurrent, "searcher": searcher, "seed": seed}
    _warn_passwords(tracking_uri=tracking_uri, optuna_storage=optuna_storage)
    try:  # arguments and the space file first: a mistake is reported in well under a second
        sf = load_space_file(space_file)
        from gatesearch.search.config.settings import SearchSettings

        try:  # the options against the file's search: first (no user module imported yet)
            early = SearchSettings.from_mapping(sf.search)
        except ValueError:
            early = None  # the file's own mistake: validation reports it at its line
        if early is not None:
            early.override(**overrides)
        plan = plan_search(sf, overrides)  # the space file checked once: the search runs this plan
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
        from gatesearch.search.lifecycle.runner import run_search

        return run_search(plan, output_dir=output_dir, tracking_uri=tracking_uri,
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
    from gatesearch.search.config.settings import SearchSettings
    from gatesearch.search.lifecycle.runner import finished_search_dir

    _warn_passwords(tracking_uri=tracking_uri)

    try:  # the folder, its manifest and the number first: a mistake is reported in well under a second
        SearchSettings().override(num_samples=num_samples)
        found = finished_search_dir(search_dir)
    except ValueError as e:
        _fail(str(e).replace("num_samples:", "--num-samples:").replace("(trials in the search)", "(more trials)"))
        return

    def start():
        from gatesearch.search.lifecycle.runner import extend_search

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
    from gatesearch.search.lifecycle.manifest import Manifest, find_search_dir

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
        from gatesearch.search.lifecycle.runner import resume_search

        return resume_search(found, address=address, tracking_uri=tracking_uri, progress=None if quiet else "auto",
                             optuna_storage=optuna_storage, trust_dir=trust_dir)

    _search_and_print(start, allow_failed)


def _search_and_print(start, allow_failed: bool = False) -> None:
    """Run ``start()`` (a search), always shut Ray down, print the front or a clean error.
    An interrupted search (SIGINT/SIGTERM) prints how to finish it and exits 130; one stopped by
    repeated failures prints the failure once and exits 4; one that finished with some failed
    trials says so last and exits 3 (0 with ``allow_failed``): :mod:`gatesearch.search.lifecycle.failures`."""
    import signal

    from gatesearch.search.lifecycle.failures import EXIT_FAILING, EXIT_SOME_FAILED, SearchFailing
    from gatesearch.search.lifecycle.interrupt import EXIT_INTERRUPTED, SearchInterrupted

    def stop_now(signum, frame):  # SIGTERM before the search runs (Ray starting): unwind, shut Ray down
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, stop_now)
    try:
        from gatesearch.search.ray import shutdown_ray
        from gatesearch.search.tracking.outbox import TrackingUnavailable
        from gatesearch.search.ui.console import front_table

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
