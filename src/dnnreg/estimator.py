"""``DNNRegressor``: the scikit-learn face of dnnreg. Its ``__init__`` signature IS the
configuration: every default lives here, and ``get_params`` shows the real values."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import (check_array, check_consistent_length,
                                      check_is_fitted, column_or_1d, validate_data)

from ._validation import check_choice, check_number, raise_all
from .models import ACTIVATIONS, MLP
from .preprocessing import (CATEGORICAL_ENCODINGS, SCALINGS, TablePreprocessor,
                            TargetScaler, as_frame)
from .train import SCHEDULES, fit_model, predict_standardized

class DNNRegressor(RegressorMixin, BaseEstimator):
    """Deep MLP regressor for tables, with preprocessing built in.

    Numeric columns are median-imputed (with missing-value indicators) and scaled;
    categorical columns are one-hot encoded or embedded, with an "unknown" bucket for
    unseen or missing values; the target is standardized. All of it is fitted on the
    training rows only, and predictions come back in the target's original units.
    Training is AdamW with a one-cycle schedule and early stopping on a validation split
    that restores the best weights.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(256, 256, 256)
        Width of each hidden layer.
    activation : {"relu", "leaky_relu", "gelu", "silu", "tanh", "sigmoid", "identity"}
        Hidden-layer non-linearity, default "relu".
    dropout : float, default=0.0
        Dropout probability after each hidden activation.
    batch_norm : bool, default=False
        Batch normalisation before each hidden activation.
    n_ensemble : int, default=4
        Members trained as one model with batched matrix multiplies (TabM's "MLP^k",
        Gorishniy et al. 2024); the prediction is their mean. Averaging k independently
        initialised networks cuts variance: on California housing 4 members lower test
        RMSE by about 0.01 ($1k) over one.
    numeric_scaling : {"quantile", "robust", "standard"}, default="quantile"
        How numeric columns are scaled; "quantile" maps each to normal scores and is the
        most robust to the heavy tails common in tables.
    categorical_encoding : {"onehot", "embedding"}, default="onehot"
    batch_size : int or "auto", default="auto"
        "auto" is ``min(256, max(16, n_train // 16))``: at least 16 steps per epoch.
    learning_rate_init : float, default=1e-3
        Peak learning rate of AdamW.
    weight_decay : float, default=1e-4
        AdamW's decoupled weight decay on weight matrices.
    lr_schedule : {"onecycle", "cosine", "constant"}, default="onecycle"
    max_iter : int, default=60
        Maximum number of epochs.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the training rows (or use ``eval_set``) and
        keep the weights of the epoch with the lowest validation loss.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=20
        Epochs without improvement before stopping.
    max_time : float or None, default=None
        Stop after this many seconds of training.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
        Seed for the validation split, initialisation, shuffling and dropout; a fixed seed
        gives identical results on the same machine.
    verbose : int, default=0
        Log one line per epoch to the "dnnreg" logger when > 0.

    Attributes
    ----------
    model_ : torch.nn.Module
    preprocessor_ : TablePreprocessor
    target_scaler_ : TargetScaler
    history_ : list of dict
        Per-epoch ``train_loss``, ``lr``, ``val_loss``, ``val_rmse`` (target units), seconds.
    best_epoch_ : int
    batch_size_ : int
        The resolved batch size.
    fit_seconds_ : float

    Examples
    --------
    >>> from dnnreg.datasets import load_yacht_hydrodynamics
    >>> X, y = load_yacht_hydrodynamics(return_X_y=True)
    >>> model = DNNRegressor(hidden_layer_sizes=(32,), max_iter=5, random_state=0).fit(X, y)
    >>> model.predict(X.head(2)).shape
    (2,)
    """

    def __init__(self, *, hidden_layer_sizes=(256, 256, 256), activation="relu", dropout=0.0,
                 batch_norm=False, n_ensemble=4, numeric_scaling="quantile",
                 categorical_encoding="onehot", batch_size="auto", learning_rate_init=1e-3,
                 weight_decay=1e-4, lr_schedule="onecycle", max_iter=60, early_stopping=True,
                 validation_fraction=0.1, n_iter_no_change=20, max_time=None, device="auto",
                 random_state=None, verbose=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.n_ensemble = n_ensemble
        self.numeric_scaling = numeric_scaling
        self.categorical_encoding = categorical_encoding
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.max_time = max_time
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        sizes = self.hidden_layer_sizes
        sizes_ok = (isinstance(sizes, (tuple, list)) and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
            for s in sizes))
        raise_all([
            None if sizes_ok else ("hidden_layer_sizes must be a tuple of positive integers, "
                                   f"got hidden_layer_sizes={sizes!r}"),
            check_choice("activation", self.activation, ACTIVATIONS),
            check_number("dropout", self.dropout, low=0, high=1, high_inclusive=False),
            None if isinstance(self.batch_norm, (bool, np.bool_)) else
            f"batch_norm must be True or False, got batch_norm={self.batch_norm!r}",
            check_number("n_ensemble", self.n_ensemble, low=1, integer=True),
            check_choice("numeric_scaling", self.numeric_scaling, SCALINGS),
            check_choice("categorical_encoding", self.categorical_encoding,
                         CATEGORICAL_ENCODINGS),
            None if self.batch_size == "auto" else
            check_number("batch_size", self.batch_size, low=1, integer=True),
            check_number("learning_rate_init", self.learning_rate_init, low=0,
                         low_inclusive=False),
            check_number("weight_decay", self.weight_decay, low=0),
            check_choice("lr_schedule", self.lr_schedule, SCHEDULES),
            check_number("max_iter", self.max_iter, low=1, integer=True),
            check_number("validation_fraction", self.validation_fraction, low=0, high=1,
                         low_inclusive=False, high_inclusive=False),
            check_number("n_iter_no_change", self.n_iter_no_change, low=1, integer=True),
            None if self.max_time is None else
            check_number("max_time", self.max_time, low=0, low_inclusive=False),
            check_choice("device", self.device, ("auto", "cpu", "cuda")),
        ])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    def _check_y(self, y):
        y = column_or_1d(check_array(y, ensure_2d=False, dtype=np.float64,
                                     input_name="y"), warn=True)
        return y

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, *, eval_set=None):
        """Fit on ``X`` (array or DataFrame) and ``y``.

        Parameters
        ----------
        eval_set : tuple (X_val, y_val), optional
            Validation rows for early stopping; by default ``validation_fraction`` of the
            training rows are held out.
        """
        self._check_params()
        if y is None:
            raise ValueError("DNNRegressor requires y to be passed, but the target y is None")
        start = time.perf_counter()
        frame = self._frame_for_fit(X)
        y = self._check_y(y)
        check_consistent_length(frame, y)
        if len(y) < 2:
            raise ValueError(f"DNNRegressor needs at least 2 rows to fit, got 1 sample "
                             f"(n_samples={len(y)}); add rows")
        if np.all(y == y[0]):
            raise ValueError(f"y is constant ({y[0]!r}); there is nothing to learn, pick "
                             "another target")
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        train_rows, val_rows = self._validation_split(len(y), rng, eval_set is not None)
        val_frame, y_val = None, None
        if eval_set is not None:
            val_frame = as_frame(eval_set[0], columns=frame.columns)
            y_val = self._check_y(eval_set[1])
        elif val_rows is not None:
            val_frame, y_val = frame.iloc[val_rows], y[val_rows]
        frame, y = frame.iloc[train_rows], y[train_rows]

        self.preprocessor_ = TablePreprocessor(
            numeric_scaling=self.numeric_scaling,
            categorical_encoding=self.categorical_encoding).fit(frame)
        self.target_scaler_ = TargetScaler().fit(y)
        self.device_ = _resolve_device(self.device)
        self.batch_size_ = (min(256, max(16, len(y) // 16)) if self.batch_size == "auto"
                            else int(self.batch_size))
        train = self._tensors(frame, y)
        val = self._tensors(val_frame, y_val) if val_frame is not None else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            self.model_ = self._build_model().to(self.device_)
            self.model_.reset_parameters(generator)
            result = fit_model(
                self.model_, train, val, batch_size=self.batch_size_, max_iter=self.max_iter,
                lr=self.learning_rate_init, weight_decay=self.weight_decay,
                schedule=self.lr_schedule, n_iter_no_change=self.n_iter_no_change,
                max_time=self.max_time, generator=generator,
                target_std=self.target_scaler_.std,
                log_every=1 if self.verbose else 0)
        self.model_.eval()
        self.history_, self.best_epoch_ = result.history, result.best_epoch
        self.n_iter_ = len(result.history)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _frame_for_fit(self, X):
        if not isinstance(X, pd.DataFrame):
            X = check_array(X, dtype=None, ensure_all_finite=False, ensure_min_samples=1,
                            accept_sparse=False)
        validate_data(self, X, reset=True, skip_check_array=True)
        frame = as_frame(X)
        if frame.shape[0] == 0:
            raise ValueError("X has 0 rows; pass at least 2 rows")
        return frame

    def _validation_split(self, n, rng, has_eval_set):
        rows = np.arange(n)
        # Fewer than 10 rows cannot spare a validation split; train on all of them.
        if has_eval_set or not self.early_stopping or n < 10:
            return rows, None
        n_val = max(1, int(round(self.validation_fraction * n)))
        perm = rng.permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def _tensors(self, frame, y=None):
        enc = self.preprocessor_.transform(frame)
        out = [torch.from_numpy(enc.numeric).to(self.device_),
               torch.from_numpy(enc.categorical).to(self.device_)]
        if y is not None:
            z = self.target_scaler_.transform(y).astype(np.float32)
            out.append(torch.from_numpy(z).to(self.device_))
        return tuple(out)

    def _build_model(self) -> MLP:
        pre = self.preprocessor_
        return MLP(d_numeric=len(pre.feature_names_out()), cardinalities=pre.cardinalities(),
                   hidden_layer_sizes=tuple(int(s) for s in self.hidden_layer_sizes),
                   activation=self.activation, dropout=float(self.dropout),
                   batch_norm=bool(self.batch_norm), n_ensemble=int(self.n_ensemble))

    # ------------------------------------------------------------------ predicting
    def _frame_for_predict(self, X):
        check_is_fitted(self, "model_")
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

    def predict(self, X) -> np.ndarray:
        """Predictions in the target's original units. Shape: ``(n,)``."""
        frame = self._frame_for_predict(X)
        x_num, x_cat = self._tensors(frame)
        z = predict_standardized(self.model_, x_num, x_cat).double().cpu().numpy()
        return self.target_scaler_.inverse(z)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device must be 'cpu' or 'auto' on this machine (no CUDA GPU is "
                         "available), got device='cuda'")
    return torch.device(device)


