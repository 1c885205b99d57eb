"""``dnnreg serve``: a saved model behind HTTP, for programs that are not Python.

Built on FastAPI and uvicorn (the ``serve`` extra): a maintained ASGI stack with a
production server, worker processes and graceful shutdown, where the alternatives are
either a development server (Flask's, ``http.server``) or a framework larger than four
routes need. The request body is parsed here rather than by a pydantic model, so that
every refusal names the column, the row and the fix instead of a schema path.

Routes:

- ``POST /predict``: ``{"rows": [{column: value, ...}, ...]}`` (records) or
  ``{"columns": {column: [values], ...}}``, optionally ``"interval": 0.9`` (and
  ``"interval_by": column``) for a regressor's conformal bounds, ``"probabilities": true``
  for a classifier's. Answers ``{"predictions": [...], "lower": [...], "upper": [...],
  "classes": [...], "probabilities": [[...], ...]}`` (the parts asked for).
- ``GET /health``: ``{"status": "ok"}`` once the model is loaded.
- ``GET /metadata``: the feature schema, task, target, classes, the model's dnnreg
  version and format, and the sha256 of its ``config.json`` (which records the checksums
  of the other two files, so it identifies the whole model).

Statuses: 400 for a body that is not JSON, 422 for JSON that does not describe rows the
model can take (naming the column and the problem), 413 over ``max_body_bytes`` or
``max_rows``, 404/405 for unknown routes and methods, 500 (logged, the server keeps
serving) for anything else. One log line per request: client, route, status, rows, time.

The model is loaded once per worker process, by the torch-free runtime
(:func:`dnnreg.load_numpy`) unless ``engine="torch"``.
"""

# No ``from __future__ import annotations``: FastAPI reads the route's ``Request``
# annotation at definition time, inside create_app, where fastapi is imported lazily.
import hashlib
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dnnreg._optional import import_optional

logger = logging.getLogger("dnnreg.serve")

MAX_BODY_BYTES = 16 * 2**20
MAX_ROWS = 100_000
INLINE_BYTES = 8192  # bodies up to this size are answered on the event loop itself
_ENV = "DNNREG_SERVE"  # how worker processes learn their settings (uvicorn imports the app)


class RequestError(ValueError):
    """A request the model cannot answer; ``status`` is the HTTP status to send."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------- the model
class ServedModel:
    """A loaded model and what the routes need from it: the columns and their kinds, the
    metadata, and :meth:`answer`, from a parsed body to a JSON-ready reply."""

    def __init__(self, path, *, engine: str = "numpy", max_rows: int = MAX_ROWS):
        from dnnreg.run import model_dir

        self.path = model_dir(path)
        if engine == "numpy":
            from dnnreg.inference.runtime import load_numpy

            self.model = load_numpy(self.path)
        else:
            from dnnreg.estimators.persistence import load

            self.model = load(self.path)
        self.engine, self.max_rows = engine, max_rows
        pre = self.model.preprocessor_
        self.kinds = {s["name"]: s["kind"] for s in pre.schema()}
        self.columns = list(pre.columns)
        self.is_classifier = hasattr(self.model, "classes_")
        self.metadata = self._metadata()

    def _metadata(self) -> dict:
        from dnnreg._version import __version__

        config_bytes = (self.path / "config.json").read_bytes()
        config = json.loads(config_bytes)
        calibration = config.get("calibration")
        return {
            "estimator": config["estimator"],
            "task": "classification" if self.is_classifier else "regression",
            "target": config.get("metadata", {}).get("target"),
            "features": [{"name": c, "kind": self.kinds[c]} for c in self.columns],
            "classes": config.get("classes"),
            "intervals": None if calibration is None else calibration,
            "model_dnnreg_version": config.get("dnnreg_version"),
            "format_version": config.get("format_version"),
            "sha256": hashlib.sha256(config_bytes).hexdigest(),
            "engine": self.engine,
            "server_dnnreg_version": __version__,
            "max_rows": self.max_rows,
        }

    def answer(self, body) -> tuple[dict, int]:
        """The reply to a parsed ``POST /predict`` body and its number of rows."""
        if not isinstance(body, dict):
            raise RequestError(422, 'body must be a JSON object with "rows" (records) or "columns"')
        frame = self.frame(body)
        reply = {}
        try:
            reply["predictions"] = _plain(self.model.predict(frame))
            if body.get("interval") is not None:
                reply.update(self._interval(frame, body))
            if body.get("probabilities"):
                reply.update(self._probabilities(frame))
        except ValueError as err:  # the model's own checks: infinite values, bad levels
            raise RequestError(422, str(err)) from err
        return reply, len(frame)

    def _interval(self, frame, body) -> dict:
        if self.is_classifier:
            raise RequestError(422, '"interval" is for regression models; use "probabilities"')
        coverage = body["interval"]
        lower, upper = self.model.predict_interval(frame, coverage, by=body.get("interval_by"))
        return {"lower": _plain(lower), "upper": _plain(upper)}

    def _probabilities(self, frame) -> dict:
        if not self.is_classifier:
            raise RequestError(422, '"probabilities" is for classifiers; use "interval"')
        return {
            "classes": _plain(self.model.classes_),
            "probabilities": self.model.predict_proba(frame).tolist(),
        }

    # ------------------------------------------------------------------ parsing
    def frame(self, body: dict) -> pd.DataFrame:
        """The rows of ``body`` as a frame of the model's columns, every value checked
        against its column's kind."""
        if ("rows" in body) == ("columns" in body):
            raise RequestError(
                422, 'body must hold exactly one of "rows" (a list of objects) or "columns"'
            )
        columns = _records(body["rows"]) if "rows" in body else _columns(body["columns"])
        n = len(next(iter(columns.values()))) if columns else 0
        if n == 0:
            raise RequestError(422, "the request holds no rows; send at least one")
        if n > self.max_rows:
            raise RequestError(
                413, f"the request holds {n} rows, over the limit of {self.max_rows}"
            )
        target = self.metadata["target"]
        if target not in self.kinds:  # rows copied from the training table keep it
            columns.pop(target, None)
        missing = [c for c in self.columns if c not in columns]
        extra = [c for c in columns if c not in self.kinds]
        if missing or extra:
            parts = [f"missing column(s) {missing}"] * bool(missing) + [
                f"unexpected column(s) {extra}"
            ] * bool(extra)
            raise RequestError(
                422, " and ".join(parts) + f"; the model expects {self.columns} (see /metadata)"
            )
        data = {c: self._column(c, columns[c]) for c in self.columns}
        return pd.DataFrame(data, columns=self.columns)

    def _column(self, name, values):
        if self.kinds[name] == "numeric":
            for i, v in enumerate(values):
                if not (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))):
                    raise RequestError(
                        422, f"column {name!r} row {i}: expected a number or null, got {v!r}"
                    )
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        for i, v in enumerate(values):
            if not (v is None or isinstance(v, (str, int, float, bool))):
                raise RequestError(
                    422,
                    f"column {name!r} row {i}: expected a category (string, number, boolean "
                    f"or null), got {type(v).__name__}",
                )
        return pd.Series(values, dtype=object)


def _records(rows) -> dict:
    """``[{column: value}, ...]`` as ``{column: [values]}``; every row names every column."""
    if not isinstance(rows, list):
        raise RequestError(422, f'"rows" must be a list of objects, got {type(rows).__name__}')
    if rows and not all(isinstance(r, dict) for r in rows):
        i = next(i for i, r in enumerate(rows) if not isinstance(r, dict))
        raise RequestError(422, f'"rows" item {i} must be an object, got {type(rows[i]).__name__}')
    names = list(dict.fromkeys(k for r in rows for k in r))
    for i, r in enumerate(rows):
        lacking = [c for c in names if c not in r]
        if lacking:
            raise RequestError(
                422, f"row {i} lacks column(s) {lacking}; send null for a missing value"
            )
    return {c: [r[c] for r in rows] for c in names}


def _columns(columns) -> dict:
    if not isinstance(columns, dict) or not all(isinstance(v, list) for v in columns.values()):
        raise RequestError(422, '"columns" must be an object of lists, one per column')
    lengths = {c: len(v) for c, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise RequestError(422, f'"columns" must all have the same length, got {lengths}')
    return dict(columns)


def _plain(values) -> list:
    """A JSON-ready list: NumPy scalars as Python ones, non-finite floats (an unbounded
    interval) as null, which JSON can carry."""
    out = np.asarray(values).tolist()
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in out]


# ---------------------------------------------------------------------- the app
def create_app(
    path, *, engine: str = "numpy", max_rows: int = MAX_ROWS, max_body_bytes: int = MAX_BODY_BYTES
):
    """The FastAPI application serving the model at ``path`` (loaded once, here)."""
    fastapi = import_optional("fastapi")
    from fastapi import Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse

    served = ServedModel(path, engine=engine, max_rows=max_rows)
    app = fastapi.FastAPI(title="dnnreg", version=served.metadata["server_dnnreg_version"])
    app.state.served = served

    app.add_middleware(_RequestLog)

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/metadata")
    def metadata():
        return served.metadata

    @app.post("/predict")
    async def predict(request: Request):
        try:
            raw = await _read_body(request, max_body_bytes)
            body = _parse(raw)
            if len(raw) <= INLINE_BYTES:  # ~1 ms of work: a thread hand-off costs more
                reply, request.state.rows = served.answer(body)
            else:  # long work runs off the event loop, which keeps serving
                reply, request.state.rows = await run_in_threadpool(served.answer, body)
        except RequestError as err:
            return JSONResponse({"detail": str(err)}, status_code=err.status)
        return reply

    return app


class _RequestLog:
    """Pure ASGI middleware: one log line per request (client, route, status, rows, time),
    and a JSON 500 for an unexpected error, logged with its traceback, after which the
    server keeps serving. (Starlette's ``@app.middleware("http")`` costs ~0.5 ms a request.)"""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [None]
        scope.setdefault("state", {})["rows"] = 0  # request.state.rows, set by /predict

        async def send_noting_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:  # a bug, not the client's: logged, answered, server kept
            logger.exception("%s %s failed", scope["method"], scope["path"])
            if status[0] is None:
                await _send_json(send, 500, {"detail": "internal error; see the server log"})
                status[0] = 500
        client = scope.get("client") or ("-",)
        logger.info(
            '%s "%s %s" %s %d rows %.1f ms',
            client[0],
            scope["method"],
            scope["path"],
            status[0],
            scope["state"].get("rows", 0),
            1000 * (time.perf_counter() - start),
        )


async def _send_json(send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(request, limit: int) -> bytes:
    """The body, refused past ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body is {int(declared)} bytes, over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(raw: bytes):
    if not raw.strip():
        raise RequestError(400, 'the body is empty; send JSON such as {"rows": [{...}]}')
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RequestError(400, f"the body is not JSON ({err})") from err


def app_from_environment():
    """The app of a uvicorn worker process, configured by :func:`serve` via the
    environment (worker processes import the app; they cannot be handed it)."""
    settings = json.loads(os.environ[_ENV])
    _log_to_stderr()
    return create_app(
        settings["path"],
        engine=settings["engine"],
        max_rows=settings["max_rows"],
        max_body_bytes=settings["max_body_bytes"],
    )


def _log_to_stderr() -> None:
    """The server's one line per request, on stderr (the server process only), unless a
    handler up the logger chain (the CLI's) already prints dnnreg's records."""
    from dnnreg.notices import _shown_by_user_logging

    logger.setLevel(logging.INFO)
    if not _shown_by_user_logging(logger):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)


def serve(
    path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    engine: str = "numpy",
    max_rows: int = MAX_ROWS,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> None:
    """Serve the model at ``path`` until interrupted (Ctrl-C or SIGTERM end it cleanly)."""
    uvicorn = import_optional("uvicorn")
    import_optional("fastapi")
    _check_port(host, port)
    settings = dict(
        path=str(Path(path)), engine=engine, max_rows=max_rows, max_body_bytes=max_body_bytes
    )
    os.environ[_ENV] = json.dumps(settings)
    app = app_from_environment()  # loaded here first: a bad model fails now, in one line
    # access_log off: our own line per request replaces uvicorn's
    options = dict(host=host, port=port, access_log=False, log_level="warning")
    logger.info(
        "serving %s on http://%s:%d (%s engine, %d worker(s)); Ctrl-C stops",
        path, host, port, engine, workers,
    )  # fmt: skip
    if workers == 1:
        uvicorn.run(app, **options)
    else:  # each worker process imports the app and loads its own copy
        uvicorn.run("dnnreg.serve:app_from_environment", factory=True, workers=workers, **options)


def _check_port(host: str, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as err:
            raise ValueError(
                f"cannot listen on {host}:{port} ({err.strerror}); choose another --port"
            ) from err
