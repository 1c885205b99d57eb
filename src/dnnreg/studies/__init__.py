"""Studies built on the estimators: same-split evaluation and comparison against shallow
baselines, learning curves, hyperparameter tuning, the pretraining study."""
