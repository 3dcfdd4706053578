"""Simulation: bodies, batched physics backends, (later) scenes and tasks."""
