"""The saver core: the plan protocol, the ``BaseCheckpointSaver`` methods, the storage
model and the checks on what callers give. It imports no backend and no feature.
"""
