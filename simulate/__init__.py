"""Make things happen: data models, scores, networks, samplers, sweeps and the CLI.

Its rooms are layers (docs/architecture.md; tests/test_layers.py keeps them one-way):
- numerical core (layer 2, above physics): base (device, shared exception types, atomic writes;
  imports no other room), data, scores, sampling, learning;
- (layer 3 is memphase.analysis)
- run engine and jobs (layer 4): run (configs, cost, files, provenance), experiments (the jobs),
  sweep (planning, journal, backends);
- command line (layer 5, the top): cli; nothing else imports it.
"""
