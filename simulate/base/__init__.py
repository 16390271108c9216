"""The bottom of simulate/: what every other room may import and that imports none of them.

device (the one device/dtype policy), rowselect (row-wise top-k), errors (the exception types
shared across layers: ConfigError, SweepError, Terminated), fs (atomic writes, fsync, folder
creation), step_progress (training steps reported to whatever progress bar listens).
Layer map: docs/architecture.md.
"""
