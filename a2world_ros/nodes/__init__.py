"""ROS 2 nodes of the A2World rig: thin rclpy wrappers over plain components (docs/ros.md).

Only the `*_node.py` modules and `common.py` import rclpy; `bridges.py`, `convert.py`,
`observation_sync.py`, `policy_loop.py` and `topics.py` are plain Python and tested without ROS.
"""
