"""Simulation, the bottom layer: procedural and loaded bodies, batched physics backends
(MuJoCo on the CPU, MuJoCo Warp), tasks and the vector env, scene generation and digital
cousins. Imports nothing of models, real or the CLI (tests/test_architecture.py)."""
