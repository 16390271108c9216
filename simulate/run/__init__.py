"""The run engine: job configs and their checks (config, config_bounds, slurm_options), the
shipped configs (bundled), cost estimates (cost), output files and locks (files), results with
provenance (store), and running one job in-process (runner). Sits above analysis/ beside the jobs
(simulate.experiments) and the sweep machinery (simulate.sweep); only the CLI sits above it.
Layer map: docs/architecture.md."""
