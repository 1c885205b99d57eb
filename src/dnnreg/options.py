"""The estimators' parameters in words: the documentation ``DNNRegressor`` and
``DNNClassifier`` share (each default, what it does, the paper behind it), and the named
presets. Plain text and dicts, so the docs can be read without torch."""

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
    dropout : float, default=0.15 (DNNClassifier: 0.0)
        Dropout probability after each hidden activation (Srivastava et al. 2014). With
        loss="quantile" or "gaussian_nll" it widens the learned spread (a nominal 80 %
        interval covered 89 % of test rows with 0.15, 82 % with 0): use 0 for calibrated
        intervals.
    normalization : {"none", "batch_norm", "layer_norm"}, default="none"
        Normalisation before each hidden activation.
    residual : bool, default=False
        Skip connections (a_out = a_in + block(a_in)) around every hidden layer whose input
        and output widths agree, i.e. all hidden layers after the first when they share a
        width. Lets gradients reach early layers of deep networks undiminished.
    n_ensemble : int, default=8 (DNNClassifier: 4)
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
    numeric_embedding : {"auto", "none", "periodic", "piecewise_linear"}, default="auto" (DNNClassifier: "none")
        "auto" is piecewise_linear for tables with at most 100 numeric columns and none
        above (pixels and other wide inputs, where the embedded width would be 16x the
        input) or with ``pretrain`` (which learns from the scaled inputs themselves). Embed each scaled numeric column as a vector before the first layer (Gorishniy,
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
    categorical_encoding : {"onehot", "embedding"}, default="onehot"
        "embedding" learns a dense vector per category (entity embeddings, Guo & Berkhahn
        2016), of width 1.6·c^0.56 capped at 16; better than one-hot for many categories.
    solver : str, default="adamw"
        AdamW (decoupled weight decay, Loshchilov & Hutter 2019) is what the tabular
        literature trains with. Or sgd, momentum, nesterov, adagrad, rmsprop, adam, or lbfgs (full batch, for
        small data; its line search sets the step, so learning_rate_init and the schedule
        are ignored). Update rules: :func:`dnnreg.training.optim.make_optimizer`.
    batch_size : int or "auto", default="auto"
        "auto" is ``n_train // 64`` within [16, 256] for DNNRegressor (about 64 steps per
        epoch, so small tables get small, noisy batches and enough updates) and
        ``n_train // 16`` within [16, 256] for DNNClassifier.
    learning_rate_init : float, default=1e-3
        Peak learning rate.
    momentum : float, default=0.9
        Momentum of the momentum and nesterov solvers.
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
        within [60, 300] (:func:`dnnreg.training.loop.auto_epochs`): a 200-row table then trains
        for 300 short epochs, California's 13,000 training rows for 62.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the training rows (or use ``eval_set``) and
        stop when ``early_stopping_metric`` has not improved for ``n_iter_no_change`` epochs
        (Prechelt 1998, "Early Stopping — But When?").
    early_stopping_metric : str
        "loss" (the training loss on the validation rows) or a metric: rmse, mae, r2 for
        regression; accuracy, log_loss, roc_auc (binary) for classification.
    validation_fraction : float, default=0.1
    n_iter_no_change : int or "auto", default="auto" (DNNClassifier: 20)
        Epochs without improvement before stopping; "auto" is half of the epochs. Under
        the one-cycle schedule the validation loss can stall while the rate is high and
        improve again as it anneals, so short patience stops too soon (on yacht 20 epochs
        of patience measured test RMSE 0.49, training to the end 0.42).
    restore_best_weights : bool, default=True
        Keep the weights of the best validation epoch rather than the last.
    max_time : float or None, default=None
        Stop after this many seconds of training.
    device : {"auto", "cpu", "cuda"}, default="auto"
        "auto" trains on the GPU when torch sees one; the training table moves there when
        it fits in half the free GPU memory, else batches are copied (:mod:`dnnreg.training.devices`).
    precision : {"fp32", "bf16"}, default="fp32"
        "bf16" runs training's matrix multiplies in bfloat16 under autocast (weights,
        optimiser state, loss and predictions stay fp32): 1.4-1.6x faster on CPUs with
        AVX512-BF16/AMX; emulated, hence slower, elsewhere. On an H100 it measured slower
        than fp32 for 3x256-4x1024 networks (launch-bound), so use it on GPUs for wide nets.
    compile : bool, default=False
        Train through ``torch.compile`` (inductor). Costs 3-15 s of compilation per fit
        and measured 0-25 % faster epochs on CPU: worth it for fits of minutes, not seconds.
    tensorboard_dir : str or None, default=None
        Write TensorBoard events there: scalars per epoch, weight and gradient histograms
        per layer, and the network graph (needs the ``tensorboard`` package).
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
        Log one line per epoch to the "dnnreg" logger when > 0."""

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
