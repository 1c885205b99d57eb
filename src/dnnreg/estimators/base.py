"""What ``DNNRegressor`` and ``DNNClassifier`` share: parameter checks, the fit loop,
tensors and prediction plumbing; the parameters' documentation and presets live in
:mod:`dnnreg.options`. Each subclass's ``__init__`` signature IS its configuration:
every default lives there, and ``get_params`` shows the real values."""

from __future__ import annotations

import contextlib
import logging
import os
import time

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

from dnnreg._validation import check_choice, check_number, raise_all
from dnnreg.conformal import PREFIX as CALIBRATION_PREFIX
from dnnreg.conformal import Calibration
from dnnreg.estimators.streaming import fit_stream, read_or_stream
from dnnreg.network.embeddings import NumericEmbedding
from dnnreg.network.losses import output_bias
from dnnreg.network.mlp import MLP
from dnnreg.notices import verbose_output, warn, warn_convergence
from dnnreg.options import (
    ACTIVATIONS,
    BINNINGS,
    CATEGORICAL_ENCODINGS,
    ENSEMBLE_KINDS,
    INIT_ALIASES,
    INITS,
    NOISE_KINDS,
    NORMALIZATIONS,
    NUMERIC_EMBEDDINGS,
    OPEN_ENDED_SCHEDULES,
    PRECISIONS,
    PRESETS,
    PRETRAIN_MODES,
    SCALINGS,
    SCHEDULES,
    SOLVERS,
    resolve_auto,
)
from dnnreg.tables.preprocessing import TablePreprocessor, as_frame, pandas_frame
from dnnreg.tables.splits import bagging_folds, validation_rows
from dnnreg.tables.streaming import is_table_source
from dnnreg.training.bagging import Bagging, n_folds
from dnnreg.training.devices import (
    check_device_string,
    check_precision,
    data_device,
    resolve_device,
    resolve_precision,
)
from dnnreg.training.distributed import (
    SINGLE,
    World,
    broadcast_json,
    check_same,
    guarded,
    join,
    launched,
    leave,
    local_device,
)
from dnnreg.training.loop import (
    TrainConfig,
    fit_model,
    forward_in_chunks,
    notify,
)
from dnnreg.training.pretrain import DEFAULT_LR, PretrainConfig, per_layer, pretrain_stack
from dnnreg.training.threads import thread_scope

logger = logging.getLogger("dnnreg")


def _store(estimator, params: dict) -> None:
    """scikit-learn's rule: ``__init__`` stores its arguments unchanged, nothing else."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class _DNNBase(BaseEstimator):
    """What regression and classification share: checks, the fit loop, tensors, predict."""

    _losses: tuple = ()
    _metrics: dict = {}

    # ------------------------------------------------------------------ checks
    def check_params(self):
        """Raise one ``ValueError`` listing every invalid parameter, with did-you-mean."""
        sizes = self.hidden_layer_sizes
        sizes_ok = isinstance(sizes, (tuple, list)) and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in sizes
        )
        optional = lambda name: (
            None
            if getattr(self, name) is None
            # noqa: E731
            else check_number(name, getattr(self, name), low=0, low_inclusive=False)
        )
        raise_all(
            [
                None
                if sizes_ok
                else (
                    "hidden_layer_sizes must be a tuple of positive integers, "
                    f"got hidden_layer_sizes={sizes!r}"
                ),
                check_choice("activation", self.activation, ACTIVATIONS),
                check_choice("init", self.init, list(INITS) + list(INIT_ALIASES)),
                None
                if self.dropout == "auto"
                else check_number("dropout", self.dropout, low=0, high=1, high_inclusive=False),
                check_choice("normalization", self.normalization, NORMALIZATIONS),
                _check_bool("residual", self.residual),
                self._check_residual_widths() if sizes_ok else None,
                check_number("n_ensemble", self.n_ensemble, low=1, integer=True),
                check_choice("ensemble_kind", self.ensemble_kind, ENSEMBLE_KINDS),
                check_choice(
                    "numeric_embedding", self.numeric_embedding, ["auto", *NUMERIC_EMBEDDINGS]
                ),
                check_number(
                    "numeric_embedding_dim", self.numeric_embedding_dim, low=1, integer=True
                ),
                check_number(
                    "embedding_frequencies", self.embedding_frequencies, low=1, integer=True
                ),
                check_number("embedding_sigma", self.embedding_sigma, low=0, low_inclusive=False),
                check_number("embedding_bins", self.embedding_bins, low=1, integer=True),
                check_choice("embedding_binning", self.embedding_binning, BINNINGS),
                check_choice("numeric_scaling", self.numeric_scaling, SCALINGS),
                check_choice(
                    "categorical_encoding", self.categorical_encoding, CATEGORICAL_ENCODINGS
                ),
                check_choice("loss", self.loss, self._losses),
                check_choice("solver", self.solver, SOLVERS),
                None
                if self.batch_size == "auto"
                else check_number("batch_size", self.batch_size, low=1, integer=True),
                check_number(
                    "learning_rate_init", self.learning_rate_init, low=0, low_inclusive=False
                ),
                check_number("momentum", self.momentum, low=0, high=1, high_inclusive=False),
                check_number("adam_beta2", self.adam_beta2, low=0, high=1, high_inclusive=False),
                check_number("weight_decay", self.weight_decay, low=0),
                check_number("alpha", self.alpha, low=0),
                check_number("l1", self.l1, low=0),
                optional("clip_grad_norm"),
                optional("clip_grad_value"),
                check_choice("lr_schedule", self.lr_schedule, SCHEDULES),
                check_number("lr_warmup", self.lr_warmup, low=0, high=1, high_inclusive=False),
                check_number("lr_step_size", self.lr_step_size, low=1, integer=True),
                check_number("lr_gamma", self.lr_gamma, low=0, high=1, low_inclusive=False),
                check_number("lr_patience", self.lr_patience, low=0, integer=True),
                None
                if self.max_iter == "auto"
                else check_number("max_iter", self.max_iter, low=1, integer=True),
                _check_bool("early_stopping", self.early_stopping),
                _check_bool("bagging", self.bagging),
                check_choice(
                    "early_stopping_metric", self.early_stopping_metric, ["loss", *self._metrics]
                ),
                check_number(
                    "validation_fraction",
                    self.validation_fraction,
                    low=0,
                    high=1,
                    low_inclusive=False,
                    high_inclusive=False,
                ),
                None
                if self.n_iter_no_change == "auto"
                else check_number("n_iter_no_change", self.n_iter_no_change, low=1, integer=True),
                _check_bool("restore_best_weights", self.restore_best_weights),
                _check_bool("diagnostics", self.diagnostics),
                None
                if self.tensorboard_dir is None
                or isinstance(self.tensorboard_dir, (str, os.PathLike))
                else "tensorboard_dir must be a path or None, got "
                f"tensorboard_dir={self.tensorboard_dir!r}",
                None
                if self.checkpoint_dir is None
                or isinstance(self.checkpoint_dir, (str, os.PathLike))
                else "checkpoint_dir must be a path or None, got "
                f"checkpoint_dir={self.checkpoint_dir!r}",
                None
                if self.checkpoint_every == "auto"
                else check_number("checkpoint_every", self.checkpoint_every, low=1, integer=True),
                _check_bool("keep_checkpoint", self.keep_checkpoint),
                optional("max_time"),
                check_device_string("device", self.device),
                check_choice("precision", self.precision, PRECISIONS),
                *self._check_pretrain_params(),
                _check_bool("compile", self.compile),
                None
                if self.n_threads == "auto"
                else check_number("n_threads", self.n_threads, low=1, integer=True),
                None
                if self.max_memory_rows == "auto"
                else check_number("max_memory_rows", self.max_memory_rows, low=2, integer=True),
                *self._check_task_params(),
            ]
        )

    def _check_residual_widths(self):
        sizes = list(self.hidden_layer_sizes)
        if self.residual is True and not any(a == b for a, b in zip(sizes, sizes[1:])):
            return (
                "residual=True needs two consecutive hidden layers of the same width for "
                f"a skip connection, got hidden_layer_sizes={tuple(sizes)!r}; use e.g. "
                "(256, 256, 256)"
            )
        return None

    def _check_pretrain_params(self) -> list:
        errors = [
            check_choice("pretrain", self.pretrain, PRETRAIN_MODES),
            check_choice("pretrain_noise_kind", self.pretrain_noise_kind, NOISE_KINDS),
            check_number("pretrain_cd_k", self.pretrain_cd_k, low=1, integer=True),
            check_number("wake_sleep_epochs", self.wake_sleep_epochs, low=0, integer=True),
        ]
        for name, low, integer in (
            ("pretrain_epochs", 0, True),
            ("pretrain_noise", 0, False),
            ("pretrain_sparsity", 0, False),
            ("pretrain_sparsity_weight", 0, False),
            ("pretrain_lr", 0, False),
        ):
            value = getattr(self, name)
            if value is None and name == "pretrain_lr":
                continue
            for v in value if isinstance(value, (tuple, list)) else (value,):
                errors.append(check_number(name, v, low=low, integer=integer))
        if self.pretrain != "none" and self.ensemble_kind != "mlp_k":
            errors.append(
                "pretrain trains each member's layers on their own; set "
                "ensemble_kind='mlp_k' or pretrain='none'"
            )
        if self.pretrain != "none" and self.residual is True:
            errors.append(
                "pretrain needs plain layers (an autoencoder or RBM per layer); set "
                "residual=False or pretrain='none'"
            )
        if self.wake_sleep_epochs and (self.pretrain != "rbm" or len(self.hidden_layer_sizes) < 2):
            errors.append(
                "wake_sleep_epochs needs pretrain='rbm' and at least two hidden "
                f"layers, got pretrain={self.pretrain!r} and hidden_layer_sizes="
                f"{tuple(self.hidden_layer_sizes)!r}"
            )
        return errors

    def _pretrain_config(self) -> PretrainConfig:
        n = len(self.hidden_layer_sizes)
        lr = DEFAULT_LR[self.pretrain] if self.pretrain_lr is None else self.pretrain_lr
        return PretrainConfig(
            mode=self.pretrain,
            epochs=tuple(int(e) for e in per_layer(self.pretrain_epochs, n, "pretrain_epochs")),
            lr=tuple(float(v) for v in per_layer(lr, n, "pretrain_lr")),
            noise=tuple(float(v) for v in per_layer(self.pretrain_noise, n, "pretrain_noise")),
            noise_kind=self.pretrain_noise_kind,
            sparsity=per_layer(self.pretrain_sparsity, n, "pretrain_sparsity"),
            sparsity_weight=per_layer(self.pretrain_sparsity_weight, n, "pretrain_sparsity_weight"),
            cd_k=int(self.pretrain_cd_k),
            wake_sleep_epochs=int(self.wake_sleep_epochs),
            batch_size=self.batch_size_,
        )

    def _pretrain(self, train, frame_unlabeled, generator, callbacks) -> None:
        """Greedy layer-wise pretraining on the training rows plus the unlabelled ones."""
        self.pretrain_history_ = []
        if self.pretrain == "none":
            return
        x_num, x_cat = train[0], train[1]
        if frame_unlabeled is not None:
            extra = self._tensors(frame_unlabeled, device=x_num.device)
            x_num, x_cat = torch.cat([x_num, extra[0]]), torch.cat([x_cat, extra[1]])
        self.pretrain_history_ = pretrain_stack(
            self.model_,
            x_num,
            x_cat,
            config=self._pretrain_config(),
            activation=self.activation,
            generator=generator,
        )
        notify(callbacks, "on_pretrain_end", self.model_)

    def _check_task_params(self) -> list:
        return []

    def _after_fit(self, out, y_val, w_val=None):
        """Decisions taken on the validation rows once the weights are final; ``out`` is
        the members' outputs there (out-of-fold under bagging), ``None`` without any;
        ``w_val`` their row weights. Returns the outputs the final weights give there
        (the classifier's temperature changes them)."""
        return out

    def _keep_calibration(self, held, frame, val_frame) -> None:
        """What prediction intervals need from the rows held out of training (the
        regressor's conformal calibration); nothing for other estimators."""

    def _keep_oof(self, pred, rows, n) -> None:
        """``oof_prediction_``: each training row's out-of-fold prediction (NaN for the
        few rows in no fold), after a bagged fit."""
        oof = np.full((n, *pred.shape[1:]), np.nan)
        oof[rows] = pred
        self.oof_prediction_ = oof

    @classmethod
    def from_preset(cls, preset: str, **params):
        """An estimator with the settings bundle ``preset``; ``params`` override it.

        ``"fast"``: one member, no numerical embedding, no dropout, for a quick first look;
        ``"default"``: the defaults.
        The preset is not a parameter of its own (scikit-learn's ``__init__`` must store
        its arguments unchanged), so ``get_params`` shows the real values it set, and a
        cloned or saved model needs no preset table to be rebuilt.

        >>> from dnnreg import DNNRegressor
        >>> DNNRegressor.from_preset("fast", max_iter=10).get_params()["n_ensemble"]
        1
        """
        error = check_choice("preset", preset, PRESETS)
        if error:
            raise ValueError(error)
        return cls(**{**PRESETS[preset], **params})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X,
        y,
        *,
        sample_weight=None,
        eval_set=None,
        X_unlabeled=None,
        callbacks=(),
        resume=False,
    ):
        """Fit on ``X`` (array or DataFrame) and ``y``; or on the table ``X`` names (a
        CSV or Parquet file, a directory or glob of Parquet files, a
        ``pyarrow.dataset.Dataset``) with ``y`` the name of its target column.

        A named table with more rows than ``max_memory_rows`` is streamed: never held in
        memory, read again every epoch (:mod:`dnnreg.estimators.streaming` says what is
        approximate then, and which options it refuses); a smaller one is read whole and
        fitted exactly as the same DataFrame would be.

        Parameters
        ----------
        sample_weight : array of shape (n,), optional
            Non-negative row weights: each row's loss counts ``sample_weight`` times (scaled
            to mean 1, so the learning rate means the same), and so do the validation
            loss and metrics that early stopping watches, the target's mean and spread,
            and the output layer's starting bias. A row of weight 0 is dropped before
            anything else (exactly as if it were not there); equal weights are no
            weights. The features' quantile maps stay unweighted: they only set each
            column's resolution.
        eval_set : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
            Validation rows for early stopping; by default ``validation_fraction`` of the
            training rows are held out (with their weights).
        X_unlabeled : array or DataFrame, optional
            Rows with the same features and no target: pretraining (``pretrain``) learns
            from them as well as from ``X``; fine-tuning uses the labelled rows only.
        callbacks : sequence, optional
            Objects told about training as it runs; each may define any of
            ``on_epoch_begin(model)``, ``on_after_backward(model, last_in_epoch)``,
            ``on_epoch_end(record, model)``, ``on_train_end(model)`` and
            ``on_pretrain_end(model)`` (after pretraining, before fine-tuning; see
            :mod:`dnnreg.training.loop`). During ``on_epoch_end`` the estimator can already
            ``predict``, e.g. to trace a test metric epoch by epoch.
        resume : bool, default=False
            Continue from the checkpoint in ``checkpoint_dir`` (written by a fit of the same
            data and parameters that was killed or interrupted) instead of starting again;
            the result equals an uninterrupted fit's. Without a checkpoint yet, a warning
            says so and the fit starts from the beginning.
        """
        self.check_params()
        name = type(self).__name__
        if y is None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None")
        if resume and self.checkpoint_dir is None:
            raise ValueError(
                "resume=True continues from a checkpoint, but checkpoint_dir is None; set "
                "checkpoint_dir to the folder the interrupted fit wrote"
            )
        dataset, target = None, y
        if is_table_source(X):  # a path or a pyarrow dataset: read whole, or streamed
            weighted = eval_set is not None and len(eval_set) > 2 and eval_set[2] is not None
            weighted_eval = eval_set if weighted else None  # (X, y, None) is unweighted
            refused = {"sample_weight": sample_weight, "X_unlabeled": X_unlabeled,
                       "eval_set weights": weighted_eval}  # fmt: skip
            X, y, dataset = read_or_stream(self, X, target, refused=refused)
        with verbose_output(self.verbose):
            self._checkpointer = checkpoint = self._make_checkpointer(resume)
            try:
                with contextlib.nullcontext() if checkpoint is None else checkpoint.held():
                    if dataset is not None:
                        fit_stream(self, dataset, target, callbacks, eval_set=eval_set)
                        return self
                    return self._fit(X, y, sample_weight, eval_set, X_unlabeled, callbacks)
            finally:
                del self._checkpointer
                self.__dict__.pop("_world", None)

    def _make_checkpointer(self, resume: bool):
        """The fit's :class:`~dnnreg.training.checkpoint.Checkpointer` (``None`` without
        ``checkpoint_dir``), its folder checked before any work."""
        if self.checkpoint_dir is None:
            return None
        from dnnreg.training.checkpoint import Checkpointer

        checkpoint = Checkpointer(
            self.checkpoint_dir, every=self.checkpoint_every, keep=self.keep_checkpoint
        )
        checkpoint.check()
        checkpoint.resume = resume
        return checkpoint

    def _fit(self, X, y, sample_weight, eval_set, X_unlabeled, callbacks):
        start = time.perf_counter()
        self._world = world = self._join()
        frame, y = self._checked_input(X, y)
        frame, y, w = self._weighted_rows(frame, y, sample_weight)
        if world.active:
            check_same(_digest(frame, y, w), "table (X, y, sample_weight)", world)
        self._fit_target(y, w)
        rng = check_random_state(self.random_state)
        if world.active and self.random_state is None:  # one unseeded draw, shared by all
            rng = np.random.RandomState(broadcast_json(int(rng.randint(2**31 - 1)), world))
        seed = int(rng.randint(np.iinfo(np.int32).max))
        frame, y, w, val_frame, y_val, w_val = self._split_validation(frame, y, w, rng, eval_set)
        frame_unlabeled = self._unlabeled_frame(X_unlabeled, frame.columns)
        self._prepare(frame, y)
        if self.verbose >= 2:
            logger.info(self._fit_summary(len(y), val_frame))
        train = self._tensors(frame, y, device="fit")
        val = None if val_frame is None else self._tensors(val_frame, y_val, device=self.device_)
        weights = _FitWeights.of(w, w_val, train[0].device)
        self._run_training(
            train, train, (frame, y), (val, val_frame, y_val), weights, seed, callbacks,
            frame_unlabeled,
        )  # fmt: skip
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _run_training(self, train, probe, rows, held_out, weights, seed, callbacks,
                      frame_unlabeled=None) -> None:  # fmt: skip
        """Everything after the data is ready, shared by the in-memory and the streamed fit
        (:mod:`dnnreg.estimators.streaming`): build, initialise, pretrain, train, decide,
        calibrate. ``train`` is the training tensors or a streamed table's blocks,
        ``probe`` training tensors in memory (all of them, or a sample) for what needs
        rows at hand (the embedding's bins, the output's starting bias, the callbacks'
        probes); ``rows`` the training ``(frame, y)``, ``held_out`` ``(val tensors,
        val frame, y_val)``."""
        world = getattr(self, "_world", SINGLE)
        frame, y = rows
        val, val_frame, y_val = held_out
        callbacks = self._plugged_callbacks(callbacks, probe, val_frame)
        with (
            self._own_generators(seed),  # seeded here, the user's restored afterwards
            thread_scope(self.n_threads) as threads,  # restored after the fit
        ):
            generator = torch.Generator().manual_seed(seed)
            self._initialise(probe, generator)
            self._pretrain(probe, frame_unlabeled, generator, callbacks)
            self._start_at_marginal(probe[2], weights.train)
            with guarded(world):
                result = self._train(
                    train, val, y_val, generator, [*callbacks, threads], y, weights
                )
            held = self._finish(result, val, y_val, train, y, weights)
            self._keep_calibration(held, frame, val_frame)
        leave(world)

    def _join(self) -> World:
        """This fit's place among the ranks of a torchrun launch
        (:mod:`dnnreg.training.distributed`); a single process outside one."""
        if not launched():
            return SINGLE
        if self.solver == "lbfgs":
            raise ValueError(
                "solver='lbfgs' takes full-batch steps and cannot be split across torchrun "
                "ranks; use solver='adamw', or run one process"
            )
        if self.checkpoint_dir is not None:
            raise ValueError(
                "checkpoint_dir is not supported under torchrun yet; drop it, or train in "
                "one process to checkpoint and resume"
            )
        return join(local_device(resolve_device(self.device)))

    def _categorical_names(self, columns) -> list[str]:
        """``categorical_features`` as column names: names kept, positions and a boolean
        mask mapped onto ``columns``; anything that names no column is refused."""
        spec, columns = self.categorical_features, list(columns)
        if spec is None:
            return []
        spec = list(spec) if not isinstance(spec, str) else [spec]
        if spec and all(isinstance(s, (bool, np.bool_)) for s in spec):
            if len(spec) != len(columns):
                raise ValueError(
                    f"categorical_features is a mask of {len(spec)} values for "
                    f"{len(columns)} columns; give one True/False per column"
                )
            return [c for c, flag in zip(columns, spec) if flag]
        names, unknown = [], []
        for s in spec:
            position = isinstance(s, (int, np.integer)) and not isinstance(s, bool)
            if position and -len(columns) <= s < len(columns):
                names.append(columns[s])
            elif not position and str(s) in columns:
                names.append(str(s))
            else:
                unknown.append(s)
        if unknown:
            raise ValueError(
                f"categorical_features names no column for {unknown}; the columns are "
                f"{columns[:20]}{' ...' if len(columns) > 20 else ''}"
            )
        return names

    def _own_generators(self, seed: int):
        """Seed the global generators this fit draws from (the CPU's, and the fit's CUDA
        device's when it trains there) inside a ``fork_rng`` that restores them: a fit
        never reseeds another device's generator or leaves the user's streams moved.
        (``torch.manual_seed`` would seed every CUDA device, now or on its first use.)"""
        import contextlib

        cuda = self.device_.type == "cuda"
        devices = [self.device_.index or 0] if cuda else []
        stack = contextlib.ExitStack()
        stack.enter_context(torch.random.fork_rng(devices=devices))
        torch.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.init()
            torch.cuda.default_generators[devices[0]].manual_seed(seed)
        return stack

    # The steps of fit, in order.
    def _checked_input(self, X, y):
        """The feature frame and the checked target, of equal length, at least 2 rows."""
        frame = self._frame_for_fit(X)
        y = self._check_y(y)
        check_consistent_length(frame, y)
        if len(y) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 rows to fit, got 1 sample "
                f"(n_samples={len(y)}); add rows"
            )
        return frame, y

    def _weighted_rows(self, frame, y, sample_weight):
        """``(frame, y, w)``: the rows that weigh something and their weights (``None``
        when every weight is equal). Classifiers fold ``class_weight`` in here."""
        w = None if sample_weight is None else _checked_weights(sample_weight, frame)
        w = self._with_class_weight(y, w)
        if w is None:
            return frame, y, None
        keep = w > 0
        if not keep.any():
            raise ValueError(
                "every row weighs zero (sample_weight x class_weight); "
                "give some rows a positive weight"
            )
        if not keep.all():
            frame, y, w = frame.iloc[np.flatnonzero(keep)], y[keep], w[keep]
            if len(y) < 2:
                raise ValueError("fewer than 2 rows have a positive sample_weight; add rows")
        return frame, y, (None if np.all(w == w[0]) else w)

    def _with_class_weight(self, y, w):
        return w

    def _split_validation(self, frame, y, w, rng, eval_set):
        """``(train frame, y, w, validation frame, y, w)``: ``eval_set`` when given, else
        the early-stopping rows held out of ``frame`` (or none). Under ``bagging`` every
        row trains and ``bagging_`` maps members to their folds."""
        self.bagging_ = None
        k = int(self.n_ensemble)
        f = n_folds(k, len(y))
        wanted = self.bagging and eval_set is None and self.early_stopping
        if wanted and self.solver != "lbfgs" and f > 1:
            folds = bagging_folds(y, f, rng, stratify=is_classifier(self))
            self.bagging_ = Bagging(folds, k)
            return frame, y, w, None, None, None
        train_rows, val_rows = self._validation_split(y, rng, eval_set is not None)
        val_frame, y_val, w_val = None, None, None
        if eval_set is not None:
            val_frame = as_frame(pandas_frame(eval_set[0]), columns=frame.columns)
            y_val = self._check_y(eval_set[1])
            if len(eval_set) > 2 and eval_set[2] is not None:
                w_val = _checked_weights(eval_set[2], val_frame)
            w_val = self._with_class_weight(y_val, w_val)
        elif val_rows is not None:
            val_frame, y_val = frame.iloc[val_rows], y[val_rows]
            w_val = None if w is None else w[val_rows]
        w_train = None if w is None else w[train_rows]
        return frame.iloc[train_rows], y[train_rows], w_train, val_frame, y_val, w_val

    def _unlabeled_frame(self, X_unlabeled, columns):
        if X_unlabeled is None:
            return None
        frame = as_frame(X_unlabeled, columns=columns)  # checked even when unused
        if self.pretrain == "none":
            warn(
                "X_unlabeled is used only by pretraining; with pretrain='none' "
                "it is ignored (set pretrain='autoencoder', 'rbm', ...)",
            )
            return None
        return frame

    def _prepare(
        self, frame, y, *, n_train=None, level_counts=None, missing=(), streamed=False
    ) -> None:
        """Fit the preprocessing, pick the device, and resolve every "auto" once (recorded
        in ``resolved_`` and the model file). A streamed fit passes a sample of the rows
        and what its pass counted over all of them: ``n_train`` rows, ``level_counts``
        and ``missing`` (:meth:`TablePreprocessor.fit`)."""
        n_train = len(y) if n_train is None else n_train
        self.preprocessor_ = TablePreprocessor(
            numeric_scaling=self.numeric_scaling,
            categorical_encoding=self.categorical_encoding,
            categorical_features=self._categorical_names(frame.columns),
        ).fit(frame, level_counts=level_counts, missing=missing)
        world = getattr(self, "_world", SINGLE)
        if world.active:  # rank 0's encoding on every rank
            state = broadcast_json(self.preprocessor_.to_dict(), world)
            self.preprocessor_ = TablePreprocessor.from_dict(state)
        self.device_ = local_device(resolve_device(self.device))
        check_precision(self.precision, self.device_)
        self.resolved_ = resolve_auto(
            self.get_params(),
            n_train=n_train,
            n_scaled_numeric=len(self.preprocessor_.scaled_columns()),
            steps_per_epoch=self._auto_steps_per_epoch,
            streamed=streamed,
        )
        self.resolved_["precision"] = resolve_precision(
            self.precision, self.device_, self.resolved_["batch_size"]
        )
        self.batch_size_, self.max_iter_ = self.resolved_["batch_size"], self.resolved_["max_iter"]
        self.loss_ = self._make_loss()
        self._warn_unsound_combinations(n_train)

    def _plugged_callbacks(self, callbacks, train, val_frame) -> list:
        """The user's callbacks plus diagnostics and TensorBoard when asked for: they plug
        into the loop from here, so the loop never imports them."""
        callbacks = list(callbacks)
        if self.diagnostics:
            from dnnreg.training.diagnostics import Diagnostics

            probe = train if val_frame is None else self._tensors(val_frame)
            rows = (probe[0][:1024].to(self.device_), probe[1][:1024].to(self.device_))
            callbacks.append(Diagnostics(rows, self.activation))
        if self.tensorboard_dir is not None and getattr(self, "_world", SINGLE).is_main:
            from dnnreg.training.tensorboard import TensorBoardLogger

            rows = (train[0][:4].to(self.device_), train[1][:4].to(self.device_))
            callbacks.append(TensorBoardLogger(self.tensorboard_dir, rows))
        return callbacks

    def _initialise(self, train, generator) -> None:
        """Build and initialise the network on the CPU with the CPU generator, then move
        it: the same seed gives the same initial weights on every device."""
        self.model_ = self._build_model()
        self.model_.reset_parameters(generator, init=self.resolved_["init"])
        if self.model_.num_embedding is not None:
            self.model_.num_embedding.set_bins(
                train[0].cpu().numpy(), train[2].cpu().numpy(), classification=is_classifier(self)
            )
        self.model_.to(self.device_)

    def _train(self, train, val, y_val, generator, callbacks, y_train, weights):
        """The training loop (:func:`dnnreg.training.loop.fit_model`), early-stopped on the
        validation rows when there are any."""
        checkpoint, stop = getattr(self, "_checkpointer", None), None
        if checkpoint is not None:
            from dnnreg.training.checkpoint import StopRequest

            checkpoint.identity = self._fit_identity(val, y_val, weights)
            stop = StopRequest()
        with contextlib.nullcontext() if stop is None else stop.installed():
            result = self._train_loop(
                train, val, y_val, generator, callbacks, y_train, weights, stop
            )
        if checkpoint is not None:
            checkpoint.discard()  # the fit is over: a checkpoint could only resume it
        return result

    def _fit_identity(self, val, y_val, weights) -> str:
        """What a checkpoint must match to be resumed: the parameters that shape the
        model (not where output goes, nor the device or thread count: a resume may move)
        and the validation rows; the training loop adds the training rows and the
        initial weights."""
        from dnnreg._version import __version__
        from dnnreg.model_file import json_params
        from dnnreg.training.checkpoint import fingerprint

        free = ("verbose", "checkpoint_dir", "checkpoint_every", "keep_checkpoint", "n_threads")
        free += ("tensorboard_dir", "device", "compile", "diagnostics")
        params = {k: v for k, v in json_params(self).items() if k not in free}
        held = () if val is None else (*val, np.asarray(y_val))
        return fingerprint(__version__, type(self).__name__, params, *held, weights.val)

    def _training_loss(self):
        """The loss the optimiser minimises; validation and early stopping use ``loss_``
        (they differ under the classifier's ``label_smoothing``)."""
        return self.loss_

    def _train_loop(self, train, val, y_val, generator, callbacks, y_train, weights, stop):
        metric = self.early_stopping_metric
        checkpoint = getattr(self, "_checkpointer", None)
        return fit_model(
            self.model_,
            self._training_loss(),
            train,
            config=self._train_config(),
            generator=generator,
            evaluate=self._validation(train, val, y_val, y_train, weights),
            monitor=f"val_{metric}",
            maximize=metric != "loss" and self._metrics[metric][1],
            callbacks=callbacks,
            log_every=1 if self.verbose else 0,
            log_keys=self._logged_keys(),
            member_rows=None if self.bagging_ is None else self.bagging_.trained,
            weight=weights.train,
            checkpoint=checkpoint,
            stop=stop,
            resume=checkpoint is not None and checkpoint.resume,
            world=getattr(self, "_world", SINGLE),
        )

    def _fit_summary(self, n_rows: int, val_frame) -> str:
        """One line before training (``verbose >= 2``): rows, validation, network and the
        resolved "auto" settings."""
        if self.bagging_ is not None:
            validation = f"bagged over {self.bagging_.n_folds} folds"
        else:
            validation = "none" if val_frame is None else f"{len(val_frame)} rows"
        auto = ", ".join(f"{k}={v}" for k, v in self.resolved_.items())
        return (
            f"fit: {n_rows} training rows, validation {validation}, {self.n_ensemble} x "
            f"{tuple(self.hidden_layer_sizes)} on {self.device_}; {auto}"
        )

    def _logged_keys(self) -> tuple:
        """The progress line's entries: the first validation metric; with ``verbose >= 2``
        every validation metric and the thread count too."""
        metrics = [f"val_{m}" for m in self._metrics]
        return tuple(metrics + ["threads"]) if self.verbose >= 2 else tuple(metrics[:1])

    def _finish(self, result, val, y_val, train, y, weights):
        """Decisions on the final weights (e.g. clipping), the history, the verdicts.
        Returns ``(outputs, targets, rows)`` on the rows the members did not train on
        (``rows`` into the training rows under bagging, None for the validation rows), or
        None without any: what :meth:`_keep_calibration` calibrates intervals on."""
        self.model_.eval()
        if self.bagging_ is not None:
            bag = self.bagging_
            per_member = bag.outputs(self.model_, train[0], train[1])  # (k, m, d)
            self._warn_if_dead(per_member)
            rows = bag.rows.numpy()
            w = None if weights.train_np is None else weights.train_np[rows]
            out = self._after_fit(bag.oof(per_member), y[rows], w)
            self._keep_oof(self._from_outputs(out), rows, len(y))
            held = (out, np.asarray(y)[rows], rows)
        else:
            out = None if val is None else forward_in_chunks(self.model_, val[0], val[1])
            if out is not None:
                self._warn_if_dead(out)
            out = self._after_fit(out, y_val, weights.val)
            held = None if out is None else (out, np.asarray(y_val), None)
        self.history_, self.best_epoch_ = result.history, result.best_epoch
        self.n_iter_ = len(result.history)
        self._warn_if_unfinished(result)
        if self.diagnostics:
            from dnnreg.training.verdicts import format_verdict, verdicts

            self.diagnostics_ = verdicts(self.history_, activation=self.activation, loss=self.loss)
            for v in self.diagnostics_:
                warn(f"diagnostics: {format_verdict(v)}")
        return held

    def _warn_if_dead(self, out) -> None:
        """Every member (``out``: ``(k, m, d)``, each member on its own held-out rows)
        answering one value for every row: the units died (a learning rate so large that
        every ReLU ends negative) or the signal vanished (deep sigmoid stacks). A warning,
        not an error: the second is what a vanishing-gradient study wants to see."""
        if out.shape[1] >= 2 and float(out.float().std(dim=1).max()) < 1e-7:
            warn_convergence(
                "every prediction on the held-out rows is the same value: the network's "
                "units died or its signal vanished; lower learning_rate_init (now "
                f"{self.learning_rate_init:g}) or use activation='relu' with init='he'"
            )

    def _warn_if_unfinished(self, result) -> None:
        """scikit-learn's ConvergenceWarning when training ran out of epochs while the
        monitored score was still improving at the last one, under a schedule with no
        planned end (``constant``, ``reduce_on_plateau``). A schedule that anneals to its
        planned end (one-cycle, cosine, ...) is meant to peak there: no warning."""
        if (
            self.lr_schedule in OPEN_ENDED_SCHEDULES
            and not result.stopped_early
            and self.n_iter_ > 1
            and result.best_epoch == self.n_iter_
        ):
            warn_convergence(
                f"training reached max_iter={self.n_iter_} epochs while the validation "
                "score was still improving; raise max_iter (early stopping ends it when "
                "it stops improving)"
            )

    @property
    def _dropout(self) -> float:
        """The dropout rate in use: as resolved and recorded (models saved before "auto"
        existed recorded only the number they were given)."""
        return float(getattr(self, "resolved_", {}).get("dropout", self.dropout))

    def _warn_unsound_combinations(self, n_rows: int) -> None:
        """Combinations that run but work against themselves get a warning, not an error."""
        if self.solver == "lbfgs" and self._dropout > 0:
            warn(
                f"solver='lbfgs' with dropout={self._dropout}: dropout makes every "
                "evaluation of the objective random, which breaks L-BFGS's line search; "
                "use dropout=0 or a first-order solver",
            )
        if self.solver == "lbfgs" and n_rows > 20000:
            warn(
                f"solver='lbfgs' uses every row in each step; with {n_rows} rows a "
                "mini-batch solver (adamw) is far faster",
            )

    def _train_config(self) -> TrainConfig:
        return TrainConfig(
            batch_size=self.batch_size_,
            max_iter=self.max_iter_,
            solver=self.solver,
            lr=float(self.learning_rate_init),
            momentum=float(self.momentum),
            beta2=float(self.adam_beta2),
            weight_decay=float(self.weight_decay),
            alpha=float(self.alpha),
            l1=float(self.l1),
            clip_grad_norm=self.clip_grad_norm,
            clip_grad_value=self.clip_grad_value,
            lr_schedule=self.lr_schedule,
            lr_warmup=float(self.lr_warmup),
            lr_step_size=int(self.lr_step_size),
            lr_gamma=float(self.lr_gamma),
            lr_patience=int(self.lr_patience),
            n_iter_no_change=self.resolved_["n_iter_no_change"],
            restore_best=bool(self.restore_best_weights),
            max_time=self.max_time,
            precision=self.resolved_["precision"],
            compile=bool(self.compile),
        )

    def _start_at_marginal(self, y_train: torch.Tensor, weight=None) -> None:
        bias = output_bias(self.loss_, y_train, weight)
        if bias is not None:
            with torch.no_grad():
                self.model_.head.bias.copy_(bias.to(self.model_.head.bias))

    def _validation(self, train, val, y_val, y_train, weights):
        """What early stopping watches: the out-of-fold rows under bagging, else the
        validation rows, else nothing (``None``)."""
        if self.bagging_ is not None:
            return self._bagged_evaluator(train, y_train, weights)
        return None if val is None else self._evaluator(val, y_val, weights.val)

    def _evaluator(self, val, y_val, w_val=None):
        """``evaluate(model) -> {"val_loss", "val_<metric>", ...}`` on the validation rows
        (weighted by ``w_val`` when given)."""
        x_num, x_cat, target = val
        score = self._scorer(y_val, w_val)
        w_loss = None if w_val is None else _mean_one(w_val, x_num.device)

        def evaluate(model):
            out = forward_in_chunks(model, x_num, x_cat)
            return score(out, target.expand(out.shape[0], *target.shape), out, w_loss)

        return evaluate

    def _bagged_evaluator(self, train, y, weights):
        """The same record out of fold: each member's loss on the fold it holds out, the
        metrics on the out-of-fold ensemble predictions (:mod:`dnnreg.training.bagging`),
        each row weighted by its training weight."""
        bag, (x_num, x_cat, target) = self.bagging_, train
        held_target = bag.targets(target)
        rows = bag.rows.numpy()
        w_rows = None if weights.train_np is None else weights.train_np[rows]
        score = self._scorer(np.asarray(y)[rows], w_rows)
        w_loss = None if weights.train is None else bag.targets(weights.train)

        def evaluate(model):
            out = bag.outputs(model, x_num, x_cat)
            return score(out, held_target, bag.oof(out), w_loss)

        return evaluate

    def _scorer(self, y_val, w_val=None):
        """``score(out, target, ensemble_out, w_loss) -> record``: the mean member loss of
        ``out`` against ``target`` (weighted by ``w_loss``) and each metric of the
        ensemble of ``ensemble_out`` against ``y_val`` (the targets as given to fit,
        weighted by ``w_val``)."""
        y_metric = self._metric_target(y_val)
        # ROC AUC needs two classes, both present among the validation rows.
        skip = set() if len(np.unique(y_metric)) == 2 else {"roc_auc"}

        def score(out, target, ensemble_out, w_loss=None):
            record = {"val_loss": float(self.loss_(out, target, w_loss))}
            pred = self._from_outputs(ensemble_out)
            for name, (fn, _) in self._metrics.items():
                if name not in skip:
                    record[f"val_{name}"] = fn(y_metric, pred, w_val)
            return record

        return score

    def _frame_for_fit(self, X):
        X = pandas_frame(X)  # polars, pyarrow: names and dtypes kept
        if not isinstance(X, pd.DataFrame):
            X = check_array(
                X, dtype=None, ensure_all_finite=False, ensure_min_samples=1, accept_sparse=False
            )
        validate_data(self, X, reset=True, skip_check_array=True)
        frame = as_frame(X)
        if frame.shape[0] == 0:
            raise ValueError("X has 0 rows; pass at least 2 rows")
        return frame

    def _validation_split(self, y, rng, has_eval_set):
        if has_eval_set or not self.early_stopping:
            return np.arange(len(y)), None
        return validation_rows(y, rng, self.validation_fraction, stratify=is_classifier(self))

    def _tensors(self, frame, y=None, device="cpu"):
        """``(x_num, x_cat[, target])`` on ``device``; ``"fit"`` places the training table
        by :func:`dnnreg.training.devices.data_device` (on the GPU when it fits)."""
        enc = self.preprocessor_.transform(frame)
        out = [torch.from_numpy(enc.numeric), torch.from_numpy(enc.categorical)]
        if y is not None:
            out.append(torch.from_numpy(self._encode_target(y)))
        if device == "fit":
            device = data_device(sum(t.nbytes for t in out), self.device_)
        return tuple(t.to(device) for t in out)

    def _build_model(self) -> MLP:
        pre = self.preprocessor_
        d_numeric = len(pre.feature_names_out())
        embedding = None
        columns = pre.scaled_columns()
        kind = self.resolved_["numeric_embedding"]  # as recorded, never re-derived
        if kind != "none":
            embedding = NumericEmbedding(
                kind,
                columns=columns,
                d_numeric=d_numeric,
                d_embedding=int(self.numeric_embedding_dim),
                n_frequencies=int(self.embedding_frequencies),
                sigma=float(self.embedding_sigma),
                n_bins=int(self.embedding_bins),
                binning=self.embedding_binning,
            )
        return MLP(
            d_numeric=d_numeric,
            cardinalities=pre.cardinalities(),
            hidden_layer_sizes=tuple(int(s) for s in self.hidden_layer_sizes),
            activation=self.activation,
            dropout=self._dropout,
            normalization=self.normalization,
            residual=bool(self.residual),
            n_ensemble=int(self.n_ensemble),
            d_out=self.loss_.n_outputs(),
            ensemble_kind=self.ensemble_kind,
            numeric_embedding=embedding,
        )

    # ------------------------------------------------------------------ model file
    def to_state(self) -> dict:
        """What a model file holds about this fitted estimator, as plain data:
        ``weights`` (name -> NumPy array, on the CPU), ``preprocessor`` (the fitted
        preprocessing's state) and ``config`` (parameters, every resolved "auto", the
        architecture and the feature schema). :meth:`from_state` inverts it."""
        import torch

        from dnnreg._version import __version__
        from dnnreg.model_file import json_params

        check_is_fitted(self, "model_")
        scaler = getattr(self, "target_scaler_", None)
        weights = {
            k: v.detach().to("cpu", copy=True).contiguous().numpy()
            for k, v in self.model_.state_dict().items()
        }
        config = {
            "dnnreg_version": __version__,
            "torch_version": torch.__version__,
            "estimator": type(self).__name__,
            "params": json_params(self),
            "resolved": {
                **self.resolved_,
                "n_epochs": self.n_iter_,
                "best_epoch": self.best_epoch_,
                "fit_seconds": self.fit_seconds_,
            },
            "architecture": {
                "d_numeric": len(self.preprocessor_.feature_names_out()),
                "cardinalities": self.preprocessor_.cardinalities(),
                "d_out": self.loss_.n_outputs(),
            },
            "classes": self.classes_.tolist() if hasattr(self, "classes_") else None,
            "feature_schema": self.preprocessor_.schema(),
            "fitted_with_names": hasattr(self, "feature_names_in_"),
        }
        calibration = getattr(self, "calibration_", None)
        if calibration is not None:  # its arrays travel with the weights, under a prefix
            config["calibration"], arrays = calibration.to_state()
            weights.update(arrays)
        preprocessor = {
            "features": self.preprocessor_.to_dict(),
            "target": None if scaler is None else scaler.to_dict(),
        }
        return {"weights": weights, "preprocessor": preprocessor, "config": config}

    @classmethod
    def from_state(cls, config: dict, preprocessor, target_scaler, weights: dict):
        """A fitted estimator rebuilt from a model file's contents, on the CPU. The network
        is built from the recorded resolved values, never from today's "auto" rules, so a
        rule that changes later cannot change a saved model. Raises ``ValueError`` when the
        weights do not fit the recorded architecture."""
        import torch

        from dnnreg.model_file import params_from_json

        model = cls(**params_from_json(config["params"]))
        model.preprocessor_ = preprocessor
        if target_scaler is not None:
            model.target_scaler_ = target_scaler
        if config.get("classes") is not None:
            model.classes_ = np.asarray(config["classes"])
        model.loss_ = model._make_loss()
        model.resolved_ = _recorded(config, weights)
        model.batch_size_, model.max_iter_ = (
            model.resolved_["batch_size"],
            model.resolved_["max_iter"],
        )
        model.n_iter_, model.best_epoch_ = (
            model.resolved_["n_epochs"],
            model.resolved_["best_epoch"],
        )
        model.fit_seconds_, model.history_ = model.resolved_["fit_seconds"], []
        model.n_features_in_ = len(preprocessor.columns)
        if config["fitted_with_names"]:
            model.feature_names_in_ = np.asarray(preprocessor.columns, dtype=object)
        model.device_ = torch.device("cpu")
        model.model_ = model._build_model()
        if "calibration" in config:
            model.calibration_ = Calibration.from_state(config["calibration"], weights)
        net = {k: v for k, v in weights.items() if not k.startswith(CALIBRATION_PREFIX)}
        model.model_.load_state_dict(
            {k: torch.from_numpy(np.array(v)) for k, v in net.items()}, strict=True
        )
        model.model_.eval()
        return model

    # ------------------------------------------------------------------ predicting
    def _frame_for_predict(self, X):
        check_is_fitted(self, "model_")
        X = pandas_frame(X)
        if isinstance(X, pd.DataFrame) and hasattr(self, "feature_names_in_"):
            X = self.preprocessor_.select_columns(X)  # names the missing/extra columns
            validate_data(self, X, reset=False, skip_check_array=True)
            return X
        if not isinstance(X, pd.DataFrame):
            X = check_array(X, dtype=None, ensure_all_finite=False, accept_sparse=False)
        validate_data(self, X, reset=False, skip_check_array=True)
        frame = as_frame(X)
        frame.columns = self.preprocessor_.columns
        return frame

    def _outputs(self, X) -> torch.Tensor:
        """Every member's raw outputs for ``X``. Shape: ``(k, n, d_out)``."""
        return self._frame_outputs(self._frame_for_predict(X))

    def hidden_activations(self, X) -> list[np.ndarray]:
        """What each hidden layer computes for ``X``, in evaluation mode: one array per
        layer, first to last, of shape ``(n_ensemble, n_rows, width)`` (after the
        activation, the normalisation and any residual sum; no dropout). The features the
        network has learned, for probing, plotting or a linear read-out."""
        device = next(self.model_.parameters()).device
        x_num, x_cat = self._tensors(self._frame_for_predict(X), device=device)
        was_training = self.model_.training
        self.model_.eval()
        try:
            with torch.no_grad(), thread_scope(getattr(self, "n_threads", "auto"), max_age=1.0):
                states = self.model_.hidden_states(x_num, x_cat)
        finally:
            self.model_.train(was_training)
        return [s.float().cpu().numpy() for s in states]

    def _frame_outputs(self, frame) -> torch.Tensor:
        """:meth:`_outputs` for a frame already checked by :meth:`_frame_for_predict`."""
        x_num, x_cat = self._tensors(frame)
        # a prediction reuses a reading of the machine up to 1 s old (it costs ~0.5 ms)
        with thread_scope(getattr(self, "n_threads", "auto"), max_age=1.0):
            return forward_in_chunks(self.model_, x_num, x_cat)


def _recorded(config: dict, weights: dict) -> dict:
    """The resolved values a model file recorded. Files written before a value was recorded
    get it from what the file itself holds, never from today's rules: the embedding kind
    from the weights' names; the training-only values (patience, init) as unknown."""
    resolved = dict(config["resolved"])
    resolved.setdefault("max_iter", config["params"]["max_iter"])
    if "numeric_embedding" not in resolved:
        resolved["numeric_embedding"] = (
            "periodic"
            if "num_embedding.frequencies" in weights
            else "piecewise_linear"
            if "num_embedding.left" in weights
            else "none"
        )
    resolved.setdefault("n_iter_no_change", None)
    resolved.setdefault("init", None)
    resolved.setdefault("precision", config["params"].get("precision", "fp32"))
    return resolved


def _digest(frame, y, w) -> str:
    """A hex digest of a fit's table: what every rank of a torchrun fit must share."""
    import hashlib

    h = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    h.update(np.ascontiguousarray(np.asarray(y)).tobytes())
    if w is not None:
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def _check_bool(name, value):
    if isinstance(value, (bool, np.bool_)):
        return None
    return f"{name} must be True or False, got {name}={value!r}"


def _checked_weights(sample_weight, frame) -> np.ndarray:
    """``sample_weight`` as float64 of the frame's length (scikit-learn's own check), with
    one-line errors for the values no fit can use."""
    w = _check_sample_weight(sample_weight, frame, allow_all_zero_weights=True)
    if not np.isfinite(w).all():
        raise ValueError("sample_weight holds NaN or inf; give every row a finite weight")
    if (w < 0).any():
        raise ValueError(
            f"sample_weight holds negative values (min {w.min()!r}); weights must be >= 0"
        )
    if not (w > 0).any():
        raise ValueError("every sample_weight is zero; give some rows a positive weight")
    return w


def _mean_one(w: np.ndarray, device) -> torch.Tensor:
    """Row weights scaled to mean 1, as a float32 tensor on ``device``."""
    w = np.asarray(w, dtype=np.float64)
    return torch.from_numpy((w / w.mean()).astype(np.float32)).to(device)


class _FitWeights:
    """The row weights of one fit: ``train`` (tensor, mean 1, on the training table's
    device; ``None`` unweighted), ``train_np`` (the same as NumPy), ``val`` (the
    validation rows' weights as given, or ``None``)."""

    def __init__(self, train=None, train_np=None, val=None):
        self.train, self.train_np, self.val = train, train_np, val

    @classmethod
    def of(cls, w, w_val, device) -> "_FitWeights":
        if w is None:
            return cls(val=w_val)
        w_np = np.asarray(w, dtype=np.float64) / np.mean(w)
        return cls(_mean_one(w, device), w_np, w_val)
