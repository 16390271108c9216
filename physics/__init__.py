"""Theory: pure float64 math on numbers and arrays (no sampling, no files)."""
