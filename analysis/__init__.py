"""Turn samples and trajectories into measurements; load results; draw figures."""
