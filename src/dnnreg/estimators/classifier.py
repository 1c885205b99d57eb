"""``DNNClassifier``: the scikit-learn classifier of dnnreg (sigmoid + binary
cross-entropy for two classes, softmax + log-likelihood for more)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d

from dnnreg._validation import check_number
from dnnreg.estimators.base import _DNNBase, _store
from dnnreg.metrics import CLASSIFICATION_METRICS, class_index
from dnnreg.network.losses import CLASSIFICATION_LOSSES, make_loss
from dnnreg.options import _SHARED_ATTRIBUTES, _SHARED_PARAMETERS
from dnnreg.temperature import fit_temperature


class DNNClassifier(ClassifierMixin, _DNNBase):
    __doc__ = f"""Deep MLP classifier for tables, with the same preprocessing, network and
    training as :class:`DNNRegressor`.

    Two classes get one sigmoid output; more get a softmax over one output per class. The
    ensemble's probabilities are the mean of its members'.

    Its own defaults: ``learning_rate_init=3e-3``, ``numeric_embedding="none"``, a fixed
    ``max_iter=60`` with ``n_iter_no_change=20``, and label smoothing 0.05 followed by
    temperature scaling (both "auto": with cross-entropy). They were chosen on five
    classification tables (``bench/results/classifier_study.md``); the regressor's were
    chosen on ten regression tables.

    Parameters
    ----------
    loss : {{"cross_entropy", "sigmoid_mse"}}, default="cross_entropy"
        cross_entropy: binary cross-entropy on a sigmoid (two classes) or the softmax
        log-likelihood (more). sigmoid_mse: squared error between sigmoid outputs and the
        one-hot label, a deliberately poor pairing kept for comparison: it learns slowly
        where units saturate.{_SHARED_PARAMETERS}
    class_weight : None, "balanced" or dict, default=None
        Weights per class, multiplied into ``sample_weight``: "balanced" gives class c the
        weight ``n / (n_classes · n_c)`` (scikit-learn's rule), so every class carries the
        same total weight; a dict maps labels to weights (unlisted classes weigh 1). The
        validation loss and metrics that early stopping watches carry the same weights.
    label_smoothing : "auto" or float, default="auto"
        "auto": 0.05 with ``loss="cross_entropy"``, 0 with another loss. ε in [0, 1):
        train against labels that put ``1 - ε + ε/C`` on the true class and ``ε/C`` on
        each other (Szegedy et al. 2016; RealMLP-TD uses 0.1). Validation, early stopping
        and the reported log-loss keep the true labels. Measured on the five
        classification tables (``bench/results/classifier_study.md``): see the README.
    temperature_scaling : "auto" or bool, default="auto"
        "auto": True with ``loss="cross_entropy"``, False with another loss. After
        training, divide every logit by the one temperature ``T`` that maximises the
        likelihood of the rows the members did not train on (the out-of-fold rows under
        bagging, else the validation rows; Guo et al. 2017). Each member keeps its
        ranking of the classes (the ensemble average can move a few rows); the
        probabilities become as confident as the held-out rows justify. Under bagging a
        row is held out by fewer members than the ensemble averages, so there ``T`` only
        sharpens (``T <= 1``): averaging already softens. ``T`` is folded into the output
        layer, so saved models, the NumPy runtime and ONNX carry it; it is kept as
        ``temperature_`` (1.0 when not fitted or no rows were held out).

    Attributes
    ----------
    classes_ : ndarray
        The class labels, sorted.
    temperature_ : float
        The temperature folded into the output layer (``temperature_scaling``).{_SHARED_ATTRIBUTES}

    Examples
    --------
    >>> from dnnreg.tables.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DNNClassifier(hidden_layer_sizes=(64,), max_iter=5, random_state=0).fit(X, y)
    >>> clf.predict_proba(X.head(2)).shape
    (2, 10)
    """

    _losses = CLASSIFICATION_LOSSES
    _metrics = CLASSIFICATION_METRICS
    # batch_size="auto" aims at 16 steps per epoch, as measured on digits and MNIST.
    _auto_steps_per_epoch = 16

    def __init__(
        self,
        *,
        loss="cross_entropy",
        hidden_layer_sizes=(256, 256, 256),
        activation="relu",
        init="torch_default",
        dropout="auto",
        normalization="none",
        residual=False,
        n_ensemble=8,
        ensemble_kind="mlp_k",
        numeric_embedding="none",
        numeric_embedding_dim=16,
        embedding_frequencies=48,
        embedding_sigma=0.1,
        embedding_bins=48,
        embedding_binning="quantile",
        numeric_scaling="quantile",
        categorical_encoding="auto",
        categorical_features=None,
        solver="adamw",
        batch_size="auto",
        learning_rate_init=3e-3,
        momentum=0.9,
        adam_beta2=0.999,
        weight_decay=1e-4,
        alpha=0.0,
        l1=0.0,
        clip_grad_norm=None,
        clip_grad_value=None,
        lr_schedule="onecycle",
        lr_warmup=0.1,
        lr_step_size=20,
        lr_gamma=0.1,
        lr_patience=5,
        max_iter=60,
        early_stopping=True,
        early_stopping_metric="loss",
        validation_fraction=0.1,
        bagging=True,
        n_iter_no_change=20,
        restore_best_weights=True,
        max_time=None,
        diagnostics=False,
        tensorboard_dir=None,
        checkpoint_dir=None,
        checkpoint_every="auto",
        keep_checkpoint=False,
        device="auto",
        precision="auto",
        compile=False,
        n_threads="auto",
        max_memory_rows="auto",
        pretrain="none",
        pretrain_epochs=10,
        pretrain_lr=None,
        pretrain_noise=0.2,
        pretrain_noise_kind="mask",
        pretrain_sparsity=0.05,
        pretrain_sparsity_weight=0.1,
        pretrain_cd_k=1,
        wake_sleep_epochs=0,
        random_state=None,
        verbose=0,
        class_weight=None,
        label_smoothing="auto",
        temperature_scaling="auto",
    ):
        _store(self, locals())

    def _check_y(self, y):
        y = column_or_1d(
            check_array(y, ensure_2d=False, dtype=None, input_name="y", ensure_all_finite=True),
            warn=True,
        )
        check_classification_targets(y)
        return y

    def _with_class_weight(self, y, w):
        """``sample_weight`` times each row's ``class_weight`` (``None``: unchanged)."""
        if self.class_weight is None:
            return w
        from sklearn.utils.class_weight import compute_sample_weight

        per_row = compute_sample_weight(self.class_weight, y)
        return per_row if w is None else per_row * w

    def _check_task_params(self) -> list:
        cw = self.class_weight
        ok = cw is None or cw == "balanced" or isinstance(cw, dict)
        bad_cw = f"class_weight must be None, 'balanced' or a dict, got class_weight={cw!r}"
        eps, ts = self.label_smoothing, self.temperature_scaling
        bad_eps = (
            None
            if eps == "auto"
            else check_number("label_smoothing", eps, low=0, high=1, high_inclusive=False)
        )
        bad_ts = (
            None
            if ts == "auto" or isinstance(ts, (bool, np.bool_))
            else f"temperature_scaling must be 'auto', True or False, got {ts!r}"
        )
        other_loss = self.loss != "cross_entropy"
        return [
            bad_ts,
            None if ok else bad_cw,
            bad_eps,
            f"label_smoothing applies to loss='cross_entropy', not {self.loss!r}"
            if bad_eps is None and eps != "auto" and eps > 0 and other_loss
            else None,
            f"temperature_scaling applies to loss='cross_entropy', not {self.loss!r}"
            if ts is True and other_loss
            else None,
        ]

    def _fit_target(self, y, w=None):
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y has a single class ({self.classes_[0]!r}); a classifier "
                "needs at least 2 classes in the training rows"
            )
        if self.early_stopping_metric == "roc_auc" and len(self.classes_) != 2:
            raise ValueError(
                "early_stopping_metric='roc_auc' needs two classes, got "
                f"{len(self.classes_)}; use 'log_loss' or 'accuracy'"
            )

    def _fit_target_stats(self, stats, y_sample) -> None:
        """The classes of a streamed fit (:mod:`dnnreg.estimators.streaming`): every label
        of the training rows, counted in its statistics pass (the sample may miss a rare
        one), with :meth:`_fit_target`'s checks."""
        self._fit_target(stats.classes.index.to_numpy())

    def _make_loss(self):
        return make_loss(self.loss, n_classes=len(self.classes_))

    def _training_loss(self):
        eps = self.resolved_["label_smoothing"]
        return self.loss_.smoothed(eps) if eps > 0 else self.loss_

    def _after_fit(self, out, y_val, w_val=None):
        """Fit ``temperature_scaling``'s temperature on the held-out rows and fold it into
        every member's output layer; returns the outputs divided by it."""
        t = 1.0
        if self.resolved_["temperature_scaling"] and out is not None:
            logits = out.double().cpu().numpy()
            # Under bagging each held-out row has one member (of k) that did not train
            # on it, and the ensemble averages all k: averaging already softens, so a
            # temperature above 1 fitted on single members would soften twice (digits:
            # log-loss 0.070 -> 0.078). Such rows are trusted only to sharpen.
            head = self.model_.head
            one_per_row = len(logits) < head.weight.shape[0]  # fewer than the k members
            t = fit_temperature(
                logits, self._encode_target(y_val), w_val, at_most=1.0 if one_per_row else None
            )
            if t != 1.0:
                with torch.no_grad():
                    head.weight.div_(t)
                    head.bias.div_(t)
                out = out / t
        self.resolved_["temperature"] = t
        return out

    @property
    def temperature_(self) -> float:
        return float(self.resolved_.get("temperature", 1.0))

    def _encode_target(self, y):
        return class_index(self.classes_, y)

    def _metric_target(self, y):
        return self._encode_target(y)

    def _from_outputs(self, out) -> np.ndarray:
        """The ensemble's class probabilities. Shape: ``(n, C)``."""
        proba = self.loss_.predict(out).mean(0).double().cpu().numpy()
        return proba / proba.sum(axis=1, keepdims=True)  # exact in float64, not float32

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``. Shape: ``(n, C)``."""
        return self._from_outputs(self._outputs(X))

    def predict_log_proba(self, X) -> np.ndarray:
        return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row. Shape: ``(n,)``."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]
