"""Learning: PPO training, evaluation, residual RL, behaviour cloning and distillation into
the joint-token generalist, the joint-wise dynamics model, datasets, export and the
exported-policy runtime; the twin-against-cousins experiment (models/cousins).
May import sim, never real or the CLI."""
