"""Command-line entry points, inside the package so an installed copy has them (console scripts
`latentsync`, `latentsync-train-unet`, `latentsync-train-syncnet`). `scripts/*.py` in a checkout are
shims onto these modules, so the official `python -m scripts.inference` keeps working from the repo root."""
