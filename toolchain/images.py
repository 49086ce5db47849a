"""The listener and runner images built without a Docker daemon (``make image``, the image tier).

    python -m toolchain.images listener [--tag TAG]          # the repository's Dockerfile
    python -m toolchain.images runner [--tag TAG] [--from SOURCE] [--sha256 HEX]
    python -m toolchain.images push IMAGE DESTINATION         # e.g. docker://ghcr.io/acme/x:1.0

buildah builds the Dockerfiles as they are (``--isolation chroot``: no daemon, no nested
containers) on a Python base image made from Debian's packages with mmdebstrap, so no container
registry is needed; ``--python-image python:3.11-slim-bookworm`` uses that image instead. Images
live in a store of their own under ``~/.cache/gha-scalesets/images`` (``GHA_IMAGE_HOME``), with
the base image, so a second build takes seconds; ``push`` copies one out (``buildah push``
destinations: ``docker://``, ``oci-archive:``, ``docker-daemon:``, ...). The builds use the
host's CA bundle, so a TLS-inspecting proxy the host trusts works for pip.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gha_scalesets import __version__

ROOT = Path(__file__).resolve().parents[1]
RUNNER_CONTEXT = ROOT / "images" / "runner"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# The Python base stands in for the Dockerfiles' default python:3.11-slim-bookworm: same Debian
# release and Python minor, with `python` on PATH.
BASE_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
LISTENER_TAG = f"localhost/gha-scalesets-listener:{__version__}"
RUNNER_TAG = f"localhost/gha-scalesets-runner:{__version__}"
_TOOLS = {"buildah": "buildah", "mmdebstrap": "mmdebstrap"}  # command -> Debian package


class ImageError(RuntimeError):
    """A missing tool or a failed build; the message says what to do."""


class BuildFailed(ImageError):
    """``buildah bud`` failed; ``log`` holds its whole output."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


def say(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


def home() -> Path:
    default = Path.home() / ".cache" / "gha-scalesets" / "images"
    return Path(os.environ.get("GHA_IMAGE_HOME", default))


def require_tools() -> None:
    """buildah and mmdebstrap on PATH; installed with apt-get when missing and possible."""
    missing = sorted(package for tool, package in _TOOLS.items() if shutil.which(tool) is None)
    if not missing:
        return
    apt = shutil.which("apt-get")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if apt is None or (sudo and shutil.which("sudo") is None):
        raise ImageError(
            f"{' and '.join(missing)} not found: install them (Debian/Ubuntu: 'sudo apt-get"
            f" install {' '.join(missing)}') and run again"
        )
    say(f"apt-get install {' '.join(missing)} ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        [*sudo, apt, "update", "-qq"],
        [*sudo, apt, "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ImageError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def ca_volumes() -> list[str]:
    """The host's CA bundle mounted over the image's while commands run (a build's RUN steps):
    pip, apt and curl then trust what the host trusts, a TLS-inspecting proxy included. The
    bundle never becomes part of an image."""
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return [f"{candidate}:/etc/ssl/certs/ca-certificates.crt:ro"]
    return []


@dataclass(frozen=True)
class Buildah:
    """buildah on the project's own image store (``root``), chroot isolation, host network."""

    root: Path

    @classmethod
    def default(cls) -> Buildah:
        require_tools()
        return cls(home() / "storage")

    @property
    def run_root(self) -> Path:
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"gha-scalesets-buildah-{os.geteuid()}-{digest}"

    def command(self, *args: str) -> list[str]:
        return ["buildah", "--root", str(self.root), "--runroot", str(self.run_root), *args]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.command(*args), capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise ImageError(f"buildah {' '.join(args[:2])} failed: {done.stderr.strip()}")
        return done

    def exists(self, image: str) -> bool:
        return self("inspect", "--type", "image", image, check=False).returncode == 0

    def config(self, image: str) -> dict[str, Any]:
        """The image's OCI config (User, Entrypoint, Cmd, Env, WorkingDir, Labels, ...)."""
        inspected = json.loads(self("inspect", "--type", "image", image).stdout)
        return inspected["OCIv1"]["config"]

    def remove(self, image: str) -> None:
        self("rmi", "--force", image, check=False)

    @contextlib.contextmanager
    def container(self, image: str) -> Iterator[str]:
        """A working container of ``image``, removed afterwards."""
        name = self("from", "--pull=false", "--quiet", image).stdout.strip()
        try:
            yield name
        finally:
            self("rm", name, check=False)

    def run_command(
        self,
        container: str,
        argv: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        volumes: Sequence[str] = (),
    ) -> list[str]:
        """The ``buildah run`` command line that runs ``argv`` in ``container``."""
        options = ["--isolation", "chroot", "--network", "host"]
        options += ["--user", user] if user else []
        options += ["--workingdir", workdir] if workdir else []
        for key, value in (env or {}).items():
            options += ["--env", f"{key}={value}"]
        for volume in volumes:
            options += ["--volume", volume]
        return self.command("run", *options, container, "--", *argv)


def base_image(buildah: Buildah, *, refresh: bool = False) -> str:
    """The Debian Python base image; made once (about a minute) and then found in the store."""
    recipe = f"{SUITE} minbase {','.join(BASE_PACKAGES)} {' '.join(BASE_ENV)} python-symlink"
    tag = f"localhost/gha-scalesets-base:{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    if refresh:
        buildah.remove(tag)
    if buildah.exists(tag):
        return tag
    if os.geteuid() != 0 and "_CONTAINERS_USERNS_CONFIGURED" not in os.environ:
        raise ImageError(
            "making the base image mounts a container's filesystem: run as root, inside"
            " `buildah unshare`, or pass --python-image to build on a registry's Python image"
        )
    say(f"making the base image {tag} from Debian {SUITE} packages (mmdebstrap, once) ...")
    home().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home()) as scratch:
        rootfs = Path(scratch) / "rootfs.tar"
        command = [
            "mmdebstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            "--quiet",
            SUITE,
            str(rootfs),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ImageError(f"mmdebstrap failed (it needs Debian's mirror):\n{done.stderr}")
        container = buildah("from", "scratch").stdout.strip()
        try:
            mount = Path(buildah("mount", container).stdout.strip())
            subprocess.run(["tar", "-xpf", str(rootfs), "-C", str(mount)], check=True)
            (mount / "usr/bin/python").symlink_to("python3")
            buildah("umount", container)
            env = [arg for pair in BASE_ENV for arg in ("--env", pair)]
            buildah("config", *env, "--cmd", "python3", container)
            buildah("commit", "--quiet", container, tag)
        finally:
            buildah("rm", container, check=False)
    return tag


def build(
    buildah: Buildah,
    *,
    context: Path,
    tag: str,
    dockerfile: Path | None = None,
    build_args: dict[str, str] | None = None,
) -> str:
    """``buildah bud`` of ``dockerfile`` (default: the context's) into ``tag``; raises
    :class:`BuildFailed` with the build's output when it fails."""
    args = ["bud", "--isolation", "chroot", "--network", "host", "--layers", "--pull=false"]
    args += ["--force-rm"]  # no working container left behind by a failed build
    args += ["--file", str(dockerfile or context / "Dockerfile"), "--tag", tag]
    args += ["--label", f"org.opencontainers.image.version={__version__}"]
    for key, value in (build_args or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    for volume in ca_volumes():
        args += ["--volume", volume]
    done = subprocess.run(
        buildah.command(*args, str(context)),
        capture_output=True,
        text=True,
        check=False,
    )
    log = done.stdout + done.stderr
    if done.returncode != 0:
        tail = "\n".join(log.splitlines()[-25:])
        raise BuildFailed(f"building {tag} failed:\n{tail}", log)
    return tag


def build_listener(buildah: Buildah, *, tag: str, python_image: str | None = None) -> str:
    """The listener image from the repository's Dockerfile."""
    base = python_image or base_image(buildah)
    say(f"building {tag} from Dockerfile on {base} ...")
    return build(buildah, context=ROOT, tag=tag, build_args={"PYTHON_IMAGE": base})


def build_runner(
    buildah: Buildah,
    *,
    tag: str,
    source: str | None = None,
    sha256: str | None = None,
    context: Path = RUNNER_CONTEXT,
    base: str | None = None,
) -> str:
    """The ECS runner image from ``context`` (images/runner); ``source`` is where its
    Dockerfile takes the actions runner from (a URL, or a directory of the context)."""
    build_args = {"BASE_IMAGE": base or base_image(buildah)}
    if source:
        build_args["RUNNER_FROM"] = source
    if sha256:
        build_args["RUNNER_SHA256"] = sha256
    say(f"building {tag} from {context} ...")
    return build(buildah, context=context, tag=tag, build_args=build_args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m toolchain.images",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--refresh-base", action="store_true", help="make the Debian base image again (updates)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listener = commands.add_parser("listener", help="build the listener image (Dockerfile)")
    listener.add_argument("--tag", default=LISTENER_TAG, help=f"default {LISTENER_TAG}")
    listener.add_argument(
        "--python-image", help="a Python base image to build on instead of the Debian-made one"
    )
    runner = commands.add_parser("runner", help="build the ECS runner image (images/runner)")
    runner.add_argument("--tag", default=RUNNER_TAG, help=f"default {RUNNER_TAG}")
    runner.add_argument(
        "--from",
        dest="source",
        help="where to take the actions runner from: a mirror URL, or a directory of"
        " images/runner holding the tarball (default: GitHub's releases)",
    )
    runner.add_argument("--sha256", help="the tarball's SHA-256 when not the pinned release's")
    runner.add_argument("--base-image", help="a Debian or Ubuntu image to build on instead")
    push = commands.add_parser("push", help="copy an image out of the store (buildah push)")
    push.add_argument("image")
    push.add_argument("destination", help="docker://REGISTRY/NAME:TAG, oci-archive:FILE, ...")
    args = parser.parse_args(argv)
    try:
        buildah = Buildah.default()
        if args.refresh_base:
            base_image(buildah, refresh=True)
        if args.command == "listener":
            say(f"built {build_listener(buildah, tag=args.tag, python_image=args.python_image)}")
        elif args.command == "runner":
            built = build_runner(
                buildah,
                tag=args.tag,
                source=args.source,
                sha256=args.sha256,
                base=args.base_image,
            )
            say(f"built {built}")
        else:
            buildah("push", args.image, args.destination)
            say(f"pushed {args.image} to {args.destination}")
    except ImageError as error:
        say(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
