"""The shadow predictor: while a policy runs, predict each executed chunk with the world model and score
the prediction against the real frames when they arrive (docs/shadow.md).

Plain Python (no ROS): `ShadowEngine` predicts and scores one chunk; `ShadowWorker` keeps only the newest
work, waits for the real frames and tracks throughput; `ShadowServer` / `ShadowClient` put the worker in
its own process (or on another machine) over ZeroMQ so control is never disturbed.
"""
