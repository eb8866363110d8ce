"""Training: LR schedules, LR scaling, optimizers and the training loop."""
