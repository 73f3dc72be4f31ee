"""Teleoperation side of the rig: VR input, retargeting, episode recording and dataset export."""
