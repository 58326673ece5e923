"""Training, the outer ring: settings, optimizers, data sets, the loop, evaluation, checkpoints and run folders."""
