"""TensorBoard logging as a training callback: per epoch the scalars of the history
record (losses, validation metrics, learning rate), histograms of every layer's weights
and of its gradients on the epoch's last batch, and once the network graph.

View with ``tensorboard --logdir DIR``. Needs the ``tensorboard`` package (the
``tensorboard`` extra); torch writes the event files.
"""

from __future__ import annotations

import numbers
import warnings

from dnnreg._optional import import_optional
from dnnreg.notices import warn


class TensorBoardLogger:
    """Write one run's events under ``log_dir``. ``example = (x_num, x_cat)``: a few input
    rows, used to trace the network for the graph tab."""

    def __init__(self, log_dir, example):
        import_optional("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.example, self.epoch, self._grads = example, 0, {}

    def on_epoch_begin(self, model):
        if self.epoch == 0:
            self._graph(model)
        self.epoch += 1

    def _graph(self, model):
        was_training = model.training
        model.eval()
        try:
            with warnings.catch_warnings():
                # TensorBoard draws the graph with torch.jit.trace, deprecated in torch
                # 2.13 with no replacement in TensorBoard yet: ours to know, not the user's.
                # When torch removes it, add_graph fails and the warning below says so.
                warnings.filterwarnings(
                    "ignore", message=r"`torch\.jit\.trace", category=DeprecationWarning
                )
                self.writer.add_graph(model, self.example)
        except Exception as err:  # tracing is best effort: a missing graph must not stop training
            warn(f"tensorboard: could not trace the network graph ({err}); the scalars are logged")
        finally:
            model.train(was_training)

    def on_after_backward(self, model, last_in_epoch: bool):
        if last_in_epoch:
            self._grads = {
                name: p.grad.detach().cpu().clone()
                for name, p in model.named_parameters()
                if p.grad is not None
            }

    def on_epoch_end(self, record: dict, model):
        for key, value in record.items():
            if key != "epoch" and isinstance(value, numbers.Real):
                self.writer.add_scalar(key, value, self.epoch)
        for name, p in model.named_parameters():
            self.writer.add_histogram(f"weights/{name}", p.detach().cpu(), self.epoch)
        for name, g in self._grads.items():
            self.writer.add_histogram(f"gradients/{name}", g, self.epoch)
        self.writer.flush()

    def on_train_end(self, model):
        self.writer.close()
