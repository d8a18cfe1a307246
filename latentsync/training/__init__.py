"""Training: the U-Net trainer (stage 1 / stage 2) and the SyncNet trainer, and the parts they share.

- `settings`: the run config over configs/training/defaults.yaml, checked once into frozen typed records;
- `loop`: processes (accelerate), the run folder, the end of a run; `data_order`: the resumable sample order;
- `state`: checkpoints and the resume sidecar; `logs`: loss log, loss meter, charts; `ranks`: replica checks;
- `unet_trainer` (`unet_models`, `unet_step`, `unet_validation`) and `syncnet_trainer`: the two trainers' `main`.

The command lines are latentsync/cli/train_unet.py and train_syncnet.py; nothing here imports `latentsync.cli`.
"""
