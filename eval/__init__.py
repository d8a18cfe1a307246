"""Evaluation models and metrics (SyncNet confidence, FVD, HyperIQA, SyncNet accuracy).

Everything here is a library first: the data pipeline and training import the same functions the
command-line scripts use. Heavy dependencies are imported inside the functions that need them.
"""
