"""Make things happen: data models, scores, networks, samplers, sweeps and the CLI."""
