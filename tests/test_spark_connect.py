"""Spark Connect (``-p spark_master sc://host:port``): the pyspark client talks to a server in another JVM,
as to a cluster's (tests/spark_connect.py starts one, in Moscow time). The churn notebook gives the numbers it
gives on CSV; the CLV log's summaries and the payoff panel's analysis equal the in-memory ones (everything after
them is the same code; the survey's customer query is the one tested in local mode, tests/test_spark.py); a
master nobody answers at, or that is no master, is refused; a token never shows.

Marked ``spark``; ``make test`` fetches the server's jars and runs it.
"""

from __future__ import annotations

import pandas as pd
import pytest

from cxresearch.errors import ParameterError
from cxresearch.runner import RunSpec, run_notebook
from tests.spark_connect import running, server_jars
from tests.test_databases import NOTEBOOK_TABLES, csv_run, payoff_parameters, same_results
from tests.test_spark import folder, world  # noqa: F401

pytest.importorskip("pyspark")
pytest.importorskip("grpc")
pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    jars = server_jars()
    if jars is None:
        pytest.skip("no Spark Connect server here: `make test` fetches its jars into the venv")
    with running(jars, tmp_path_factory.mktemp("connect") / "server.log") as url:
        yield url


def test_a_connect_session_reads_times_in_utc_on_a_server_in_moscow(master):
    from cxresearch import engine

    session = engine.spark(master)._session
    assert type(session).__module__ == "pyspark.sql.connect.session"
    assert session.conf.get("spark.sql.session.timeZone") == "UTC"
    assert engine.spark(master)._session is session  # one session per server


@pytest.fixture(scope="module")
def parquet(world, folder, tmp_path_factory):  # noqa: F811
    """The world's tables as Parquet (microsecond times); the log as monthly files."""
    root, paths = tmp_path_factory.mktemp("parquet"), {"transactions": str(folder)}
    for name in ("customers", "complaints", "loyalty_panel"):
        df = pd.read_csv(world[name], dtype={"customer_id": str, "month": str})
        for col in ("signup_date", "churn_date", "opened_at"):
            if col in df:
                df[col] = pd.to_datetime(df[col])
        df.to_parquet(root / f"{name}.parquet", index=False, coerce_timestamps="us")
        paths[name] = str(root / f"{name}.parquet")
    return paths


def test_connect_gives_the_in_memory_clv_and_panel_inputs(world, folder, master, tmp_path):  # noqa: F811
    """The CLV log's summaries and the payoff panel's analysis (the churn notebook runs whole below)."""
    from cxresearch import payoff
    from tests.test_engine_churn_payoff import assert_same_panel_analysis, panel_setup
    from tests.test_spark import assert_same_clv_inputs

    assert_same_clv_inputs(world, folder, master, engines=("spark",))
    panel = pd.read_csv(world["loyalty_panel"], dtype={"customer_id": str, "month": str})
    panel.to_parquet(tmp_path / "panel.parquet", index=False)
    fx = {e: payoff.analyse(panel_setup(world, tmp_path / "panel.parquet", e, spark_master=master), n_boot=20)
          for e in ("pandas", "spark")}
    assert_same_panel_analysis(fx["spark"], fx["pandas"])


@pytest.mark.slow
@pytest.mark.parametrize("notebook,tables,extra", [n for n in NOTEBOOK_TABLES if n[0] == "churn_survival"])
def test_the_notebooks_give_the_csv_numbers_through_spark_connect(world, parquet, master, tmp_path,  # noqa: F811
                                                                   tmp_path_factory, notebook, tables, extra):
    extra = payoff_parameters(world) if extra is None else extra
    runs = {"csv": csv_run(notebook, {**{p: str(world[t]) for p, t in tables.items()}, **extra}, tmp_path_factory)}
    paths = {p: str(world[t]) if t == "loyalty_members" else parquet[t] for p, t in tables.items()}
    runs["connect"] = run_notebook(RunSpec(notebook, parameters={**paths, **extra, "engine": "spark",
                                                                 "spark_master": master}), tmp_path / "connect")
    assert runs["connect"]["status"] == "ok", runs["connect"].get("error")
    same_results(runs["connect"], runs["csv"])
    assert runs["connect"]["parameters"]["spark_master"] == master


def test_a_master_nobody_answers_at_is_refused_at_once(world, parquet, tmp_path):  # noqa: F811
    from tests.spark_connect import _free_port

    parameters = {"data_path": str(world["loyalty_members"]), "panel_path": parquet["loyalty_panel"],
                  "engine": "spark", **payoff_parameters(world)}
    url = f"sc://127.0.0.1:{_free_port()}"
    result = run_notebook(RunSpec("loyalty_payoff", parameters={**parameters, "spark_master": url}),
                          tmp_path / "down")
    assert result["status"] == "failed" and result["error"]["ename"] == "ParameterError"
    assert f"spark_master '{url}': nothing answers at 127.0.0.1" in result["error"]["evalue"]
    for bad in ("lokal[2]", "local[two]", "sc:/host:15002"):
        with pytest.raises(ParameterError, match="is not a Spark master; use one of local, local\\[4\\]"):
            run_notebook(RunSpec("loyalty_payoff", parameters={**parameters, "spark_master": bad}), tmp_path / "x")


def test_a_spark_connect_token_stays_out_of_parameters_and_messages(monkeypatch):
    """Spark Connect takes its token in the URL (sc://host:443/;token=...): the runner passes it to the kernel
    out of band, as database passwords, and messages never show it."""
    from cxresearch import engine
    from cxresearch.params import check_master
    from cxresearch.urls import PASSWORDS_ENV, passwords_env, stash_passwords, with_token

    params, secrets = stash_passwords({"spark_master": "sc://cluster:443/;token=s3cret;user_id=ann", "seed": 1})
    assert params == {"spark_master": "sc://cluster:443/;user_id=ann", "seed": 1}
    assert secrets == {"sc://cluster:443/;user_id=ann": "s3cret"}
    monkeypatch.setenv(PASSWORDS_ENV, passwords_env(secrets))
    assert with_token(params["spark_master"]) == "sc://cluster:443/;user_id=ann;token=s3cret"
    assert with_token("sc://other:443") == "sc://other:443"
    with pytest.raises(ParameterError) as err:
        engine._answers("sc://127.0.0.1:1/;token=s3cret")
    assert "s3cret" not in str(err.value) and "nothing answers at 127.0.0.1:1" in str(err.value)
    with pytest.raises(ParameterError) as err:
        check_master("sc:/cluster/;token=s3cret")
    assert "s3cret" not in str(err.value)
    for fine in ("local-cluster[2,1,1024]", "local[*,3]", "spark://h1:7077,h2:7077", "k8s://https://h:6443"):
        check_master(fine)
