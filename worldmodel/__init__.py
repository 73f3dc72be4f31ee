"""A2World and A2World-sim: VAE, DiT, diffusion, data, training, rollouts, shadow predictor, metrics, checkpoint I/O."""
