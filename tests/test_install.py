"""tools/install.py: pip's settings passed on to uv."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import REPO

_spec = importlib.util.spec_from_file_location("install", REPO / "tools" / "install.py")
install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install)

LISTING = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.default-timeout='180'
global.cert='/etc/other.pem'
global.index-url='https://mirror.example/simple'
install.index-url='https://install.example/simple'
global.extra-index-url='https://a.example/simple https://b.example/simple'
download.index-url='https://download-only.example/simple'
"""


def test_each_setting_comes_from_the_section_pip_gives_precedence():
    assert install.pip_settings(LISTING) == {
        "cert": "/etc/ssl/certs/ca-certificates.crt",  # the variable over pip.conf
        "default-timeout": "180",
        "index-url": "https://install.example/simple",  # [install] over [global]; [download] unused
        "extra-index-url": "https://a.example/simple https://b.example/simple",
    }


@pytest.mark.parametrize(
    ("settings", "options", "env"),
    [
        ({}, [], {}),
        (
            install.pip_settings(LISTING),
            [
                "--default-index", "https://install.example/simple",
                "--index", "https://a.example/simple",
                "--index", "https://b.example/simple",
                "--index-strategy", "unsafe-best-match",
            ],
            {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "UV_HTTP_TIMEOUT": "180"},
        ),
        (
            {"find-links": "/no/such/folder https://wheels.example/ ."},
            ["--find-links", "https://wheels.example/", "--find-links", "."],  # pip ignores a missing folder
            {},
        ),
        ({"trusted-host": "mirror.example", "timeout": "60"}, ["--allow-insecure-host", "mirror.example"],
         {"UV_HTTP_TIMEOUT": "60"}),
    ],
)  # fmt: skip
def test_pip_settings_become_uv_options_and_variables(settings, options, env):
    assert install.uv_arguments(settings) == (options, env)
