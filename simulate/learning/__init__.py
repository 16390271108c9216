"""Learned scores: noise-prediction networks (networks, conv_networks, noise_net), denoising
score matching (training, training_resume, checkpoints), the [BUBM25] DDPM protocol (ddpm) and
random-features model (random_features). Numerical core of simulate/: imports physics/ and the
other core rooms (base, data, scores, sampling), never analysis/, the run engine or the CLI.
Layer map: docs/architecture.md."""
