"""``nel sandbox build-image``: the docker sandbox's Python image, built locally.

Nothing is pulled from a registry. The image is a minimal Debian root made by
``debootstrap --variant=minbase --include=python3`` from the Debian mirror that apt
already uses here (or ``--mirror``), with apt's caches removed, imported into the engine
with ``docker import`` (through the SDK). It holds Python 3 with its full standard
library, a shell and coreutils: all that HumanEval-style verification needs. Build it
once per engine (~40 s on 2 cores); ``--rebuild`` replaces it.

Needs root (debootstrap) and the ``debootstrap`` package (``apt-get install -y
debootstrap``); the engine is the one ``DOCKER_HOST`` names.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from pytest_nel.sandboxes.docker import (
    DEFAULT_IMAGE,
    LABEL,
    client,
    engine_address,
    reachable,
)

__all__ = ["add_sandbox_parser", "apt_mirror", "build_python_image", "run_sandbox"]

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SUITE = "bookworm"
CLEANUP = ("var/cache/apt/archives", "var/lib/apt/lists", "var/log")


class ImageBuildError(RuntimeError):
    """The image could not be built; the message says why and what to do."""


def apt_mirror(sources: Sequence[Path] | None = None) -> str:
    """The Debian mirror apt uses here (deb822 ``URIs:`` or ``deb URL suite``)."""
    if sources is None:
        listed = Path("/etc/apt/sources.list.d")
        sources = [Path("/etc/apt/sources.list")]
        if listed.is_dir():
            sources += sorted(listed.iterdir())
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            match = re.match(r"^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", line)
            if match and "security" not in match.group(1):
                return match.group(1).rstrip("/")
    return DEFAULT_MIRROR


def build_python_image(
    tag: str = DEFAULT_IMAGE,
    *,
    suite: str = DEFAULT_SUITE,
    mirror: str | None = None,
    packages: Sequence[str] = ("python3",),
    log: Path | None = None,
) -> str:
    """Build ``tag`` from a debootstrapped Debian root; returns the image id.

    Raises:
        ImageBuildError: Not root, debootstrap missing or failing, or the engine
            refusing the import.
    """
    if os.geteuid() != 0:
        raise ImageBuildError("building the image needs root (debootstrap)")
    if shutil.which("debootstrap") is None:
        raise ImageBuildError(
            "debootstrap is not installed: apt-get install -y debootstrap"
        )
    engine = client()
    mirror = mirror or apt_mirror()
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    with tempfile.TemporaryDirectory(prefix="nel-image-") as work:
        root = Path(work) / "root"
        command = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(packages)}",
            suite,
            str(root),
            mirror,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if log is not None:
            log.write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            raise ImageBuildError(
                f"debootstrap {suite} from {mirror} failed "
                f"(exit {done.returncode}):\n{tail}"
            )
        for folder in CLEANUP:
            for entry in (root / folder).glob("*"):
                if entry.is_file() or entry.is_symlink():
                    entry.unlink()
                else:
                    shutil.rmtree(entry, ignore_errors=True)
        archive = Path(work) / "root.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(archive), "."], check=True)
        changes = [
            f"LABEL {LABEL}.image=python {LABEL}.suite={suite}",
            "ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8",
            'CMD ["python3"]',
        ]
        try:
            engine.api.import_image_from_file(
                str(archive), repository=repository, tag=version, changes=changes
            )
            image = engine.images.get(tag)
        except Exception as exc:  # noqa: BLE001 - any engine failure, reported as one
            raise ImageBuildError(
                f"the engine at {engine_address()} refused the import: {exc}"
            ) from exc
    return str(image.id)


# --------------------------------------------------------------------------- CLI


def add_sandbox_parser(parser: argparse.ArgumentParser) -> None:
    """``nel sandbox build-image`` and its options."""
    sub = parser.add_subparsers(dest="sandbox_command", required=True)
    build = sub.add_parser(
        "build-image",
        help="build the docker sandbox's Python image locally (debootstrap)",
    )
    build.add_argument("--tag", default=DEFAULT_IMAGE, help="image name:tag")
    build.add_argument("--suite", default=DEFAULT_SUITE, help="Debian release")
    build.add_argument(
        "--mirror", help="Debian mirror (default: the one apt uses here)"
    )
    build.add_argument(
        "--package",
        action="append",
        default=[],
        help="another Debian package to include (repeatable)",
    )
    build.add_argument(
        "--rebuild", action="store_true", help="replace the image if it exists"
    )


def run_sandbox(ns: argparse.Namespace) -> int:
    """Run ``nel sandbox ...``; 0 done, 1 failed."""
    from pytest_nel.exceptions import SandboxUnavailable

    try:
        problem = reachable()
        if problem is not None:
            raise OSError(problem)
        engine = client()
        engine.ping()
    except SandboxUnavailable as exc:
        print(f"nel sandbox: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - engine down: one clear line
        print(
            f"nel sandbox: no Docker engine answers at {engine_address()} ({exc}); "
            "start dockerd or set DOCKER_HOST",
            file=sys.stderr,
        )
        return 1
    if not ns.rebuild:
        try:
            image = engine.images.get(ns.tag)
        except Exception:  # noqa: BLE001 - not there: build it
            image = None
        if image is not None:
            print(
                f"{ns.tag} is already in the engine ({image.short_id}); "
                "--rebuild replaces it"
            )
            return 0
    print(f"building {ns.tag} (debootstrap {ns.suite}, about a minute)...", flush=True)
    start = time.monotonic()
    try:
        image_id = build_python_image(
            ns.tag,
            suite=ns.suite,
            mirror=ns.mirror,
            packages=["python3", *ns.package],
        )
    except Exception as exc:  # noqa: BLE001 - ImageBuildError and engine errors
        print(f"nel sandbox build-image: {exc}", file=sys.stderr)
        return 1
    print(f"built {ns.tag} ({image_id[7:19]}) in {time.monotonic() - start:.0f} s")
    return 0
