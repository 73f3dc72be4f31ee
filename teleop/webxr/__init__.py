"""The WebXR operator page: served over HTTPS by the teleop process, input back over a WebSocket."""
