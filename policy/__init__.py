"""A2World-policy: joint video-action model, training, fast inference, policy server and client."""
