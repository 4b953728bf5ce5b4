#!/usr/bin/env python3
"""Maintainer script: build, check, tag, save and push the llama image through the Docker API.

Uses the docker Python SDK (``pip install -e .[publish]`` installs the locked version) against
any Docker-API engine: Docker itself, or podman's compatible service
(``podman --storage-driver vfs system service --time 0 unix:///run/llama-podman.sock``)
with ``--docker-host unix:///run/llama-podman.sock`` (or ``$DOCKER_HOST``).

    scripts/publish_image.py build  [--base IMAGE]     # Docker engines that can RUN steps
    scripts/publish_image.py check  [--image REF]      # labels, user, env, size vs pyproject
    scripts/publish_image.py tag    [--image REF] --repo ORG/llama
    scripts/publish_image.py save   [--image REF] -o llama-VERSION.tar
    scripts/publish_image.py push   --repo ORG/llama   # needs registry credentials (docker login)

``build`` sends the context through the Docker API. Docker's API build endpoint runs the
classic builder (no BuildKit secrets), so the Dockerfile is sent without its secret mount;
against podman's service ``--ca-bundle PEM`` passes a TLS-intercepting proxy's CA as the build
secret instead (podman's ``secrets`` build parameter). On VMs with hybrid cgroups podman needs
runc (see containers/README.md).

Without a Docker engine that can run build steps (e.g. on the VMs where only buildah's
chroot isolation works), build with scripts/build_image.sh and use check/tag/save/push here on
the image it made (podman's service sees buildah's images when both use the same storage).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REPO = "llama-multimessenger/llama"  # Docker Hub org/name that OSG's list syncs
MAX_IMAGE_BYTES = 1_500_000_000

CONTEXT_FILES = ["pyproject.toml", "README.md", "containers/Dockerfile",
                 "containers/requirements.lock", "containers/build-requirements.lock",
                 "containers/llama_container_env.py", "containers/llama-container-env.pth"]


def version() -> str:
    with open(REPO / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["version"]


def client(host: str | None):
    import docker

    return docker.DockerClient(base_url=host) if host else docker.from_env()


SECRET_NAME = ".build-secret-ca_bundle.pem"


def classic_dockerfile() -> bytes:
    """containers/Dockerfile without the BuildKit-only secret mount.

    Docker's API build endpoint runs the classic builder, which rejects ``RUN --mount``; the
    RUN step then simply finds no /run/secrets/ca_bundle and uses the image's CA store (right
    wherever no proxy intercepts TLS).
    """
    text = (REPO / "containers" / "Dockerfile").read_text()
    return text.replace("RUN --mount=type=secret,id=ca_bundle \\\n", "RUN \\\n").encode()


def context_tar(ca_bundle: str | None = None, classic: bool = False) -> io.BytesIO:
    """The build context as a tar: only what the Dockerfile copies (+ the secret for podman)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        if ca_bundle:
            tar.add(ca_bundle, arcname=SECRET_NAME)
        for name in CONTEXT_FILES:
            if classic and name == "containers/Dockerfile":
                data = classic_dockerfile()
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
                tar.addfile(info, io.BytesIO(data))
                continue
            tar.add(REPO / name, arcname=name)
        for path in sorted((REPO / "llama").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                tar.add(path, arcname=str(path.relative_to(REPO)))
    buf.seek(0)
    return buf


def podman_build_with_secret(cli, tag: str, buildargs: dict, ca_bundle: str):
    """POST /build with the build secret ``ca_bundle`` (a TLS-intercepting proxy's CA).

    The Docker API has no build secrets (Docker's BuildKit takes them through its session
    protocol, which the SDK does not speak); podman's compatible service accepts
    ``secrets=["id=...,src=FILE"]`` as a query parameter, FILE being a file of the uploaded
    context that the engine moves out of the context before the build (podman-remote's way),
    so it is never in a layer. The SDK's low-level client sends the request, so TLS/auth/socket
    handling stay the SDK's.
    """
    api = cli.api
    params = {"t": tag, "dockerfile": "containers/Dockerfile", "rm": "1",
              "buildargs": json.dumps(buildargs),
              "secrets": json.dumps([f"id=ca_bundle,src={SECRET_NAME}"])}
    response = api._post(api._url("/build"), params=params, data=context_tar(ca_bundle),
                         headers={"Content-Type": "application/x-tar"}, stream=True,
                         timeout=None)
    return api._stream_helper(response, decode=True)


def cmd_build(args) -> int:
    cli = client(args.docker_host)
    tag = f"{args.repo}:{version()}"
    buildargs = {"VERSION": version(), "REVISION": args.revision,
                 "CREATED": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.base:
        buildargs["BASE_IMAGE"] = args.base
    start = time.time()
    if args.ca_bundle:
        stream = podman_build_with_secret(cli, tag, buildargs, args.ca_bundle)
    else:
        stream = cli.api.build(fileobj=context_tar(classic=True), custom_context=True, tag=tag,
                               dockerfile="containers/Dockerfile", buildargs=buildargs,
                               rm=True, decode=True)
    for chunk in stream:
        if "stream" in chunk:
            sys.stdout.write(chunk["stream"])
        if "error" in chunk:
            print(f"build failed: {chunk['error'].strip()}", file=sys.stderr)
            return 1
    print(f"built {tag} in {time.time() - start:.0f} s")
    return cmd_check(argparse.Namespace(**{**vars(args), "image": tag}))


def cmd_check(args) -> int:
    """Inspect the image: OCI labels agree with pyproject, non-root, env, size limit."""
    cli = client(args.docker_host)
    image = cli.images.get(args.image)
    attrs = image.attrs
    config = attrs.get("Config") or {}
    labels = config.get("Labels") or image.labels or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    problems = []
    want = {"org.opencontainers.image.version": version(),
            "org.opencontainers.image.licenses": "GPL-3.0-or-later"}
    for key, value in want.items():
        if labels.get(key) != value:
            problems.append(f"label {key}={labels.get(key)!r}, expected {value!r}")
    for key in ("org.opencontainers.image.source", "org.opencontainers.image.revision"):
        if not labels.get(key):
            problems.append(f"label {key} missing")
    if (config.get("User") or "root") in ("", "root", "0", "0:0"):
        problems.append(f"runs as root (User={config.get('User')!r})")
    if env.get("LLAMA_CONTAINER") != "1" or "/opt/llama/bin" not in env.get("PATH", ""):
        problems.append("environment lacks LLAMA_CONTAINER=1 or /opt/llama/bin on PATH")
    size = int(attrs.get("Size") or 0)
    if size > MAX_IMAGE_BYTES:
        problems.append(f"image is {size / 1e9:.2f} GB > {MAX_IMAGE_BYTES / 1e9:.1f} GB")
    report = {"id": image.id, "tags": image.tags, "size_bytes": size, "user": config.get("User"),
              "labels": {k: v for k, v in labels.items() if k.startswith("org.opencontainers")},
              "problems": problems}
    print(json.dumps(report, indent=2))
    return 1 if problems else 0


def cmd_tag(args) -> int:
    cli = client(args.docker_host)
    image = cli.images.get(args.image)
    tag = args.tag or version()
    if not image.tag(args.repo, tag=tag):
        print(f"tagging {args.image} as {args.repo}:{tag} failed", file=sys.stderr)
        return 1
    print(f"tagged {image.id} as {args.repo}:{tag}")
    return 0


def cmd_save(args) -> int:
    """Stream ``docker save`` into a file (docker-archive tar), written atomically."""
    cli = client(args.docker_host)
    image = cli.images.get(args.image)
    out = Path(args.output)
    tmp = out.with_name(f".{out.name}.part")
    size = 0
    with open(tmp, "wb") as handle:
        for chunk in image.save(chunk_size=1 << 20, named=True):
            handle.write(chunk)
            size += len(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, out)
    with tarfile.open(out) as tar:
        names = tar.getnames()
    if "manifest.json" not in names:
        print(f"{out}: not a docker archive (no manifest.json)", file=sys.stderr)
        return 1
    print(f"saved {args.image} to {out} ({size / 1e6:.0f} MB, {len(names)} members)")
    return 0


def cmd_push(args) -> int:
    cli = client(args.docker_host)
    tag = args.tag or version()
    for line in cli.images.push(args.repo, tag=tag, stream=True, decode=True):
        if "error" in line:
            print(f"push failed: {line['error']}", file=sys.stderr)
            return 1
        if "status" in line and "id" not in line:
            print(line["status"])
    print(f"pushed {args.repo}:{tag}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST"),
                   help="Docker API endpoint, e.g. unix:///run/llama-podman.sock ($DOCKER_HOST)")
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build")
    b.add_argument("--repo", default=DEFAULT_REPO)
    b.add_argument("--base", help="BASE_IMAGE build argument (default: the Dockerfile's digest)")
    b.add_argument("--revision", default=os.environ.get("GIT_COMMIT", "unknown"))
    b.add_argument("--ca-bundle", metavar="PEM",
                   help="CA bundle for the build's pip (proxy), passed as the build secret "
                   "ca_bundle; podman's Docker-compatible service only")
    c = sub.add_parser("check")
    c.add_argument("--image", default=f"localhost/llama:{version()}")
    t = sub.add_parser("tag")
    t.add_argument("--image", default=f"localhost/llama:{version()}")
    t.add_argument("--repo", default=DEFAULT_REPO)
    t.add_argument("--tag", help="default: the package version")
    s = sub.add_parser("save")
    s.add_argument("--image", default=f"localhost/llama:{version()}")
    s.add_argument("-o", "--output", required=True)
    u = sub.add_parser("push")
    u.add_argument("--repo", default=DEFAULT_REPO)
    u.add_argument("--tag", help="default: the package version")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    actions = {"build": cmd_build, "check": cmd_check, "tag": cmd_tag, "save": cmd_save,
               "push": cmd_push}
    try:
        return actions[args.action](args)
    except Exception as err:  # one line for the maintainer, not a traceback
        print(f"publish_image {args.action}: {err.__class__.__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
