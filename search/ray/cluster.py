"""The Ray runtime: start a private local instance or join a cluster, and stop it.

A private local instance binds 127.0.0.1 only, starts its processes in a session of their own (a
signal for the driver's process group must not kill Ray under a search stopping gracefully) and
leaves the driver's SIGINT/SIGTERM handlers in place (:mod:`gatesearch.search.lifecycle.interrupt`).

**Token authentication** (Ray's; https://docs.ray.io/en/latest/ray-security/token-auth.html): a Ray
cluster runs the code any client sends it, so every cluster gatesearch starts or joins should ask
for a token. The private local instance keeps Ray's default: token auth on, with Ray's local token
file ``~/.ray/auth_token`` (created here, readable by its owner only: on a shared login node every
local user can reach 127.0.0.1). A cluster (``--address``) is joined with the user's own
``RAY_AUTH_MODE`` and token (``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``): nothing here turns it
off; a token given without the mode switches the mode to ``token``. A driver the cluster refuses
gets a message that says how to pass the token.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager

import ray
import ray.exceptions

from gatesearch.search.system.services import ServiceUnavailable, check_ray_address

# TUNE_GLOBAL_CHECKPOINT_S: snapshot the experiment (trials + searcher state) every 2 s instead of
# every >= 10 s, so a killed driver loses at most ~2 s of bookkeeping (see ``resume_tuner``); for
# budgets above LARGE_SEARCH trials the snapshot (which grows with the trials) is left to Ray's
# adaptive period (>= 10 s, at most 5% of the driver's time): see ``tune_settings``.
# TUNE_DISABLE_AUTO_CALLBACK_LOGGERS: no per-trial TensorBoard/CSV files (MLflow has it all); the
# JSON logger is added back explicitly, since Ray's per-trial history is read from it.
# TUNE_PRINT_ALL_TRIAL_ERRORS: a failed trial is one line of the progress (its traceback is the
# child run's error.txt), not Ray's ~60-line log record.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AIR_NEW_OUTPUT": "0", "TUNE_MAX_PENDING_TRIALS_PG": "2", "TUNE_GLOBAL_CHECKPOINT_S": "2",
           "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_PRINT_ALL_TRIAL_ERRORS": "0"}
LARGE_SEARCH = 1000


def tune_settings(num_samples: int) -> None:
    """Every 2 s for searches up to LARGE_SEARCH trials; Ray's adaptive period above (a 10,000-trial
    snapshot takes long enough that every 2 s it would dominate the driver). Also switches off
    Tune's own SIGINT handler: :mod:`gatesearch.search.lifecycle.interrupt` handles SIGINT and SIGTERM (Tune's
    would stop the loop but leave the search looking finished) and stops Tune through
    :class:`~gatesearch.search.ray.callbacks.StopAll`."""
    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "2" if num_samples <= LARGE_SEARCH else "auto"
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    # a report without an optimised metric is EpochReports' to judge (MissingMetric: the trial fails
    # with the reason), not Ray's strict check (it raised on the driver and ended the whole search)
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"


def quiet_ray_env() -> None:
    """Ray settings for a quiet, loopback-only, local instance (set before ray.init)."""
    for k, v in RAY_ENV.items():
        os.environ.setdefault(k, v)


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to ``address``, or start a private local instance (never an existing one by accident)."""
    if ray.is_initialized():
        return
    quiet_ray_env()
    _loopback_only(not address)
    token_mode(local=not address)
    if address:
        check_ray_address(address)  # fail in seconds, not after minutes of Ray's own retries
        with _keep_signal_handlers():
            try:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            except (ConnectionError, ray.exceptions.AuthenticationError) as e:
                raise ServiceUnavailable(_refused(address, e)) from None
    else:
        local_token()
        with _start_turn(), _own_session(), _keep_signal_handlers():
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR",
                     log_to_driver=False)


@contextmanager
def _start_turn():
    """``GATESEARCH_RAY_START_LOCK=<file>``: drivers on one machine naming the same file start their
    private instances one at a time (start-up is the most CPU-hungry few seconds of a Ray instance;
    the test suite's parallel workers use it). Unset: no waiting."""
    path = os.environ.get("GATESEARCH_RAY_START_LOCK")
    if not path:
        yield
        return
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def token_mode(local: bool) -> str:
    """The driver's ``RAY_AUTH_MODE``: the user's; else ``token`` for the private local instance
    (Ray's default for a new local cluster) or when a token is given (``RAY_AUTH_TOKEN``,
    ``RAY_AUTH_TOKEN_PATH``); else unset (Ray then uses ``~/.ray/auth_token`` if it exists). Never
    ``disabled`` unless the user set it."""
    if not os.environ.get("RAY_AUTH_MODE") and (
            local or os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        os.environ["RAY_AUTH_MODE"] = "token"
        try:  # Ray reads the mode at import: refresh its config, as Ray's own token set-up does
            from ray._raylet import Config

            Config.initialize("")
        except (ImportError, AttributeError):  # another Ray layout: the mode applies from the next process
            pass
    return os.environ.get("RAY_AUTH_MODE", "")


def local_token() -> None:
    """Token mode without a token given: make sure Ray's default token file exists and is readable
    by its owner only (Ray would create it with the umask's mode)."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    path = os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    if not os.path.exists(path):
        import secrets

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    elif os.stat(path).st_uid == os.geteuid() and os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o600)


def _refused(address: str, e: Exception) -> str:
    mode = os.environ.get("RAY_AUTH_MODE", "")
    given = ("RAY_AUTH_TOKEN" if os.environ.get("RAY_AUTH_TOKEN") else
             f"RAY_AUTH_TOKEN_PATH={os.environ['RAY_AUTH_TOKEN_PATH']}" if os.environ.get("RAY_AUTH_TOKEN_PATH")
             else "Ray's default token file ~/.ray/auth_token")
    return (f"the Ray cluster at {address} did not let this driver in ({e}). If it asks for a token (its "
            f"GCS logs 'InvalidAuthToken'), pass the cluster's token: RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH="
            f"<the token file the cluster was started with> (this driver used RAY_AUTH_MODE={mode or 'unset'} and "
            f"{given}); else check that every node runs the same Ray version and that the address is the head's")


@contextmanager
def _keep_signal_handlers():
    """Ray's core worker installs its own SIGTERM handler in the driver during ``ray.init`` (it
    prints a crash dump and aborts); put the Python handlers back afterwards, so a SIGTERM while the
    search starts is handled like a Ctrl-C (the CLI and :mod:`~gatesearch.search.lifecycle.interrupt`).
    SIGTERM is blocked meanwhile (a signal that comes is delivered to our handler right after; the
    processes Ray starts unblock it, see :func:`_own_session`)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    except SystemExit as e:
        if e.code == signal.SIGTERM:  # Ray's handler during init: sys.exit(15)
            raise KeyboardInterrupt("SIGTERM") from None
        raise
    finally:
        for s, handler in previous.items():
            if handler is not None:
                signal.signal(s, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@contextmanager
def _own_session():
    """Start the private local instance's processes (GCS, raylet and, through it, the workers) in
    a session of their own, so that a signal meant for the driver's process group (``timeout``
    sends SIGTERM to the whole group, a terminal sends Ctrl-C to it) does not kill Ray under the
    driver while it stops the search gracefully (:mod:`gatesearch.search.lifecycle.interrupt`). They still
    die with the driver (Ray's fate sharing) and are stopped by ``ray.shutdown``. Ray has no
    public option for this: its process launcher (``ray._private.services.ConsolePopen``) is
    wrapped for the duration of ``ray.init``; if it is ever renamed, nothing is wrapped
    (tested: ``test_interrupt.py`` sends SIGTERM to the whole group)."""
    from ray._private import services

    original = getattr(services, "ConsolePopen", None)
    if original is None or os.name != "posix":
        yield
        return

    class _NewSession(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("start_new_session", True)
            ray_preexec = kwargs.get("preexec_fn")

            def preexec():
                if ray_preexec is not None:
                    ray_preexec()
                # the driver blocks SIGTERM while Ray starts (_keep_signal_handlers); Ray's processes
                # must not inherit that (ray.shutdown stops them with SIGTERM)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

            kwargs["preexec_fn"] = preexec
            super().__init__(*args, **kwargs)

    services.ConsolePopen = _NewSession
    try:
        yield
    finally:
        services.ConsolePopen = original


def check_resources(cpus_per_trial: float, gpus_per_trial: float, which: str = "",
                    fix: str = "lower the per-trial resources in `search:`") -> None:
    """Raise ``ValueError`` when no node of the cluster can ever hold one trial (Ray would keep
    the trial pending forever). Checked once Ray is up, before the search starts. ``which``: the
    configurations that ask for this much (per-configuration resources), for the message."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(r.get("CPU", 0) >= cpus_per_trial and r.get("GPU", 0) >= gpus_per_trial for r in nodes):
        return
    have = ", ".join(f"{r.get('CPU', 0):g} CPU/{r.get('GPU', 0):g} GPU" for r in nodes) or "no nodes"
    raise ValueError(f"cpus_per_trial={cpus_per_trial:g}, gpus_per_trial={gpus_per_trial:g}{which}: no node of the "
                     f"Ray cluster can hold one trial (nodes: {have}), so no such trial would ever start; {fix} or add a "
                     f"node that has them")


def _loopback_only(on: bool) -> None:
    """Make the private local instance bind 127.0.0.1 only (GCS, raylet, object manager, workers).

    Ray resolves 127.0.0.1 to the machine's routable address (``resolve_ip_for_localhost``)
    and binds its servers on all interfaces unless multi-node support is switched off, which
    Ray reads from RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, at import. We set the variable
    for the child processes and the already-imported constant for this one. A cluster
    connection (``address`` given) needs multi-node support, so it is switched back on.
    """
    from ray._private import ray_constants

    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0" if on else "1"
    ray_constants.ENABLE_RAY_CLUSTER = not on


def shutdown_ray() -> None:
    if ray.is_initialized():
        ray.shutdown()
