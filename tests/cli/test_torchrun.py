"""`python -m spikeinterface_deepsort.cli.torchrun`: refused outside torchrun, and bad settings refused
before a process group is joined. A real two-process run is in tests/learning/test_distributed.py."""

import pytest
import torch

from spikeinterface_deepsort.cli.torchrun import main
from spikeinterface_deepsort.errors import ParameterError


def test_without_torchrun_it_says_how_to_launch(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "rec"), "--output", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "launch with torchrun" in err and "torchrun --nproc_per_node=2 -m spikeinterface_deepsort.cli.torchrun" in err
    assert not (tmp_path / "out").exists()


def test_the_output_is_required(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "rec")])
    assert exit_info.value.code == 2 and "--output" in capsys.readouterr().err


def test_bad_settings_are_refused_before_joining_the_group(monkeypatch, tmp_path):
    monkeypatch.setenv("RANK", "0")
    argv = [str(tmp_path / "rec"), "--output", str(tmp_path / "out")]
    with pytest.raises(ParameterError, match="bogus"):
        main(argv + ["--param", "bogus=1"])
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA GPU"):
            main(argv + ["--param", "device=cuda"])
    assert not torch.distributed.is_initialized() and not (tmp_path / "out").exists()
