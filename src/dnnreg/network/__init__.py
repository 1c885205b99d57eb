"""The network wing (torch): layers, the ensemble MLP, numerical embeddings, losses and
their output heads. Shapes are stated on every forward: ``(k, n, d)`` is k members."""
