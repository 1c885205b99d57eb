"""Every command that writes, and save(): a user's directory or file is refused before any
training and left byte-identical; an earlier dnnreg output is replaced only with
--overwrite (overwrite=True); an existing file is replaced only with --overwrite."""

import json

import numpy as np
import pandas as pd
import pytest

from dnnreg import DNNClassifier, DNNRegressor, load, save
from dnnreg.cli import main

FAST = ["--set", "max_iter=2", "--set", "hidden_layer_sizes=8", "--set", "n_ensemble=1"]


def snapshot(root):
    return {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    path = tmp_path_factory.mktemp("data") / "houses.csv"
    pd.DataFrame(X, columns=["a", "b", "c"]).assign(price=X[:, 0] - X[:, 1]).to_csv(
        path, index=False
    )
    return path


@pytest.fixture(scope="module")
def run(table, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    assert (
        main(["--quiet", "train", str(table), "--target", "price", "--out", str(out)] + FAST) == 0
    )
    return out


def _tiny_demo(monkeypatch, table):
    """The demo on 80 rows and a 2-epoch network: the demo's plumbing, not its accuracy."""
    import dnnreg.tables.datasets

    monkeypatch.setattr(
        dnnreg.tables.datasets,
        "load_dataset",
        lambda name: pd.read_csv(table).rename(columns={"price": "MedHouseVal"}),
    )
    fit = DNNRegressor.fit

    def small_fit(self, X, y, **kw):
        self.set_params(max_iter=2, hidden_layer_sizes=(8,), n_ensemble=1)
        return fit(self, X, y, **kw)

    monkeypatch.setattr(DNNRegressor, "fit", small_fit)


DIR_COMMANDS = {
    "train": lambda t, out: ["train", str(t), "--target", "price", "--out", str(out), *FAST],
    "demo": lambda t, out: ["demo", "--out", str(out)],
    "compare": lambda t, out: [
        "compare",
        str(t),
        "--target",
        "price",
        "--models",
        "linear",
        "--folds",
        "2",
        "--out",
        str(out),
        *FAST,
    ],
    "learning-curve": lambda t, out: [
        "learning-curve",
        str(t),
        "--target",
        "price",
        "--models",
        "linear",
        "--repeats",
        "1",
        "--out",
        str(out),
        *FAST,
    ],
    "tune": lambda t, out: [
        "tune",
        str(t),
        "--target",
        "price",
        "--n-trials",
        "1",
        "--time-budget",
        "30",
        "--out",
        str(out),
        *FAST,
    ],
    "pretrain-study": lambda t, out: [
        "pretrain-study",
        str(t),
        "--target",
        "price",
        "--label-fractions",
        "1.0",
        "--seeds",
        "2",
        "--modes",
        "none,autoencoder",
        "--set",
        "pretrain_epochs=1",
        "--out",
        str(out),
        *FAST,
    ],
}


@pytest.fixture
def no_training(monkeypatch):
    """Any fit fails the test: a refusal must come before training starts."""

    def refuse(*a, **k):
        raise AssertionError("training started before the output path was checked")

    for cls in (DNNRegressor, DNNClassifier):
        monkeypatch.setattr(cls, "fit", refuse)


def _one_line_error(capsys, *parts):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("dnnreg: error: "), err
    for part in parts:
        assert part in err, err


@pytest.mark.parametrize("command", sorted(DIR_COMMANDS))
def test_a_users_directory_or_file_is_refused_before_training(
    command, table, tmp_path, capsys, no_training
):
    project = tmp_path / "project"
    project.mkdir()
    (project / "houses.csv").write_bytes(table.read_bytes())
    (project / "notes.md").write_text("my notes\n")
    (tmp_path / "results.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    for target, message in (
        (project, "did not write"),
        (tmp_path / "results.txt", "existing file"),
    ):
        for extra in ([], ["--overwrite"]):
            capsys.readouterr()
            assert main(["--quiet", *DIR_COMMANDS[command](table, target), *extra]) == 1
            _one_line_error(capsys, str(target), message, "choose a new path")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", sorted(DIR_COMMANDS))
def test_an_earlier_output_is_replaced_only_with_overwrite(
    command, table, tmp_path, capsys, monkeypatch
):
    _tiny_demo(monkeypatch, table)
    out = tmp_path / "out"
    argv = ["--quiet", *DIR_COMMANDS[command](table, out)]
    assert main(argv) == 0
    first = snapshot(out)
    marker = json.loads((out / ".dnnreg.json").read_text())
    assert marker["state"] == "complete"
    if command == "tune":  # its own study directory is resumed, not refused
        assert main(argv) == 0
        assert len(json.loads((out / "tune.json").read_text())["trials"]) == 2
    else:
        with monkeypatch.context() as m:
            m.setattr(DNNRegressor, "fit", lambda *a, **k: pytest.fail("trained"))
            capsys.readouterr()
            assert main(argv) == 1
        _one_line_error(capsys, str(out), "earlier dnnreg", "--overwrite")
        assert snapshot(out) == first
    (out / "stale.json").write_text("{}")  # in the manifest? no: so the replace is refused
    assert main(argv + ["--overwrite"]) == 1
    _one_line_error(capsys, "stale.json", "did not write")
    (out / "stale.json").unlink()
    assert main(argv + ["--overwrite"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing left beside it
    if command == "tune":
        assert len(json.loads((out / "tune.json").read_text())["trials"]) == 1  # afresh


FILE_COMMANDS = {
    "predict": lambda run, t, out: ["predict", str(run), str(t), "--out", str(out)],
    "export": lambda run, t, out: ["export", str(run), "--onnx", str(out)],
    "report": lambda run, t, out: ["report", str(run), "--out", str(out)],
}


@pytest.mark.parametrize("command", sorted(FILE_COMMANDS))
def test_an_existing_file_is_replaced_only_with_overwrite(command, run, table, tmp_path, capsys):
    path = tmp_path / "mine.out"
    path.write_text("my file\n")
    argv = ["--quiet", *FILE_COMMANDS[command](run, table, path)]
    assert main(argv) == 1
    _one_line_error(capsys, str(path), "already exists", "--overwrite")
    assert path.read_text() == "my file\n"
    assert main(argv + ["--overwrite"]) == 0
    assert path.read_bytes() != b"my file\n" and path.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.out"]
    (tmp_path / "dir").mkdir()
    assert (
        main(["--quiet", *FILE_COMMANDS[command](run, table, tmp_path / "dir"), "--overwrite"]) == 1
    )
    _one_line_error(capsys, "is a directory")


def test_the_report_inside_a_run_is_regenerated_but_a_users_file_there_is_not(run, capsys):
    assert main(["--quiet", "report", str(run)]) == 0
    assert main(["--quiet", "report", str(run)]) == 0  # dnnreg's own report: rewritten
    (run / "report.html").write_text("my own page, not the report")
    assert main(["--quiet", "report", str(run)]) == 1
    _one_line_error(capsys, "report.html", "not written by dnnreg")
    assert (run / "report.html").read_text() == "my own page, not the report"
    (run / "report.html").unlink()


def test_tune_refuses_a_storage_file_that_is_not_a_journal(table, tmp_path, capsys):
    data = tmp_path / "houses.csv"
    data.write_bytes(table.read_bytes())
    assert (
        main(
            [
                "--quiet",
                "tune",
                str(table),
                "--target",
                "price",
                "--n-trials",
                "1",
                "--storage",
                str(data),
                "--out",
                str(tmp_path / "t"),
                *FAST,
            ]
        )
        == 1
    )
    _one_line_error(capsys, "is not an Optuna journal")
    assert data.read_bytes() == table.read_bytes()


def test_save_follows_the_same_rules(run, table, tmp_path):
    model = load(run / "model")
    project = tmp_path / "work"
    project.mkdir()
    (project / "train.csv").write_text("a,b\n1,2\n")
    (tmp_path / "file").write_text("x")
    before = snapshot(tmp_path)
    for path in (project, tmp_path / "file"):
        with pytest.raises(FileExistsError, match="choose a new path"):
            save(model, path, overwrite=True)
    assert snapshot(tmp_path) == before
    save(model, tmp_path / "m")
    with pytest.raises(FileExistsError, match="earlier dnnreg model; pass overwrite=True"):
        save(model, tmp_path / "m")
    save(model, tmp_path / "m", overwrite=True)
    X = pd.read_csv(table).drop(columns="price")
    assert np.array_equal(load(tmp_path / "m").predict(X), model.predict(X))


def test_a_run_written_before_markers_is_recognised(run, tmp_path, capsys, table):
    """Runs of the previous release have no marker: their config.json names dnnreg."""
    import shutil

    legacy = tmp_path / "old-run"
    shutil.copytree(run, legacy)
    for marker in legacy.rglob(".dnnreg.json"):
        marker.unlink()
    argv = ["--quiet", "train", str(table), "--target", "price", "--out", str(legacy), *FAST]
    assert main(argv) == 1
    _one_line_error(capsys, "earlier dnnreg run", "--overwrite")
    assert main(argv + ["--overwrite"]) == 0
    assert (legacy / ".dnnreg.json").exists()
