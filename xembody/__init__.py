"""xembody: sim-to-real stack for embodiment-agnostic control."""

__version__ = "0.1.0"
