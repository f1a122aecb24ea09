"""Install pinned requirements into the running virtualenv: every `make` install goes through here.

    .venv/bin/python tools/install.py -r requirements-lock.txt [-r ...] [--no-deps -e .]

By default uv (pinned below, put in the virtualenv by its own pip the first time) installs them:
it downloads, builds and unpacks in parallel and compiles the bytecode on every core, where pip
does one thing at a time (measured on 2 cores from a clean cache, the three locks: 56 s against
pip's 100+ s, pip building pyspark's wheel from its sdist alone). The bytecode is compiled because
every test and notebook process imports pandas, pyarrow, pyspark...: without .pyc files (and with
PYTHONDONTWRITEBYTECODE set, as on CI) each would compile them again.

uv reads none of pip's settings, so the ones pip has (`pip config list`: pip.conf files and PIP_*
variables) are passed on: index-url, extra-index-url, find-links, trusted-host, cert, timeout.
`NYC911_INSTALLER=pip` (make's `INSTALLER=pip`) installs with pip instead, with pip's own settings.
"""

from __future__ import annotations

import os
import subprocess
import sys

UV_VERSION = "0.13.9"
# pip's setting -> uv's option (repeated for each value of a setting that lists several)
UV_OPTIONS = {
    "index-url": "--default-index",
    "extra-index-url": "--index",
    "find-links": "--find-links",
    "trusted-host": "--allow-insecure-host",
}
UV_ENV = {"cert": "SSL_CERT_FILE", "timeout": "UV_HTTP_TIMEOUT", "default-timeout": "UV_HTTP_TIMEOUT"}
SECTIONS = (":env:", "install", "global")  # pip's precedence: variables, then [install], then [global]


def pip_settings(listing: str) -> dict[str, str]:
    """{setting: value} from `pip config list` lines such as `global.index-url='https://...'` or
    `:env:.find-links='/opt/wheels'`, each setting from the section pip gives precedence."""
    found: dict[str, dict[str, str]] = {}
    for line in listing.splitlines():
        name, sep, value = line.partition("=")
        section, dot, key = name.rpartition(".")
        if sep and dot and section in SECTIONS:
            found.setdefault(key, {})[section] = value.strip().strip("'\"")
    return {key: next(by[s] for s in SECTIONS if s in by) for key, by in found.items()}


def uv_arguments(settings: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """uv's options and environment for pip's `settings`."""
    options: list[str] = []
    for key, option in UV_OPTIONS.items():
        for value in settings.get(key, "").split():
            if key == "find-links" and "://" not in value and not os.path.exists(value):
                continue  # pip ignores a missing folder with a warning; uv would stop
            options += [option, value]
    if "extra-index-url" in settings:  # pip takes the best match over every index, uv the first
        options += ["--index-strategy", "unsafe-best-match"]
    env = {variable: settings[key] for key, variable in UV_ENV.items() if settings.get(key)}
    return options, env


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]


def main(args: list[str]) -> int:
    if os.environ.get("NYC911_INSTALLER", "uv") == "pip":
        return subprocess.call(_pip("install", "--quiet", *args))
    uv = os.path.join(os.path.dirname(sys.executable), "uv")
    if not os.path.exists(uv):
        status = subprocess.call(_pip("install", "--quiet", f"uv=={UV_VERSION}"))
        if status:
            return status
    listing = subprocess.run(_pip("config", "list"), capture_output=True, text=True, check=False).stdout
    options, env = uv_arguments(pip_settings(listing))
    command = [uv, "pip", "install", "--quiet", "--python", sys.executable, "--compile-bytecode", *options]
    # uv's cache and the virtualenv are often on two file systems: copy, without a warning.
    return subprocess.call([*command, *args], env={"UV_LINK_MODE": "copy", **env, **os.environ})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
