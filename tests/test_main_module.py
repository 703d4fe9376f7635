"""``python -m gankit`` runs the same CLI as the ``gankit`` command (the benchmarks call it so)."""

import subprocess
import sys


def test_python_dash_m_gankit_is_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "gankit", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("gankit ")
    bad = subprocess.run([sys.executable, "-m", "gankit", "sample"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
