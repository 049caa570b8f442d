"""Training: the course's optimizers and losses, a mini-batch loop with checkpoints, recipes per zoo model."""
