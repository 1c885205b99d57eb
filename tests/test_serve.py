"""``dnnreg serve``: a real server on a loopback port, run by another user than the one who
trained when the tests run as root, answering what the library answers, refusing bad
requests with the right status, and surviving a bounded load."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from dnnreg import DNNClassifier, DNNRegressor, save  # noqa: E402
from dnnreg.serve import RequestError, ServedModel  # noqa: E402

NOBODY = 65534


def _table(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    region = rng.choice(["north", "south"], size=n)
    y = 2 * x + np.where(region == "north", 1.0, -1.0) + 0.1 * rng.normal(size=n)
    return pd.DataFrame({"x": x, "region": region}), y


@pytest.fixture(scope="module")
def served_dir():
    """A model saved under umask 022 into a directory every user may enter (pytest's
    tmp_path is 0700), as a trained model is handed to a service account."""
    root = Path(tempfile.mkdtemp(prefix="dnnreg-serve-"))
    root.chmod(0o755)
    X, y = _table(300, 0)
    model = DNNRegressor(hidden_layer_sizes=(16,), n_ensemble=2, max_iter=5, random_state=0)
    model.fit(X, y)
    old = os.umask(0o022)
    try:
        save(model, root / "model", metadata={"target": "y"})
    finally:
        os.umask(old)
    yield model, root / "model"
    subprocess.run(["rm", "-rf", str(root)], check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(served_dir, block_torch):
    model, path = served_dir
    port = _free_port()
    code = block_torch + (
        "from dnnreg.cli import main\n"
        f"raise SystemExit(main(['serve', {str(path)!r}, '--port', '{port}', "
        "'--max-rows', '50', '--max-body-mb', '0.02']))"
    )
    as_other_user = _can_run_as(NOBODY)
    log = tempfile.TemporaryFile(mode="w+")  # a pipe nobody reads would fill and block it
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        user=NOBODY if as_other_user else None,
        cwd="/",
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"the server exited: {log.read()}")
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    yield url, model, proc, as_other_user
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def _can_run_as(uid: int) -> bool:
    """Whether this interpreter can be started as ``uid``: only root may switch users, and
    the other user must be able to reach the interpreter (a venv under /root cannot)."""
    if os.geteuid() != 0:
        return False
    try:
        return subprocess.run([sys.executable, "-c", "pass"], user=uid).returncode == 0
    except PermissionError:
        return False


def _call(url, route, body=None, *, raw=None, method=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url + route, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_the_model_files_are_readable_by_another_user(served_dir):
    _, path = served_dir
    for f in path.iterdir():
        assert f.stat().st_mode & 0o004, f"{f.name} is not world-readable"
    assert path.stat().st_mode & 0o005 == 0o005


def test_predictions_and_intervals_equal_the_library(server):
    url, model, _, as_other_user = server
    X, _ = _table(20, 1)
    records = json.loads(X.to_json(orient="records"))
    status, reply = _call(url, "/predict", {"rows": records, "interval": 0.9})
    assert status == 200
    np.testing.assert_allclose(reply["predictions"], model.predict(X), rtol=1e-5, atol=1e-6)
    lower, upper = model.predict_interval(X, 0.9)
    np.testing.assert_allclose(reply["lower"], lower, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reply["upper"], upper, rtol=1e-5, atol=1e-6)
    columns = {c: X[c].tolist() for c in X}
    status, by_columns = _call(url, "/predict", {"columns": columns})
    assert status == 200 and by_columns["predictions"] == reply["predictions"]


def test_the_server_ran_as_another_user(server):
    url, _, proc, as_other_user = server
    if not as_other_user:
        pytest.skip(
            "cannot start this interpreter as another user here (not root, or it lives "
            "where that user cannot reach); the files' modes are checked instead"
        )
    status = Path(f"/proc/{proc.pid}/status").read_text()
    assert f"Uid:\t{NOBODY}" in status


def test_health_and_metadata(server, served_dir):
    url, *_ = server
    _, path = served_dir
    assert _call(url, "/health") == (200, {"status": "ok"})
    status, meta = _call(url, "/metadata")
    assert status == 200 and meta["task"] == "regression" and meta["target"] == "y"
    assert meta["features"] == [
        {"name": "x", "kind": "numeric"},
        {"name": "region", "kind": "categorical"},
    ]
    assert meta["sha256"] == hashlib.sha256((path / "config.json").read_bytes()).hexdigest()
    assert meta["engine"] == "numpy" and meta["intervals"]["method"] == "cv+"


@pytest.mark.parametrize(
    "body, raw, status, message",
    [
        ({"rows": [{"x": 1.0}]}, None, 422, "missing column(s) ['region']"),
        ({"rows": [{"x": "a lot", "region": "north"}]}, None, 422, "column 'x' row 0"),
        ({"rows": [{"x": 1.0, "region": {"a": 1}}]}, None, 422, "column 'region' row 0"),
        ({"rows": [{"x": 1.0, "region": "north"}, {"x": 2.0}]}, None, 422, "row 1 lacks"),
        ({"rows": [{"x": 1.0, "region": "north", "z": 3}]}, None, 422, "unexpected column"),
        ({"rows": []}, None, 422, "holds no rows"),
        ({"columns": {"x": [1, 2], "region": ["north"]}}, None, 422, "same length"),
        ([1, 2], None, 422, "must be a JSON object"),
        ({"rows": [{"x": 1, "region": "n"}], "interval": 2}, None, 422, "coverage must be"),
        (None, b"", 400, "the body is empty"),
        (None, b"{not json", 400, "the body is not JSON"),
        ({"rows": [{"x": 1.0, "region": "north"}] * 51}, None, 413, "over the limit of 50"),
        (None, b" " * 30_000, 413, "over the limit"),
    ],
)
def test_bad_requests_get_the_right_status_and_message(server, body, raw, status, message):
    url, *_ = server
    got, reply = _call(url, "/predict", body, raw=raw)
    assert got == status and message in reply["detail"], reply


def test_unknown_routes_and_methods(server):
    url, *_ = server
    assert _call(url, "/nowhere")[0] == 404
    assert _call(url, "/predict", method="GET")[0] == 405


def test_a_bounded_load_loses_no_request(server):
    """2,000 one-row requests from 8 concurrent clients: every one answered correctly,
    the server healthy afterwards, one log line per request."""
    url, model, proc, _ = server
    X, _ = _table(2000, 2)
    expected = model.predict(X)
    rows = json.loads(X.to_json(orient="records"))

    def one(i):
        return _call(url, "/predict", {"rows": [rows[i]]})

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(one, range(len(rows))))
    assert all(status == 200 for status, _ in replies)
    got = np.array([reply["predictions"][0] for _, reply in replies])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert _call(url, "/health") == (200, {"status": "ok"})
    assert proc.poll() is None


def test_the_server_logs_one_line_per_request_and_never_imports_torch(served_dir, block_torch):
    """A short-lived server whose log is read back: the numpy engine ran in a process where
    torch cannot be imported, and each request left exactly one line."""
    _, path = served_dir
    port = _free_port()
    code = block_torch + (
        "from dnnreg.cli import main\n"
        f"raise SystemExit(main(['serve', {str(path)!r}, '--port', '{port}']))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    _call(url, "/predict", {"rows": [{"x": 0.5, "region": "south"}]})
    _call(url, "/predict", raw=b"nope")
    proc.terminate()
    log = proc.communicate(timeout=20)[0].splitlines()
    lines = [line for line in log if '"' in line]
    assert len(lines) == 3, log
    assert '"POST /predict" 200 1 rows' in lines[1] and '"POST /predict" 400' in lines[2]
    assert not any("Traceback" in line for line in log), log


def test_a_busy_port_is_one_line(served_dir, capsys):
    from dnnreg.cli import main

    _, path = served_dir
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", str(path), "--port", str(port)]) == 1
    assert "choose another --port" in capsys.readouterr().err


def test_a_classifier_answers_probabilities():
    """In process (no HTTP): the parsing and the reply of a classifier."""
    X, y = _table(200, 3)
    labels = np.where(y > 0, "up", "down")
    with tempfile.TemporaryDirectory() as tmp:
        model = DNNClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, labels)
        save(model, Path(tmp) / "m")
        served = ServedModel(Path(tmp) / "m")
        body = {"columns": {c: X[c].tolist()[:5] for c in X}, "probabilities": True}
        reply, n = served.answer(body)
        assert n == 5 and reply["classes"] == ["down", "up"]
        np.testing.assert_allclose(reply["probabilities"], model.predict_proba(X[:5]), rtol=1e-5)
        assert reply["predictions"] == model.predict(X[:5]).tolist()
        with pytest.raises(RequestError, match="interval"):
            served.answer({**body, "interval": 0.9})


def test_an_unexpected_error_is_a_logged_500_and_the_app_goes_on(caplog):
    """A bug inside a route (not the client's fault) answers 500 with JSON and logs the
    traceback; the middleware does not re-raise, so the server keeps serving."""
    import asyncio

    from dnnreg.serve import _RequestLog

    async def broken(scope, receive, send):
        raise RuntimeError("a bug")

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/predict", "client": ("1.2.3.4", 5)}
    with caplog.at_level("INFO", logger="dnnreg.serve"):
        asyncio.run(_RequestLog(broken)(scope, None, send))
    assert sent[0]["status"] == 500 and b"internal error" in sent[1]["body"]
    assert "a bug" in caplog.text and '1.2.3.4 "POST /predict" 500' in caplog.text


def test_the_torch_engine_answers_as_the_numpy_engine(served_dir):
    _, path = served_dir
    X, _ = _table(30, 4)
    body = {"columns": {c: X[c].tolist() for c in X}, "interval": 0.8}
    by_numpy, _ = ServedModel(path).answer(body)
    by_torch, _ = ServedModel(path, engine="torch").answer(body)
    for key in ("predictions", "lower", "upper"):
        np.testing.assert_allclose(by_torch[key], by_numpy[key], rtol=1e-5, atol=1e-6)
    assert ServedModel(path, engine="torch").metadata["engine"] == "torch"
