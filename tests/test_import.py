"""`import ktorch` stays light: no torch._dynamo or sympy, no native extension load."""

import subprocess
import sys


def test_import_does_not_pull_compiler_stack():
    code = (
        "import sys, ktorch\n"
        "heavy = [m for m in ('torch._dynamo', 'sympy', 'ktorch._C') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
