"""Where the computation runs, and nothing of the method: the device (CUDA, then MPS, then CPU), numeric
precision, the allocator, ``torchrun`` DistributedDataParallel, seeds, and the fused form of the AR decoder's
128-step recurrence (a speed-up proven equal to the plain loop in :mod:`loopgen.models.lstm_vae`).

May import :mod:`loopgen.errors` and torch only.
"""
