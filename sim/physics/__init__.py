"""Batched physics backends behind one interface (see backend.py)."""
