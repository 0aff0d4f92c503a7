"""The compose stack's images, built from stack/docker/images/* on debian:bookworm (pulled, or
made locally by stack/docker/base-image.sh where no registry answers). Kafka and Connect carry
the native stack's jars (stack/maven/pom.xml, resolved once into CDC_JARS_DIR): they are copied
into a build context beside the Dockerfile, so both stacks run the same Kafka and Debezium."""
from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from stack import jars
from stack.processes import StackError
from stack.settings import REPO_ROOT

IMAGES_DIR = REPO_ROOT / "stack" / "docker" / "images"
BASE_SCRIPT = REPO_ROOT / "stack" / "docker" / "base-image.sh"
PG_MAJOR = "15"  # Debian bookworm's, as the native stack's


def _pom_property(name: str) -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(jars.POM).getroot().find(f"m:properties/m:{name}", ns)
    if node is None or not node.text:
        raise StackError(f"{jars.POM} has no <{name}>")
    return node.text


@dataclass(frozen=True)
class Image:
    name: str          # folder under stack/docker/images
    tag: str           # what docker-compose.yml names
    jar_dirs: tuple[str, ...] = ()   # sub-folders of the jars folder copied into the context
    build_args: tuple[tuple[str, str], ...] = ()


def images() -> list[Image]:
    """In build order: connect starts FROM kafka."""
    kafka = Image("kafka", f"cdc-kafka:{_pom_property('kafka.version')}", ("lib/kafka",))
    return [
        Image("postgres", f"cdc-postgres:{PG_MAJOR}"),
        kafka,
        Image("connect", f"cdc-connect:{_pom_property('debezium.version')}", ("plugins",),
              (("KAFKA_IMAGE", kafka.tag),)),
    ]


def tags() -> dict[str, str]:
    return {i.name: i.tag for i in images()}


def present(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def _context(image: Image, jars_dir: Path, root: Path) -> Path:
    """The Dockerfile's folder plus the jars it copies; jars are hard links where possible (same
    file system), so an unchanged jar keeps the build's layer cache."""
    ctx = root / image.name
    shutil.rmtree(ctx, ignore_errors=True)
    shutil.copytree(IMAGES_DIR / image.name, ctx)
    for sub in image.jar_dirs:
        shutil.copytree(jars_dir / sub, ctx / sub, copy_function=_link_or_copy)
    return ctx


def _link_or_copy(src: str, dst: str) -> None:
    try:
        Path(dst).hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)


def build(jars_dir: Path, work_dir: Path, log=print, only_missing: bool = False) -> None:
    """Build every image (docker's layer cache makes an unchanged one a matter of seconds)."""
    todo = [i for i in images() if not (only_missing and present(i.tag))]
    if not todo:
        return
    res = subprocess.run(["bash", str(BASE_SCRIPT)], capture_output=True, text=True)
    if res.returncode != 0:
        raise StackError(f"no base image:\n{res.stderr[-3000:]}")
    jars.resolve(jars_dir, log=log)
    for image in todo:
        ctx = _context(image, jars_dir, work_dir)
        log(f"building {image.tag}")
        args = [a for k, v in image.build_args for a in ("--build-arg", f"{k}={v}")]
        # host network: apt-get reaches the mirror without a bridge (the engine may have none)
        res = subprocess.run(["docker", "build", "--network", "host", "-q", "-t", image.tag, *args, str(ctx)],
                             capture_output=True, text=True, env=_legacy_builder_env())
        shutil.rmtree(ctx, ignore_errors=True)
        if res.returncode != 0:
            raise StackError(f"building {image.tag} failed:\n{res.stdout[-3000:]}{res.stderr[-3000:]}")


def _legacy_builder_env() -> dict[str, str]:
    """BuildKit needs the buildx plugin, which Debian's engine does not ship: the classic builder
    does the same with these Dockerfiles."""
    import os

    return {**os.environ, "DOCKER_BUILDKIT": os.environ.get("DOCKER_BUILDKIT", "0")}
