"""Resolves Kafka, Kafka Connect and the Debezium connector from Maven Central (stack/maven/pom.xml)
into a git-ignored folder, once: a marker keyed by the pom's hash skips the work after."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from stack.processes import StackError

POM = Path(__file__).resolve().parent / "maven" / "pom.xml"
# profile -> sub-folder of the jars folder
PROFILES = {
    "kafka": "lib/kafka",
    "debezium-postgres": "plugins/debezium-connector-postgres",
}
OPTIONAL_PROFILES = {"debezium-jdbc": "plugins/debezium-connector-jdbc"}


def kafka_classpath(jars_dir: Path) -> str:
    return str(jars_dir / "lib" / "kafka" / "*")  # the JVM expands the wildcard


def plugins_dir(jars_dir: Path) -> Path:
    return jars_dir / "plugins"


def _marker(jars_dir: Path) -> Path:
    return jars_dir / ".resolved"


def _pom_hash(profiles: dict[str, str]) -> str:
    return hashlib.sha256(POM.read_bytes() + ",".join(sorted(profiles)).encode()).hexdigest()


def resolve(jars_dir: Path, with_jdbc_sink: bool = False, log=print) -> None:
    profiles = dict(PROFILES, **(OPTIONAL_PROFILES if with_jdbc_sink else {}))
    marker = _marker(jars_dir)
    wanted = _pom_hash(profiles)
    if marker.exists() and marker.read_text().strip() in (wanted, _pom_hash(dict(PROFILES, **OPTIONAL_PROFILES))):
        return
    if shutil.which("mvn") is None:
        raise StackError("Maven (mvn) not found; it resolves the Kafka and Debezium jars. "
                         "Install it: sudo apt-get install -y maven")
    if shutil.which("java") is None:
        raise StackError("Java not found; Kafka 4 and Debezium 3 need Java 17+. "
                         "Install it: sudo apt-get install -y openjdk-17-jre-headless")
    for profile, sub in profiles.items():
        out = jars_dir / sub
        shutil.rmtree(out, ignore_errors=True)  # copy-dependencies never removes stale jars
        log(f"resolving {profile} jars from Maven Central into {out}")
        res = subprocess.run(
            ["mvn", "-B", "-q", "-f", str(POM), "-P", profile, "dependency:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={out}"],
            capture_output=True, text=True,
        )
        if res.returncode != 0:
            raise StackError(f"mvn could not resolve the {profile} jars:\n{res.stdout[-3000:]}{res.stderr[-3000:]}")
    marker.write_text(wanted + "\n")
