"""The ``gatesearch`` command line (typer): :func:`main`, the entry point, around the application of
:mod:`.app` with the commands of :mod:`.search_commands` and :mod:`.view_commands`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.markup import escape

from gatesearch.search.ui import search_commands, view_commands  # noqa: F401 - they register the commands on app
from gatesearch.search.ui.app import _Scrubbed, app, err_console  # noqa: F401 - app: the typer application


def main() -> None:
    """Entry point: an unexpected error is one line on stderr (exit 1), not a traceback;
    ``GATESEARCH_DEBUG=1`` shows the traceback. Everything printed goes through
    :func:`~gatesearch.search.system.redact.scrub` (the passwords of the URLs given, and of the
    environment's PGPASSWORD and MLFLOW_TRACKING_PASSWORD)."""
    from gatesearch.search.system.redact import remember

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

    root = Path(__file__).resolve().parents[2]  # search/ui/ -> the folder holding our packages
    ours = tuple(str(root / d) + os.sep for d in ("models", "objectives", "search", "spaces", "gatesearch"))
    for f in reversed(traceback.extract_tb(exc.__traceback__)):
        if "site-packages" in f.filename or f.filename.startswith("<"):
            continue
        return "" if f.filename.startswith(ours) else f"{f.filename}:{f.lineno}"
    return ""


if __name__ == "__main__":
    sys.exit(main())
