"""Theory: pure float64 math on numbers and arrays (no sampling, no files).

Layer 1 of 5, the bottom (docs/architecture.md): imports nothing from memphase.simulate or
memphase.analysis. critical is the entry point of the critical times (it re-exports rem and
finite_n); linear_model/ is the [H24] model.
"""
