"""A bar on a terminal, plain lines in a file or pipe, nothing with --quiet."""

import io
import logging
import subprocess
import sys

from dnnreg.progress import ProgressHandler


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _train(stream, mixed_frame, small_model, max_iter=3):
    logger = logging.getLogger("dnnreg")
    handler = ProgressHandler(stream)
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        small_model(max_iter=max_iter, verbose=1).fit(mixed_frame[["a", "b"]], mixed_frame["y"])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    return stream.getvalue()


def test_terminal_gets_one_bar_redrawn_in_place_with_eta(mixed_frame, small_model):
    out = _train(Terminal(), mixed_frame, small_model)
    assert out.count("\r") == 3 and out.count("\n") == 1 and out.endswith("\n")
    last = out.split("\r")[-1]
    assert "epoch 3/3" in last and "ETA 0s" in last and "val_rmse" in last and "█" * 24 in last


def test_a_file_or_pipe_gets_plain_lines(mixed_frame, small_model):
    out = _train(io.StringIO(), mixed_frame, small_model)
    lines = out.strip().splitlines()
    assert len(lines) == 3 and "\r" not in out and "█" not in out
    assert lines[0].startswith("epoch    1/3")


def test_quiet_prints_nothing_on_stderr(tmp_path, mixed_frame):
    mixed_frame.to_csv(tmp_path / "t.csv", index=False)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dnnreg",
            "--quiet",
            "train",
            str(tmp_path / "t.csv"),
            "--target",
            "y",
            "--out",
            str(tmp_path / "r"),
            "--set",
            "max_iter=2",
            "--set",
            "hidden_layer_sizes=8",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and proc.stderr == ""
