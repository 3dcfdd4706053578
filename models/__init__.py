"""Policies, residual RL, distillation, neural dynamics and export (to come)."""
