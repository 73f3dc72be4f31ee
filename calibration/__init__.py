"""Calibration of the rig: camera intrinsics, hand-eye (wrist and front cameras), dual-arm base registration.

`transforms` reads and writes config/calibration.yaml (the five calibrated transforms as 4x4 matrices),
`intrinsics` builds pinhole intrinsics from a RealSense profile or chessboard images, `target` detects
a calibration board and estimates its pose, `samples` reads recorded hand-eye samples, `hand_eye`
solves camera-to-flange (eye-in-hand) and camera-to-base (eye-to-hand) transforms, and
`base_registration` places each arm base in `world` from touched or observed points. Only numpy, scipy,
OpenCV and `rig` (schema, rotations, config) are used.
"""
