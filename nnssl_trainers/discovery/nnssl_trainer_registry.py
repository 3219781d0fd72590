"""Re-exports nnssl's trainers for nnU-Net's ``nnUNet_extTrainer`` lookup.

nnU-Net imports every module of the folder named in ``nnUNet_extTrainer`` under a top-level name
and looks the trainer class up by name; this folder holds only this module, so the lookup imports
nothing else and finds the very class objects of the ``nnssl_trainers`` package.
"""
from nnssl_trainers import *  # noqa: F401,F403
from nnssl_trainers import __all__  # noqa: F401
