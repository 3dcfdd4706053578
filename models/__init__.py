"""Learning: PPO training, evaluation, residual RL, behaviour cloning and distillation into
the joint-token generalist, the joint-wise dynamics model, datasets, export and the
exported-policy runtime. May import sim, never real or the CLI."""
