"""The training wing (torch): the loop, optimisers and schedules, devices and precision,
layer-wise pretraining, and the callbacks that plug into the loop (diagnostics,
TensorBoard). The loop never imports a callback: the estimator hands them in."""
