"""ktorch.json under KTORCH_HOME and the config getters/setters."""

import json
import os
import subprocess
import sys

import pytest

import ktorch


def _run(code, env):
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_config_file_created_with_defaults(tmp_path):
    env = dict(os.environ, KTORCH_HOME=str(tmp_path / "home"))
    out = _run("import ktorch; print(ktorch.config.floatx(), ktorch.config.epsilon())", env)
    assert out == "float32 1e-07"
    stored = json.loads((tmp_path / "home" / "ktorch.json").read_text())
    assert stored == {
        "floatx": "float32",
        "epsilon": 1e-07,
        "backend": "torch",
        "image_data_format": "channels_last",
    }


def test_config_file_and_env_overrides(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "ktorch.json").write_text(
        json.dumps({"image_data_format": "channels_first", "epsilon": 1e-5})
    )
    env = dict(os.environ, KTORCH_HOME=str(home), KTORCH_FLOATX="float64")
    out = _run(
        "import ktorch.config as c; print(c.image_data_format(), c.epsilon(), c.floatx())", env
    )
    assert out == "channels_first 1e-05 float64"


def test_fallback_to_tmp_when_home_unwritable(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    blocked = tmp_path / "blocked"
    blocked.mkdir(mode=0o500)
    env = dict(os.environ, KTORCH_HOME=str(blocked / "sub"))
    assert _run("import ktorch.config as c; print(c.ktorch_home())", env).endswith(".ktorch")


def test_setters_validate():
    with pytest.raises(ValueError, match="floatx"):
        ktorch.config.set_floatx("float8")
    with pytest.raises(ValueError, match="image_data_format"):
        ktorch.config.set_image_data_format("nhwc")
    old = ktorch.config.epsilon()
    ktorch.config.set_epsilon(1e-3)
    assert ktorch.config.epsilon() == 1e-3
    ktorch.config.set_epsilon(old)


def test_enable_op_determinism(monkeypatch):
    import torch

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled()
    try:
        ktorch.config.enable_op_determinism()
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(before)
        torch.backends.cudnn.deterministic = False
