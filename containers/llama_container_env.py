"""Container start-up hook (loaded through ``llama-container-env.pth`` in the image's venv).

CVMFS images are read-only and a grid job's ``$HOME`` may not exist, so matplotlib's config
cache, astropy's config/cache and llama's own cache go under ``$TMPDIR`` (default ``/tmp``)
unless the user already chose a place. Nothing is changed when the variables are already set.
"""

import os


def _setup() -> None:
    base = os.path.join(os.environ.get("TMPDIR") or "/tmp", f"llama-{os.getuid()}")
    env = os.environ
    env.setdefault("MPLCONFIGDIR", os.path.join(base, "matplotlib"))
    env.setdefault("XDG_CACHE_HOME", os.path.join(base, "cache"))
    env.setdefault("XDG_CONFIG_HOME", os.path.join(base, "config"))
    # astropy only uses $XDG_*_HOME/astropy when that directory exists.
    for path in (env["MPLCONFIGDIR"], os.path.join(env["XDG_CACHE_HOME"], "astropy"),
                 os.path.join(env["XDG_CONFIG_HOME"], "astropy")):
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
        except OSError:
            pass


if os.environ.get("LLAMA_CONTAINER") == "1":
    _setup()
