"""Every option of dnnreg in one torch-free place: the values each parameter allows, the
defaults of both estimators, the named presets, the documentation the estimators share,
the constants every engine shares, and :func:`resolve_auto`, the one function that turns
each "auto" into a value from the data before training.

The estimators' ``__init__`` signatures repeat the defaults (scikit-learn reads them from
there); a test holds them equal to :data:`DEFAULTS`. Lower layers import the vocabularies
from here, so an option's spelling is written once.
"""

import math

# ---------------------------------------------------------------------- shared constants
LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default
NORM_EPS = 1e-5  # torch's BatchNorm1d and LayerNorm default
VARIANCE_FLOOR = 1e-6  # gaussian_nll: σ² = softplus(s) + floor stays finite when over-confident
SOFTPLUS_THRESHOLD = 20.0  # torch's softplus returns z itself beyond this

# ---------------------------------------------------------------------- vocabularies
# The values each string option takes. The torch modules key their tables by these names,
# and tests/test_options.py holds each table's keys equal to its vocabulary.
ACTIVATIONS = (
    "identity",
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "gelu",
    "silu",
    "mish",
    "tanh",
    "sigmoid",
    "softplus",
)
INITS = (
    "auto",
    "he_normal",
    "he_uniform",
    "xavier_normal",
    "xavier_uniform",
    "lecun_normal",
    "lecun_uniform",
    "orthogonal",
    "torch_default",
)
INIT_ALIASES = {
    "kaiming_normal": "he_normal",
    "kaiming_uniform": "he_uniform",
    "glorot_normal": "xavier_normal",
    "glorot_uniform": "xavier_uniform",
}
NORMALIZATIONS = ("none", "batch_norm", "layer_norm")
ENSEMBLE_KINDS = ("mlp_k", "tabm", "tabm_mini")
NUMERIC_EMBEDDINGS = ("none", "periodic", "piecewise_linear")
BINNINGS = ("quantile", "tree")
SCALINGS = ("quantile", "robust", "smooth_clip", "standard")
CATEGORICAL_ENCODINGS = ("auto", "onehot", "embedding")
REGRESSION_LOSSES = ("mse", "mae", "huber", "quantile", "gaussian_nll", "poisson")
CLASSIFICATION_LOSSES = ("cross_entropy", "sigmoid_mse")
SOLVERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "lbfgs")
SCHEDULES = ("constant", "step", "exponential", "cosine", "onecycle", "reduce_on_plateau")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
PRETRAIN_MODES = ("none", "autoencoder", "denoising", "sparse", "rbm")
NOISE_KINDS = ("mask", "gaussian")

# ---------------------------------------------------------------------- "auto" rules
# Training length: enough optimiser steps for a small table, never fewer epochs than a
# large one needs (measured on the ten regression tables of bench/accuracy.py).
AUTO_STEPS = 4000
AUTO_EPOCHS = (60, 300)
# A table streamed from disk (larger than memory) has rows to spare and epochs that cost
# minutes: its "auto" epochs make about this many steps, at least 2 and at most the
# in-memory floor (bench/results/streaming.md: 20M rows, two epochs of 155,000 steps).
AUTO_STREAM_STEPS = 150_000
# dropout="auto": this rate in memory (chosen on the regression tables of bench/accuracy.py),
# none on a streamed table, where it degraded a long run (bench/results/streaming.md: 20M
# rows, test RMSE 1.1605 with 0.15 against 1.0018 without, worse from 40,000 steps on).
AUTO_DROPOUT = 0.15
# The classifier's label_smoothing="auto" with cross-entropy, followed by its
# temperature_scaling="auto": together higher accuracy and lower log-loss on the five
# classification tables than either alone (bench/results/classifier_study.md).
AUTO_LABEL_SMOOTHING = 0.05
# numeric_embedding="auto" embeds tables with at most this many scaled numeric columns.
AUTO_MAX_COLUMNS = 100
# Schedules with no planned end: "auto" epochs and patience let early stopping end them.
OPEN_ENDED_SCHEDULES = ("constant", "reduce_on_plateau")
OPEN_ENDED_PATIENCE = 16
_RELU_FAMILY = ("relu", "leaky_relu", "prelu", "elu", "gelu", "silu", "mish", "softplus")


def auto_batch_size(n_rows: int, steps_per_epoch: int) -> int:
    """``batch_size="auto"``: ``n_rows // steps_per_epoch`` within [16, 256], so that a
    mid-sized table still takes about ``steps_per_epoch`` steps per epoch.

    >>> auto_batch_size(197, 64), auto_batch_size(6123, 64), auto_batch_size(34522, 64)
    (16, 95, 256)
    """
    return min(256, max(16, n_rows // steps_per_epoch))


def auto_epochs(
    n_rows: int, batch_size: int, schedule: str = "onecycle", *, streamed: bool = False
) -> int:
    """``max_iter="auto"``: the epochs that make :data:`AUTO_STEPS` optimiser steps, within
    :data:`AUTO_EPOCHS`. Small tables need many epochs to take enough steps (yacht, 197
    rows, 13 steps per epoch: 300 epochs); large ones reach the floor (California, 65 steps
    per epoch: 62). A schedule that does not anneal to a planned end (``constant``,
    ``reduce_on_plateau``) gets the ceiling: early stopping ends it.

    >>> auto_epochs(197, 16), auto_epochs(13209, 206), auto_epochs(34522, 256)
    (300, 62, 60)
    >>> auto_epochs(13209, 206, "constant")
    300

    A streamed table (``streamed=True``) instead takes the epochs that make
    :data:`AUTO_STREAM_STEPS` steps, within [2, 60], whatever the schedule:

    >>> auto_epochs(20_000_000, 256, streamed=True), auto_epochs(3_000_000, 256, streamed=True)
    (2, 13)
    """
    low, high = AUTO_EPOCHS
    steps_per_epoch = math.ceil(n_rows / batch_size)
    if streamed:
        return int(min(low, max(2, math.ceil(AUTO_STREAM_STEPS / steps_per_epoch))))
    if schedule in OPEN_ENDED_SCHEDULES:
        return high
    return int(min(high, max(low, math.ceil(AUTO_STEPS / steps_per_epoch))))


def auto_patience(max_iter: int, schedule: str = "onecycle") -> int:
    """``n_iter_no_change="auto"``: a quarter of the epochs under a schedule that anneals
    to a planned end. Under one-cycle the validation loss can stall while the rate is high
    and improve again as it anneals, so a patience much shorter than the annealing stops
    too soon; read off one fit per table and seed trained to its end
    (bench/results/stopping.md, ten tables, seeds 0-2), a quarter of the epochs kept the
    very epoch half of them kept in all 30 fits at 0.91x the fit time (California 0.75x),
    a sixth still did (-0.2 %, 0.86x), an eighth lost 39 % on yacht and a fixed 16
    epochs 65 %. A quarter leaves one step of margin to that edge. At a constant rate
    nothing is planned for later, and :data:`OPEN_ENDED_PATIENCE` epochs (TabM's 16) end
    the run.

    >>> auto_patience(300), auto_patience(1), auto_patience(300, "constant")
    (75, 1, 16)
    """
    if schedule in OPEN_ENDED_SCHEDULES:
        return min(max_iter, OPEN_ENDED_PATIENCE)
    return max(1, max_iter // 4)


def resolve_embedding(option: str, n_columns: int) -> str:
    """The embedding behind ``option`` for a table with ``n_columns`` scaled numeric
    columns: "auto" is piecewise_linear up to :data:`AUTO_MAX_COLUMNS`, else none (the
    first layer's input would grow to 16 x the columns).

    >>> resolve_embedding("auto", 8), resolve_embedding("auto", 784)
    ('piecewise_linear', 'none')
    >>> resolve_embedding("periodic", 0)  # no numeric column: nothing to embed
    'none'
    >>> resolve_embedding("periodic", 3)
    'periodic'
    """
    if n_columns == 0:
        return "none"
    if option == "auto":
        return "piecewise_linear" if n_columns <= AUTO_MAX_COLUMNS else "none"
    return option


def resolve_init(init: str, activation: str) -> str:
    """The concrete scheme behind an alias or ``"auto"``.

    ``auto`` follows the papers that derived each scheme: He et al. (2015) for the ReLU
    family (variance 2/fan_in keeps the forward signal's scale through rectifiers), Glorot &
    Bengio (2010) for tanh, sigmoid and identity (variance 2/(fan_in + fan_out) keeps both
    the forward signal and the backward gradient near unit scale for near-linear units).

    >>> resolve_init("auto", "relu"), resolve_init("glorot_uniform", "tanh")
    ('he_normal', 'xavier_uniform')
    """
    init = INIT_ALIASES.get(init, init)
    if init != "auto":
        return init
    return "he_normal" if activation in _RELU_FAMILY else "xavier_uniform"


def resolve_auto(
    params: dict, *, n_train: int, n_scaled_numeric: int, steps_per_epoch: int,
    streamed: bool = False,
) -> dict:  # fmt: skip
    """Every "auto" (and alias) of ``params`` resolved from the data, before training:
    ``batch_size``, ``max_iter``, ``n_iter_no_change``, ``dropout``,
    ``numeric_embedding`` and ``init``, and the classifier's ``label_smoothing`` and
    ``temperature_scaling`` (with cross-entropy: 0.05 and True; else 0 and False).
    ``n_train`` is the training rows (after the validation split), ``n_scaled_numeric``
    the scaled numeric columns the preprocessor produced, and ``steps_per_epoch`` the
    estimator's batch rule (64 regression, 16 classification); ``streamed`` says the
    table is read from disk every epoch (:func:`auto_epochs`).

    The estimator records the result in the model file, and a loaded model is rebuilt
    from the recorded values, never from these rules, so changing a rule here never
    changes a saved model. Two decisions wait for the trained network:
    ``clip_predictions="auto"`` (on its validation RMSE; recorded in the target scaler)
    and the classifier's temperature (on its held-out log-loss; recorded as
    ``temperature`` and folded into the output layer). ``device="auto"`` needs torch to
    see the hardware and is resolved by :func:`dnnreg.training.devices.resolve_device`; a
    model always loads onto the CPU.

    >>> r = resolve_auto({"batch_size": "auto", "max_iter": "auto", "n_iter_no_change": "auto",
    ...                   "numeric_embedding": "auto", "pretrain": "none", "init": "auto",
    ...                   "activation": "relu"}, n_train=197, n_scaled_numeric=6,
    ...                  steps_per_epoch=64)
    >>> r == {"batch_size": 16, "max_iter": 300, "n_iter_no_change": 75, "dropout": 0.0,
    ...       "numeric_embedding": "piecewise_linear", "init": "he_normal"}
    True
    """
    batch = params["batch_size"]
    batch = auto_batch_size(n_train, steps_per_epoch) if batch == "auto" else int(batch)
    epochs = params["max_iter"]
    schedule = params.get("lr_schedule", "onecycle")
    if epochs == "auto":
        epochs = auto_epochs(n_train, batch, schedule, streamed=streamed)
    else:
        epochs = int(epochs)
    patience = params["n_iter_no_change"]
    patience = auto_patience(epochs, schedule) if patience == "auto" else int(patience)
    embedding = params["numeric_embedding"]
    dropout = params.get("dropout", 0.0)
    dropout = (0.0 if streamed else AUTO_DROPOUT) if dropout == "auto" else float(dropout)
    if embedding == "auto" and params["pretrain"] != "none":
        embedding = "none"  # layer-wise pretraining learns from the scaled inputs themselves
    return {
        "batch_size": batch,
        "max_iter": epochs,
        "n_iter_no_change": patience,
        "dropout": dropout,
        "numeric_embedding": resolve_embedding(embedding, n_scaled_numeric),
        "init": resolve_init(params["init"], params["activation"]),
        **_resolve_calibration(params),
    }


def _resolve_calibration(params: dict) -> dict:
    """The classifier's ``label_smoothing`` and ``temperature_scaling`` (absent from the
    regressor's parameters: nothing)."""
    if "label_smoothing" not in params:
        return {}
    ce = params["loss"] == "cross_entropy"
    eps, scale = params["label_smoothing"], params["temperature_scaling"]
    return {
        "label_smoothing": (AUTO_LABEL_SMOOTHING if ce else 0.0) if eps == "auto" else float(eps),
        "temperature_scaling": ce if scale == "auto" else bool(scale),
    }


_SHARED_PARAMETERS = """
    hidden_layer_sizes : tuple of int, default=(256, 256, 256)
        Width of each hidden layer.
    activation : str, default="relu"
        Hidden-layer non-linearity: identity, relu, leaky_relu (slope 0.01), prelu
        (learned slope per unit, starts at 0.25), elu, gelu, silu, mish, tanh, sigmoid,
        softplus. See the README's table for formulas and when to pick each.
    init : str, default="torch_default"
        Weight initialisation: he_normal, he_uniform (alias kaiming_*), xavier_normal,
        xavier_uniform (alias glorot_*), lecun_normal, lecun_uniform, orthogonal,
        torch_default (U(±1/√fan_in) for weights and biases, PyTorch's nn.Linear), or auto
        (He for the ReLU family, Xavier for tanh/sigmoid/identity). The gain follows the
        activation after each layer; the output layer uses the identity's gain.
    dropout : float or "auto", default="auto"
        Dropout probability after each hidden activation (Srivastava et al. 2014). "auto"
        is 0.15 on a table in memory and 0 on a table streamed from disk, where 0.15 made
        a long run worse and worse (20M rows: test RMSE 1.16 against 1.00 without). With
        loss="quantile" or "gaussian_nll" it widens the learned spread (a nominal 80 %
        interval covered 89 % of test rows with 0.15, 82 % with 0): use 0 for calibrated
        intervals.
    normalization : {"none", "batch_norm", "layer_norm"}, default="none"
        Normalisation before each hidden activation.
    residual : bool, default=False
        Skip connections (a_out = a_in + block(a_in)) around every hidden layer whose input
        and output widths agree, i.e. all hidden layers after the first when they share a
        width. Lets gradients reach early layers of deep networks undiminished.
    n_ensemble : int, default=8
        Members trained as one model with batched matrix multiplies (TabM's "MLP^k",
        Gorishniy et al. 2024); the prediction is their mean. Averaging k independently
        initialised networks cuts variance: on California housing 4 members lower test
        RMSE by about 0.01 ($1k) over one.
    ensemble_kind : {"mlp_k", "tabm", "tabm_mini"}, default="mlp_k"
        How members relate (Gorishniy et al. 2024, "TabM: Advancing Tabular Deep Learning
        with Parameter-Efficient Ensembling"). mlp_k: independent networks. tabm: one
        weight matrix per layer shared by all members, each member with its own rank-one
        adapters r, s and bias (BatchEnsemble, Wen et al. 2020), the first layer's r drawn
        as random signs; tabm_mini: only that first adapter r. Shared weights give k
        members for about one network's parameters; the compute per row stays k-fold.
    numeric_embedding : {"auto", "none", "periodic", "piecewise_linear"}, default="auto"
        (DNNClassifier: "none").
        "auto" is piecewise_linear for tables with at most 100 numeric columns and none
        above (pixels and other wide inputs, where the embedded width would be 16x the
        input) or with ``pretrain`` (which learns from the scaled inputs themselves).
        Embed each scaled numeric column as a vector before the first layer (Gorishniy,
        Rubachev & Babenko 2022, "On Embeddings for Numerical Features in Tabular Deep
        Learning"): periodic is their PLR, cos/sin of trained frequencies then a per-column
        linear map and ReLU; piecewise_linear is PLE-LR, a bin-wise linear "thermometer"
        code over ``embedding_bins`` training quantiles, then linear and ReLU. Shared by
        the members; missing indicators and one-hot columns pass through.
    numeric_embedding_dim : int, default=16
        Width of each embedded column.
    embedding_frequencies : int, default=48
        Frequencies per column (periodic).
    embedding_sigma : float, default=0.1
        Standard deviation of the initial frequencies (periodic), relative to the scaled
        inputs' unit spread: larger values start from a more oscillating basis.
    embedding_bins : int, default=48
        Bins per column (piecewise_linear); a column with fewer distinct values gets fewer.
    embedding_binning : {"quantile", "tree"}, default="quantile"
        Where the piecewise-linear bins' edges come from: the column's training quantiles,
        or the splits of a decision tree grown on that column against the target
        ("target-aware" PLE-T, Gorishniy et al. 2022). Measured on the ten regression
        tables of ``bench/accuracy.py`` (2 seeds): tree bins helped yacht, wine and
        concrete, cost airfoil and cpu_act, and changed California by under 0.5 %, so the
        default stays the unsupervised quantiles.
    numeric_scaling : {"quantile", "robust", "smooth_clip", "standard"}, default="quantile"
        How numeric columns are scaled; "quantile" maps each to normal scores and is the
        most robust to the heavy tails common in tables.
    categorical_encoding : {"auto", "onehot", "embedding"}, default="auto"
        "embedding" learns a dense vector per category (entity embeddings, Guo & Berkhahn
        2016), of width 1.6·c^0.56 capped at 16; "onehot" one 0/1 input per level.
        "auto" decides per column: levels seen only once pooled into the unknown
        bucket, one-hot up to 8 kept levels, an embedding beyond (RealMLP's rule).
        Measured in bench/categoricals.py: on 20,000 rows with a 6,000- and a
        3,000-level column that carry no signal, "onehot" took 673 s and 2.3 GB for test
        RMSE 1.371, "auto" 29 s and 0.6 GB for 1.084; on a California grid-cell column
        (1,581 levels) 82 s against 32 s at equal RMSE; where every one of 5,000 levels
        carries its own effect "onehot" stays 14 % ahead (0.690 against 0.787).
    categorical_features : None, list of str or int, or boolean mask, default=None
        Columns to treat as categorical whatever their dtype (integer codes such as zip
        codes or product ids), by name, by position, or as a mask over the columns.
        Columns whose values are not numbers are categorical anyway.
    solver : str, default="adamw"
        AdamW (decoupled weight decay, Loshchilov & Hutter 2019) is what the tabular
        literature trains with. Or sgd, momentum, nesterov, adagrad, rmsprop, adam, or
        lbfgs (full batch, for
        small data; its line search sets the step, so learning_rate_init and the schedule
        are ignored). Update rules: :func:`dnnreg.training.optim.make_optimizer`.
    batch_size : int or "auto", default="auto"
        "auto" is ``n_train // 64`` within [16, 256] for DNNRegressor (about 64 steps per
        epoch, so small tables get small, noisy batches and enough updates) and
        ``n_train // 16`` within [16, 256] for DNNClassifier.
    learning_rate_init : float, default=1e-3 (DNNClassifier: 3e-3)
        Peak learning rate.
    momentum : float, default=0.9
        Momentum of the momentum and nesterov solvers.
    adam_beta2 : float, default=0.999
        Decay of Adam's and AdamW's second-moment estimate (torch's default; RealMLP
        uses 0.95).
    weight_decay : float, default=1e-4
        The optimiser's decay of weight matrices (biases, norms and embeddings are never
        decayed): decoupled for adamw, L2 added to the gradient for the others.
    alpha : float, default=0.0
        L2 penalty (α/2)‖W‖² added to each member's loss.
    l1 : float, default=0.0
        L1 penalty λ₁‖W‖₁ added to each member's loss; drives weights to exactly zero.
    clip_grad_norm : float or None, default=None
        Rescale the gradient when its global norm exceeds this.
    clip_grad_value : float or None, default=None
        Clip each gradient entry to [-v, v].
    lr_schedule : str, default="onecycle"
        constant, step, exponential, cosine (with warm-up; Loshchilov & Hutter 2017),
        onecycle (warm-up then cosine annealing; Smith & Topin 2019), reduce_on_plateau;
        formulas in :func:`dnnreg.training.optim.lr_factor`.
    lr_warmup : float, default=0.1
        Fraction of the steps spent warming up (cosine, onecycle).
    lr_step_size : int, default=20
        Epochs between drops of the step schedule.
    lr_gamma : float, default=0.1
        Factor the rate falls by: per drop (step), by the end of training (exponential),
        per plateau (reduce_on_plateau).
    lr_patience : int, default=5
        Epochs without improvement before reduce_on_plateau lowers the rate.
    max_iter : int or "auto", default="auto" (DNNClassifier: 60)
        Maximum number of epochs. "auto" is the epochs that make 4,000 optimiser steps,
        within [60, 300] (:func:`dnnreg.options.auto_epochs`): a 200-row table then trains
        for 300 short epochs, California's 13,000 training rows for 62. A table streamed
        from disk takes the epochs that make 150,000 steps, within [2, 60].
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the training rows (or use ``eval_set``) and
        stop when ``early_stopping_metric`` has not improved for ``n_iter_no_change`` epochs
        (Prechelt 1998, "Early Stopping — But When?").
    early_stopping_metric : str
        "loss" (the training loss on the validation rows) or a metric: rmse, mae, r2 for
        regression; accuracy, log_loss, roc_auc (binary) for classification.
    validation_fraction : float, default=0.1
    bagging : bool, default=True
        Without ``eval_set``, hold out a different fold for each ensemble member instead
        of one shared validation split: member i early-stops on fold ``i mod F`` (F the
        largest divisor of ``n_ensemble`` up to 8) and trains on the rest, so every row
        trains most members. Early stopping watches the out-of-fold loss; the out-of-fold
        predictions are kept in ``oof_prediction_`` (:mod:`dnnreg.training.bagging`).
        Needs ``n_ensemble >= 2``; otherwise, and with ``eval_set``, the holdout is used.
    n_iter_no_change : int or "auto", default="auto" (DNNClassifier: 20)
        Epochs without improvement before stopping; "auto" is a quarter of the epochs
        (:func:`dnnreg.options.auto_patience`). Under the one-cycle schedule the
        validation loss can stall while the rate is high and improve again as it anneals,
        so short patience stops too soon (on yacht 20 epochs of patience measured test
        RMSE 0.49, training to the end 0.42).
    restore_best_weights : bool, default=True
        Keep the weights of the best validation epoch rather than the last.
    max_time : float or None, default=None
        Stop after this many seconds of training.
    device : {"auto", "cpu", "cuda"}, default="auto"
        "auto" trains on the GPU when torch sees one; the training table moves there when
        it fits in half the free GPU memory, else batches are copied
        (:mod:`dnnreg.training.devices`).
    precision : {"auto", "fp32", "bf16"}, default="auto"
        "bf16" runs training's matrix multiplies in bfloat16 under autocast (weights,
        optimiser state, loss and predictions stay fp32): 1.4-1.6x faster on CPUs with
        AVX512-BF16/AMX; emulated, hence slower, elsewhere. On an H100 it measured slower
        than fp32 for 3x256-4x1024 networks (launch-bound), so use it on GPUs for wide nets.
        "auto" is bf16 on a CPU with AMX for batches of 32 rows or more (measured 0.73-0.92x
        the fit time at the same accuracy there; below, the casts cost more than they
        save) and fp32 elsewhere; the choice is recorded in ``resolved_`` and the model.
    compile : bool, default=False
        Train through ``torch.compile`` (inductor). Costs 3-15 s of compilation per fit
        and measured 0-25 % faster epochs on CPU: worth it for fits of minutes, not seconds.
    n_threads : int or "auto", default="auto"
        torch's CPU threads during ``fit`` and ``predict`` (restored afterwards). "auto" uses
        the usable cores (affinity, cgroup quota) not taken by other runnable processes,
        re-read after every epoch: a second thread on a busy core makes every operation
        wait for it (:mod:`dnnreg.training.threads`).
    max_memory_rows : int or "auto", default="auto"
        A table given to ``fit`` as a path or a ``pyarrow.dataset.Dataset`` with more rows
        than this is streamed, never read whole (:mod:`dnnreg.estimators.streaming`):
        statistics from one pass and a sample, a hashed validation split, shuffled blocks
        read every epoch. "auto" allows a quarter of the available memory at 64 bytes per
        cell. A DataFrame or array is always in memory already.
    tensorboard_dir : str or None, default=None
        Write TensorBoard events there: scalars per epoch, weight and gradient histograms
        per layer, and the network graph (needs the ``tensorboard`` package).
    checkpoint_dir : str or None, default=None
        Write the whole training state there while training (weights, optimiser, schedule,
        early-stopping state, every random generator; :mod:`dnnreg.training.checkpoint`),
        so ``fit(..., resume=True)`` continues a killed or interrupted fit and gives the
        model an uninterrupted fit would have (bit for bit on the CPU). While it is set,
        Ctrl-C and SIGTERM stop the fit after the current batch with a checkpoint and
        ``TrainingInterrupted`` (a ``KeyboardInterrupt``). The CLI's ``train`` always
        checkpoints, into ``RUN/checkpoint``.
    checkpoint_every : int or "auto", default="auto"
        Every this many epochs; "auto" after the first 10 s of training, then no sooner
        than 50x the last write's time (at most 2 % of the fit).
    keep_checkpoint : bool, default=False
        Keep the checkpoint once the fit has finished (by default it is removed).
    diagnostics : bool, default=False
        Record per-layer gradient norms, weight norms, update ratios, activation
        statistics, dead and saturated units each epoch (in ``history_``), and log
        plain-language verdicts (``diagnostics_``) such as vanishing gradients.
    pretrain : {"none", "autoencoder", "denoising", "sparse", "rbm"}, default="none"
        Greedy layer-wise pretraining of the hidden layers without labels before
        fine-tuning (:mod:`dnnreg.training.pretrain`); uses the training rows and ``X_unlabeled``.
    pretrain_epochs, pretrain_lr, pretrain_noise, pretrain_sparsity, pretrain_sparsity_weight
        Per-layer settings: one value for every hidden layer, or a tuple with one per
        layer. Defaults 10 epochs; rate None = 1e-3 (Adam) for the autoencoders, 0.05 (CD
        with momentum) for RBMs; noise 0.2 (denoising);
        sparsity target 0.05 with weight 0.1 (sparse).
    pretrain_noise_kind : {"mask", "gaussian"}, default="mask"
    pretrain_cd_k : int, default=1
        Gibbs steps of contrastive divergence (rbm).
    wake_sleep_epochs : int, default=0
        With ``pretrain="rbm"`` and two or more hidden layers, tune the stack as a deep
        belief network by the up-down (wake-sleep) algorithm for this many epochs.
    random_state : int, RandomState or None, default=None
        Seed for the validation split, initialisation, shuffling and dropout; a fixed seed
        gives identical results on the same machine.
    verbose : int, default=0
        1: one line per epoch on stderr (epoch, losses, the first validation metric,
        seconds); 2: also a line of the resolved settings before training, and every
        validation metric and the thread count per epoch. The lines are records of the
        "dnnreg" logger: when the user's logging already shows its INFO records they go
        there instead, once. 0: silent; conditions to act on are Python warnings."""

_SHARED_ATTRIBUTES = """
    model_ : torch.nn.Module
    preprocessor_ : TablePreprocessor
    history_ : list of dict
        Per epoch: ``train_loss``, ``lr``, ``seconds`` and, with a validation set,
        ``val_loss`` and every ``val_<metric>``.
    best_epoch_ : int
    n_iter_ : int
        Epochs run.
    batch_size_ : int
        The resolved batch size.
    fit_seconds_ : float"""


# Named bundles of settings (see ``from_preset``); "default" is the __init__ defaults.
PRESETS = {
    "fast": {"n_ensemble": 1, "numeric_embedding": "none", "dropout": 0.0},
    "default": {},
}
# No "best" bundle yet: 16 members measured 0.4473 on California (seed 0) against the
# defaults' 0.4440, so more members alone do not earn the name.


# ---------------------------------------------------------------------- the option table
# name -> (DNNRegressor's default, what it allows: a vocabulary or the rule in words). The
# estimators' __init__ signatures repeat these defaults (scikit-learn reads them there) and
# their check_params enforces the rules; tests/test_options.py holds all three equal.
OPTIONS = {
    "loss": ("mse", REGRESSION_LOSSES),
    "huber_delta": (1.0, "a number > 0"),
    "quantiles": ((0.1, 0.5, 0.9), "an increasing tuple of levels in (0, 1)"),
    "standardize_target": (True, "True or False"),
    "clip_predictions": ("auto", "True, False or 'auto'"),
    "hidden_layer_sizes": ((256, 256, 256), "a tuple of positive integers"),
    "activation": ("relu", ACTIVATIONS),
    "init": ("torch_default", INITS + tuple(INIT_ALIASES)),
    "dropout": ("auto", "a number in [0, 1) or 'auto'"),
    "normalization": ("none", NORMALIZATIONS),
    "residual": (False, "True or False"),
    "n_ensemble": (8, "an integer >= 1"),
    "ensemble_kind": ("mlp_k", ENSEMBLE_KINDS),
    "numeric_embedding": ("auto", ("auto",) + NUMERIC_EMBEDDINGS),
    "numeric_embedding_dim": (16, "an integer >= 1"),
    "embedding_frequencies": (48, "an integer >= 1"),
    "embedding_sigma": (0.1, "a number > 0"),
    "embedding_bins": (48, "an integer >= 1"),
    "embedding_binning": ("quantile", BINNINGS),
    "numeric_scaling": ("quantile", SCALINGS),
    "categorical_encoding": ("auto", CATEGORICAL_ENCODINGS),
    "categorical_features": (None, "None, column names or positions, or a boolean mask"),
    "solver": ("adamw", SOLVERS),
    "batch_size": ("auto", "an integer >= 1 or 'auto'"),
    "learning_rate_init": (1e-3, "a number > 0"),
    "momentum": (0.9, "a number in [0, 1)"),
    "adam_beta2": (0.999, "a number in [0, 1)"),
    "weight_decay": (1e-4, "a number >= 0"),
    "alpha": (0.0, "a number >= 0"),
    "l1": (0.0, "a number >= 0"),
    "clip_grad_norm": (None, "a number > 0 or None"),
    "clip_grad_value": (None, "a number > 0 or None"),
    "lr_schedule": ("onecycle", SCHEDULES),
    "lr_warmup": (0.1, "a number in [0, 1)"),
    "lr_step_size": (20, "an integer >= 1"),
    "lr_gamma": (0.1, "a number in (0, 1]"),
    "lr_patience": (5, "an integer >= 0"),
    "max_iter": ("auto", "an integer >= 1 or 'auto'"),
    "early_stopping": (True, "True or False"),
    "early_stopping_metric": ("loss", "'loss' or a metric of the task"),
    "validation_fraction": (0.1, "a number in (0, 1)"),
    "bagging": (True, "True or False"),
    "n_iter_no_change": ("auto", "an integer >= 1 or 'auto'"),
    "restore_best_weights": (True, "True or False"),
    "max_time": (None, "a number > 0 or None"),
    "diagnostics": (False, "True or False"),
    "tensorboard_dir": (None, "a path or None"),
    "checkpoint_dir": (None, "a path or None"),
    "checkpoint_every": ("auto", "an integer >= 1 or 'auto'"),
    "keep_checkpoint": (False, "True or False"),
    "device": ("auto", "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    "precision": ("auto", PRECISIONS),
    "compile": (False, "True or False"),
    "n_threads": ("auto", "an integer >= 1 or 'auto'"),
    "max_memory_rows": ("auto", "an integer >= 2 or 'auto'"),
    "pretrain": ("none", PRETRAIN_MODES),
    "pretrain_epochs": (10, "an integer >= 0, or one per hidden layer"),
    "pretrain_lr": (None, "a number > 0, one per hidden layer, or None"),
    "pretrain_noise": (0.2, "a number >= 0, or one per hidden layer"),
    "pretrain_noise_kind": ("mask", NOISE_KINDS),
    "pretrain_sparsity": (0.05, "a number >= 0, or one per hidden layer"),
    "pretrain_sparsity_weight": (0.1, "a number >= 0, or one per hidden layer"),
    "pretrain_cd_k": (1, "an integer >= 1"),
    "wake_sleep_epochs": (0, "an integer >= 0"),
    "random_state": (None, "an integer, a RandomState or None"),
    "verbose": (0, "an integer"),
    "class_weight": (None, "None, 'balanced' or a dict {class: weight}"),
    "label_smoothing": ("auto", "'auto' (0.05 with cross_entropy, else 0) or a number in [0, 1)"),
    "temperature_scaling": ("auto", "'auto' (True with cross_entropy), True or False"),
}
CLASSIFICATION_ONLY = ("class_weight", "label_smoothing", "temperature_scaling")
REGRESSION_ONLY = ("huber_delta", "quantiles", "standardize_target", "clip_predictions")
# The classifier's own defaults, chosen on the five classification tables of
# bench/classification.py (digits, MNIST-5k, adult, magic telescope, letter recognition;
# seeds 0-1, results/classifier_study.md): dropout "auto" (0.15 in memory), 8 members and a
# learning rate of 3e-3 together cut the geo-mean test error / per-table best from 1.455
# to 1.194 and the log-loss from 1.405 to 1.178 against the earlier 0.0 / 4 / 1e-3; each
# alone helped less. Label smoothing 0.05 with temperature scaling (the classifier's own
# "auto" options) then took them to 1.032 and 1.028 (18 models compared). The regressor's
# piecewise-linear embedding did not help here (1.158 / 1.175; better on adult only), nor
# did early stopping on accuracy (1.046 / 1.033), and a fixed 60 epochs with patience 20
# did as well as 200 with patience 40. Bagging is on, as for the regressor (lower log-loss
# on all four tables first measured).
CLASSIFIER_DEFAULTS = {
    "loss": "cross_entropy",
    "learning_rate_init": 3e-3,
    "numeric_embedding": "none",
    "max_iter": 60,
    "n_iter_no_change": 20,
    "bagging": True,
}
DEFAULTS = {
    "DNNRegressor": {
        name: default for name, (default, _) in OPTIONS.items() if name not in CLASSIFICATION_ONLY
    },
    "DNNClassifier": {
        **{name: default for name, (default, _) in OPTIONS.items() if name not in REGRESSION_ONLY},
        **CLASSIFIER_DEFAULTS,
    },
}
