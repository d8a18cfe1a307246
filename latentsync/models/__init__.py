"""Neural network models: the 3-D U-Net, StableSyncNet, and checkpoint loading helpers.

Import from the submodules (`latentsync.models.unet`, `latentsync.models.stable_syncnet`, ...); this
package file stays import-free so that loading one model does not pull in the others.
"""
