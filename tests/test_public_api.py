"""The one public API: every name of `nyc911lib.__all__` resolves, and importing the package
chooses no engine (a notebook chooses it before importing pyspark)."""

from __future__ import annotations

import subprocess
import sys

import nyc911lib


def test_all_lists_every_exported_name_once():
    assert len(set(nyc911lib.__all__)) == len(nyc911lib.__all__)
    assert set(nyc911lib.__all__) == set(nyc911lib._MODULE_OF)


def test_every_public_name_resolves():
    missing = [name for name in nyc911lib.__all__ if getattr(nyc911lib, name, None) is None]
    assert missing == []


def test_importing_the_package_and_loading_params_choose_no_engine():
    code = (
        "import sys, nyc911lib as n9\n"
        "n9.load_params(); n9.notebook_args(a=1); n9.write_sample\n"
        "from nyc911lib import engine\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('pyspark', 'sqlframe')]\n"
        "print(engine._state.selected, sorted(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None []"
