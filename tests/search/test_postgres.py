"""The team tracking server on PostgreSQL: a real PostgreSQL server (started here, on 127.0.0.1,
its own data folder), a real ``mlflow server`` on it, and the Optuna mirror in PostgreSQL too.

Load: 4 searches of 50 trials at once against the one server (one Ray cluster drives them all),
then the same with PostgreSQL restarted mid-way under the running tracking server and then the
tracking server restarted. Checked afterwards in the databases themselves (SQL on MLflow's and
Optuna's tables, not through MLflow): every search's parent has its 50 child runs, each once and
FINISHED, every epoch's metrics are in each child's history exactly once, and each search's Optuna
study holds each trial once. Each run prints child runs/s and the searches' median and p95 time of
a tracking write (the parent's ``tracking_write_p95_s``: one trial event's writes, timed by
``Outbox.timing``) and writes them to bench/results/postgres_load.json. Also: MLflow's store used
directly on PostgreSQL (no server) through an interrupt and ``gatesearch resume``, and the
fail-fast checks of a bad database URL.

The tests that need a server are skipped, with the reason, where PostgreSQL's server programs or
psycopg are not installed (``make test`` installs both where it can)."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from gatesearch.search.system.services import ServiceUnavailable, check_optuna_storage, check_tracking_uri
from tests import harness

MISSING = harness.postgres_missing()
needs_postgres = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

SEARCHES, TRIALS, EPOCHS = 4, 50, 4

FUNCTION = '''\
"""Metrics computed, not trained: the load is the tracking, not the training."""


def train(config, report):
    for epoch in range(1, config["epochs"] + 1):
        report({"epoch": epoch, "score": config["width"] / 1000 + epoch / 100, "cost": float(config["width"])})
'''


def space(name: str) -> str:
    return f"""\
name: {name}
objective: pgload:train
metrics: {{score: max, cost: min}}
search: {{searcher: random, num_samples: {TRIALS}, max_concurrent: 2, cpus_per_trial: 0.5, dedup: false,
         front_every: 10}}
fixed: {{epochs: {EPOCHS}}}
params:
  width: {{type: int, low: 1, high: 1000}}
  lr: {{type: float, low: 1.0e-3, high: 1.0e-1, log: true}}
"""


@pytest.fixture(scope="module")
def postgres():
    pg = harness.PostgresServer().start()
    try:
        yield pg
    finally:
        pg.remove()


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    """One ``mlflow server`` on PostgreSQL for the module (it creates MLflow's schema on start)."""
    srv = harness.MlflowServer(tmp_path_factory.mktemp("mlflow"), backend_store_uri=postgres.create_database("mlflow"))
    srv.start(timeout=180)
    try:
        yield srv
    finally:
        srv.stop()


def test_a_lost_database_connection_is_retried_even_wrapped_by_optuna():
    import optuna
    import sqlalchemy

    from gatesearch.search.tracking.tracker import Tracker

    lost = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("terminating connection due to administrator "
                                                                      "command"))
    try:
        raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from lost
    except optuna.exceptions.StorageInternalError as e:
        assert Tracker.is_transient(e)  # the outbox waits for the database instead of failing the search
    assert not Tracker.is_transient(optuna.exceptions.StorageInternalError("value too long"))


@needs_postgres
def test_a_bad_database_url_fails_fast_with_the_fix(postgres, monkeypatch):
    with pytest.raises(ServiceUnavailable, match=r"expected postgresql\+psycopg://.*gatesearch\[postgres\]"):
        check_optuna_storage("mysql://u:p@127.0.0.1/x")
    with pytest.raises(ServiceUnavailable, match="the driver 'psycopg2' is not installed.*postgresql\\+psycopg"):
        check_optuna_storage(postgres.url("postgres", "postgresql+psycopg2"))
    with pytest.raises(ServiceUnavailable, match=r"createdb -h <host> -p <port> -U <user> nosuchdb"):
        check_optuna_storage(postgres.url("nosuchdb"))
    wrong = postgres.url("postgres").replace(postgres.password, "wrong")
    with pytest.raises(ServiceUnavailable, match="check the user and the password.*PGPASSWORD") as e:
        check_tracking_uri(wrong)
    assert "wrong" not in str(e.value)  # the password is never printed
    t0 = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="PostgreSQL is not usable.*start the server"):
        check_optuna_storage(f"postgresql+psycopg://u:p@127.0.0.1:{harness.free_port()}/x")
    assert time.monotonic() - t0 < 10
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    with pytest.raises(ServiceUnavailable, match=r"needs psycopg.*pip install 'gatesearch\[postgres\]'"):
        check_optuna_storage(postgres.url("postgres"))


@needs_postgres
def test_the_cli_refuses_a_missing_database_before_writing_anything(tmp_path: Path, postgres):
    (tmp_path / "pgload.py").write_text(FUNCTION)
    (tmp_path / "space.yaml").write_text(space("refused"))
    log = tmp_path / "run.log"
    proc = harness.gatesearch("run", "space.yaml", "--output-dir", "out", "--optuna-storage",
                              postgres.url("nosuchdb"), log=log)
    try:
        assert proc.wait(timeout=120) == 2, harness.tail(log)
    finally:
        harness.kill_group(proc)
    text = " ".join(log.read_text().split())
    assert "--optuna-storage" in text and "createdb" in text and "Traceback" not in text
    assert postgres.password not in text
    assert not (tmp_path / "out").exists()


@needs_postgres
def test_the_optuna_mirror_rides_out_a_database_restart(postgres):
    """The mirror's pooled connections die with the server; the next flush reconnects (checked
    before use) and writes each trial once."""
    from gatesearch.search.tracking.optuna_mirror import OptunaMirror
    from gatesearch.spaces import Float, Space

    url = postgres.create_database("optuna_mirror")
    mirror = OptunaMirror(url, "study", Space({"x": Float(0.0, 1.0)}), ["a", "b"], ["max", "min"])
    mirror.add("t1", {"x": 0.5}, {"a": 1.0, "b": 2.0})
    mirror.flush()
    postgres.restart()
    mirror.add("t2", {"x": 0.25}, {"a": 2.0, "b": 3.0})
    mirror.add("t1", {"x": 0.5}, {"a": 1.0, "b": 2.0})  # known: not added twice
    mirror.flush()
    assert mirror.pending == []
    assert [t.user_attrs["gatesearch.trial_id"] for t in mirror.study.get_trials()] == ["t1", "t2"]
    rows = postgres.query("optuna_mirror", "select count(*) from trials")
    assert rows == [(2,)]


# -- the load test ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    nodes = harness.RayNodes(tmp_path_factory.mktemp("ray")).start_head(cpus=SEARCHES)
    try:
        yield nodes
    finally:
        nodes.stop()


def run_searches(tmp_path: Path, server, pg, optuna_db: str, name: str, during=None, address=None) -> dict:
    """``SEARCHES`` `gatesearch run` at once, each its own output folder and seed, all logging to
    ``server`` and mirroring to PostgreSQL database ``optuna_db``; ``during(procs)`` runs while
    they do. Returns the wall seconds from the first start to the last exit."""
    (tmp_path / "pgload.py").write_text(FUNCTION)
    (tmp_path / "space.yaml").write_text(space(name))
    marker = f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"
    key, value = marker.split("=")
    t0 = time.monotonic()
    procs = [harness.gatesearch("run", "space.yaml", "--output-dir", f"out{i}", "--seed", str(i), "--quiet",
                                "--tracking-uri", server.uri, "--optuna-storage", pg.url(optuna_db),
                                *(["--address", address] if address else []),
                                log=tmp_path / f"search{i}.log", **{key: value}) for i in range(SEARCHES)]
    try:
        if during is not None:
            during(procs)
        for p in procs:
            p.wait(timeout=900)
        wall = time.monotonic() - t0
    finally:
        for p in procs:
            harness.kill_group(p)
        harness.kill_env(marker)
    logs = [harness.tail(tmp_path / f"search{i}.log", 5000) for i in range(SEARCHES)]
    assert [p.returncode for p in procs] == [0] * SEARCHES, "\n\n".join(logs)
    assert all(f"{TRIALS} finished trials, 0 failed" in log for log in logs), "\n\n".join(logs)
    assert all("optuna-dashboard postgresql+psycopg://gatesearch:***@" in log for log in logs)
    return {"wall_s": wall}


def parents(pg, experiment: str, db: str = "mlflow") -> dict[str, str]:
    """run id -> search id of the experiment's search (parent) runs, from MLflow's tables."""
    return dict(pg.query(db, """
        select r.run_uuid, s.value from runs r
          join experiments e on e.experiment_id = r.experiment_id
          join tags role on role.run_uuid = r.run_uuid and role.key = 'gatesearch.role' and role.value = 'search'
          join tags s on s.run_uuid = r.run_uuid and s.key = 'gatesearch.search_id'
         where e.name = %s and r.status = 'FINISHED'""", experiment))


def finished_children(pg, experiment: str, db: str = "mlflow") -> dict[str, int]:
    """parent run id -> its FINISHED child runs, so far (none while the schema is being made: a
    table not there yet, or this read chosen as the victim of a deadlock with MLflow's migration)."""
    import psycopg

    try:
        return _finished_children(pg, experiment, db)
    except (psycopg.errors.UndefinedTable, psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable):
        return {}


def _finished_children(pg, experiment: str, db: str) -> dict[str, int]:
    return dict(pg.query(db, """
        select p.value, count(*) from runs r
          join experiments e on e.experiment_id = r.experiment_id
          join tags p on p.run_uuid = r.run_uuid and p.key = 'mlflow.parentRunId'
         where e.name = %s and r.status = 'FINISHED' group by p.value""", experiment))


def assert_nothing_lost(pg, experiment: str, optuna_db: str) -> dict:
    """Every invariant of the load test, read from the databases; returns the parents' metrics."""
    found = parents(pg, experiment)
    assert len(found) == SEARCHES, found
    children = pg.query("mlflow", """
        select p.value, r.run_uuid, r.status, t.value from runs r
          join tags p on p.run_uuid = r.run_uuid and p.key = 'mlflow.parentRunId'
          join tags t on t.run_uuid = r.run_uuid and t.key = 'gatesearch.trial_id'
         where p.value = any(%s)""", list(found))
    for parent in found:
        mine = [c for c in children if c[0] == parent]
        assert len(mine) == TRIALS, (parent, len(mine))  # every child present once: no duplicate run
        assert len({c[3] for c in mine}) == TRIALS  # one run per trial
        assert {c[2] for c in mine} == {"FINISHED"}
    runs = [c[1] for c in children]
    repeated = pg.query("mlflow", """
        select run_uuid, key, step, count(*) from metrics where run_uuid = any(%s)
         group by run_uuid, key, step having count(*) > 1""", runs)
    assert repeated == [], repeated[:10]  # no epoch logged twice, whatever was retried
    steps = pg.query("mlflow", """
        select run_uuid, key, array_agg(step order by step) from metrics
         where run_uuid = any(%s) and key in ('score', 'cost') group by run_uuid, key""", runs)
    assert len(steps) == 2 * len(runs)  # every child has both objectives' histories
    assert all(s[2] == list(range(1, EPOCHS + 1)) for s in steps), [s for s in steps if s[2] != [1, 2, 3, 4]][:5]
    # the Optuna mirror: one study per search, each trial once
    mirrored = dict(pg.query(optuna_db, """
        select s.study_name, count(distinct a.value_json) || '/' || count(*) from studies s
          join trials t on t.study_id = s.study_id
          join trial_user_attributes a on a.trial_id = t.trial_id and a.key = 'gatesearch.trial_id'
         group by s.study_name"""))
    assert {mirrored.get(f"{experiment}-{sid}") for sid in found.values()} == {f"{TRIALS}/{TRIALS}"}, mirrored
    metrics = {}
    for parent in found:
        metrics[parent] = dict(pg.query("mlflow", "select key, value from latest_metrics where run_uuid = %s", parent))
    return metrics


def report(name: str, wall: float, metrics: dict, extra: str = "") -> dict:
    p95 = sorted(m["tracking_write_p95_s"] for m in metrics.values())
    summary = {"test": name, "searches": SEARCHES, "trials_each": TRIALS, "epochs": EPOCHS,
               "wall_s": round(wall, 1), "child_runs_per_s": round(SEARCHES * TRIALS / wall, 2),
               "tracking_write_p95_s_per_search": [round(v, 4) for v in p95],
               "tracking_write_p50_s_per_search": sorted(round(m["tracking_write_p50_s"], 4) for m in metrics.values()),
               "tracking_writes_per_search": sorted(int(m["tracking_writes"]) for m in metrics.values()),
               "tracking_retries_per_search": sorted(int(m["tracking_retries"]) for m in metrics.values())}
    print(f"\n{name}: {json.dumps(summary)} {extra}")
    results = harness.ROOT / "bench" / "results" / "postgres_load.json"  # the latest run's numbers (not versioned)
    try:
        results.parent.mkdir(parents=True, exist_ok=True)
        known = json.loads(results.read_text()) if results.exists() else {}
        known[name] = {**summary, **(json.loads(extra) if extra else {}), "at": time.strftime("%Y-%m-%d %H:%M"),
                       "cpus": os.cpu_count(), "loadavg": [round(x, 1) for x in os.getloadavg()]}
        results.write_text(json.dumps(known, indent=1))
    except (OSError, ValueError):  # a read-only checkout: the printed line is the record
        pass
    return summary


@needs_postgres
@pytest.mark.slow
def test_four_searches_at_once_on_postgresql(tmp_path: Path, postgres, server, ray_cluster):
    optuna_db = "optuna_load"
    postgres.create_database(optuna_db)
    wall = run_searches(tmp_path, server, postgres, optuna_db, "pgload", address=ray_cluster.address)["wall_s"]
    metrics = assert_nothing_lost(postgres, "pgload", optuna_db)
    report("load", wall, metrics)
    assert all(m["tracking_retries"] == 0 for m in metrics.values())  # nothing went wrong to retry


@needs_postgres
@pytest.mark.slow
def test_four_searches_ride_out_a_restart_of_the_server_and_the_database(tmp_path: Path, postgres, server,
                                                                         ray_cluster):
    optuna_db = "optuna_restart"
    postgres.create_database(optuna_db)
    restarted = {}

    def restart_mid_way(procs):
        def every_search_under_way():
            ended = [i for i, p in enumerate(procs) if p.poll() is not None]
            assert not ended, "\n\n".join(harness.tail(tmp_path / f"search{i}.log") for i in ended)
            done = finished_children(postgres, "pgrestart")
            return len(done) == SEARCHES and min(done.values()) >= 5 and sum(done.values()) >= SEARCHES * TRIALS // 4

        harness.wait_for(every_search_under_way, 600, "every search a quarter of the way", procs[0],
                         tmp_path / "search0.log")
        restarted["finished_at_database_restart"] = sum(finished_children(postgres, "pgrestart").values())
        t0 = time.monotonic()
        postgres.restart()  # under the running tracking server (its pool and the mirror's go stale) ...
        restarted["database_down_s"] = time.monotonic() - t0
        time.sleep(3)
        restarted["finished_at_server_restart"] = sum(finished_children(postgres, "pgrestart").values())
        t0 = time.monotonic()
        server.stop()  # ... then the tracking server itself
        server.start(timeout=180)
        restarted["server_down_s"] = time.monotonic() - t0

    wall = run_searches(tmp_path, server, postgres, optuna_db, "pgrestart", during=restart_mid_way,
                        address=ray_cluster.address)["wall_s"]
    assert restarted["finished_at_server_restart"] < SEARCHES * TRIALS  # both restarts came before the end
    metrics = assert_nothing_lost(postgres, "pgrestart", optuna_db)
    report("restart", wall, metrics, extra=json.dumps(restarted))
    assert all(m["tracking_retries"] > 0 for m in metrics.values())  # every search felt the outage


SLOW_FUNCTION = '''\
import time


def train(config, report):
    for epoch in range(1, config["epochs"] + 1):
        time.sleep(0.5)
        report({"epoch": epoch, "score": config["width"] / 1000 + epoch / 100, "cost": float(config["width"])})
'''


def _leaks(postgres, secret: str, folders: list[Path], dbs: list[str], texts: list[str]) -> list[str]:
    """Every place ``secret`` (raw or URL-encoded) is found: files under ``folders``, any text
    column of the databases ``dbs`` (MLflow's params, tags, descriptions...; Optuna's tables), and
    ``texts`` (what was printed)."""
    from urllib.parse import quote

    forms = {secret, quote(secret, safe=""), quote(secret)}
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{path}: {f!r}" for f in forms if f.encode() in data]
    for db in dbs:
        columns = postgres.query(db, """select table_name, column_name from information_schema.columns
                                         where table_schema = 'public' and data_type in ('text', 'character varying')""")
        for table, column in columns:
            rows = postgres.query(db, f'select count(*) from "{table}" where ' +
                                  " or ".join(f'"{column}" like %s' for _ in forms), *[f"%{f}%" for f in forms])
            if rows[0][0]:
                found.append(f"{db}.{table}.{column}: {rows[0][0]} rows")
    found += [f"printed: {t[:80]!r}" for t in texts if any(f in t for f in forms)]
    return found


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
@needs_postgres
def test_a_search_on_postgresql_without_a_server_keeps_its_stores_through_resume(tmp_path: Path, postgres,
                                                                                  ray_cluster):
    """MLflow's store used directly on PostgreSQL (no tracking server) and the mirror there too, the
    URLs given with a password that holds a '/': interrupted mid-search, ``gatesearch resume`` (given
    neither URL: the password from PGPASSWORD) finishes it in the same database and study, each trial
    once; ``extend`` adds a trial; a warm-started search reads it. Then the password is nowhere: not
    in any file under the output folders, not in MLflow's or Optuna's tables, not in anything printed."""
    import signal

    tracking, optuna_url = postgres.create_database("mlflow_direct"), postgres.create_database("optuna_resume")
    (tmp_path / "pgload.py").write_text(SLOW_FUNCTION)
    (tmp_path / "space.yaml").write_text(space("direct").replace(f"num_samples: {TRIALS}", "num_samples: 6"))
    marker = f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"
    key, value = marker.split("=")
    log = tmp_path / "run.log"
    proc = harness.gatesearch("run", "space.yaml", "--output-dir", "out", "--tracking-uri", tracking,
                              "--optuna-storage", optuna_url, "--address", ray_cluster.address, log=log,
                              **{key: value})
    try:
        harness.wait_for(lambda: sum(finished_children(postgres, "direct", "mlflow_direct").values()) >= 2, 300,
                         "two finished trials", proc, log)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=120) == 130, harness.tail(log)
    finally:
        harness.kill_env(marker)
    first = " ".join(log.read_text().split())
    assert "warning: --tracking-uri carries a password" in first and "--optuna-storage carries a password" in first
    # the manifest keeps no password: resume without one in the environment says where it comes from
    refused = harness.gatesearch("resume", "out", log=tmp_path / "refused.log", PGPASSWORD=None)
    assert refused.wait(timeout=120) == 2
    assert "PGPASSWORD, ~/.pgpass" in " ".join((tmp_path / "refused.log").read_text().split())
    with_env = {"PGPASSWORD": postgres.password}
    text = harness.gatesearch_ok("resume", "out", log=tmp_path / "resume.log", env=with_env)
    assert "6 finished trials, 0 failed" in text
    assert f"optuna-dashboard postgresql+psycopg://gatesearch@127.0.0.1:{postgres.port}/optuna_resume" in text
    assert not (tmp_path / "out" / "optuna.db").exists() and not (tmp_path / "out" / "mlflow.db").exists()
    [(parent, sid)] = parents(postgres, "direct", "mlflow_direct").items()
    statuses = postgres.query("mlflow_direct", """
        select r.status, count(*) from runs r join tags p on p.run_uuid = r.run_uuid and p.key = 'mlflow.parentRunId'
         where p.value = %s group by r.status""", parent)
    assert dict(statuses).get("FINISHED") == 6, statuses
    mirrored = postgres.query("optuna_resume", """
        select count(*), count(distinct a.value_json) from studies s join trials t on t.study_id = s.study_id
          join trial_user_attributes a on a.trial_id = t.trial_id and a.key = 'gatesearch.trial_id'
         where s.study_name = %s""", f"direct-{sid}")
    assert mirrored == [(6, 6)]
    extended = harness.gatesearch_ok("extend", "out", "-n", "1", log=tmp_path / "extend.log", env=with_env)
    assert "7 finished trials, 0 failed" in extended
    [search_dir] = [m.parent for m in (tmp_path / "out" / "ray").glob("*/gatesearch.json")]
    warm = harness.gatesearch_ok("run", "space.yaml", "--output-dir", "out2", "-n", "1", "--tracking-uri", tracking,
                                 "--warm-start", str(search_dir), "--address", ray_cluster.address,
                                 log=tmp_path / "warm.log")
    assert f"warm start from search run {parent}: 7 finished trials told to the searcher" in " ".join(warm.split())
    probe = tmp_path / "probe"  # the search itself finds what it looks for
    probe.mkdir()
    (probe / "f").write_text(f"x{postgres.password}x")
    assert _leaks(postgres, postgres.password, [probe], [], [f"at {postgres.password}"]) != []
    printed = [(tmp_path / n).read_text() for n in ("run.log", "refused.log", "resume.log", "extend.log", "warm.log")]
    leaks = _leaks(postgres, postgres.password, [tmp_path / "out", tmp_path / "out2"],
                   ["mlflow_direct", "optuna_resume"], printed)
    assert not leaks, leaks
