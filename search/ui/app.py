"""The typer application of the ``gatesearch`` command, its consoles (every write scrubbed of
passwords) and the helpers its commands share."""

from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Multi-objective search over sparse-MoE gates and early-exit networks (accuracy vs compute).")
space_app = typer.Typer(no_args_is_help=True, help="Inspect search-space files.")
app.add_typer(space_app, name="space")


class _Scrubbed:
    """A text stream that writes through :func:`~gatesearch.search.system.redact.scrub`: a password seen by
    this process never reaches the terminal or a log file (a Slurm log, a CI log), whoever printed it."""

    def __init__(self, stream):
        self._stream = stream  # a stream, or a function returning the stream of the moment (sys.stdout)

    @property
    def target(self):
        return self._stream() if callable(self._stream) else self._stream

    def write(self, text):
        from gatesearch.search.system.redact import scrub

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
    from gatesearch.search.system.redact import has_password, remember_urls

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


def _print_links(uri: str, experiment_id: str, parent_run_id: str) -> None:
    """How to open the search in MLflow: the `mlflow ui` command for a local store, and a deep
    link to the parent run (its description is the front, linked to each trial's run)."""
    from gatesearch.search.front.report import run_link
    from gatesearch.search.system.redact import shown

    uri = shown(uri)
    if uri.startswith("sqlite:"):
        console.print(f"Inspect it in MLflow:\n  mlflow ui --backend-store-uri {uri} --port 5000\n"
                      f"  then open http://127.0.0.1:5000/{run_link(experiment_id, parent_run_id)}", soft_wrap=True,
                      highlight=False, markup=False)
    else:
        console.print(f"Inspect it in MLflow: {uri.rstrip('/')}/{run_link(experiment_id, parent_run_id)}",
                      soft_wrap=True, highlight=False, markup=False)
