"""Integration layer: the `a2world` command, ROS 2 nodes (in `nodes/`) and message conversions."""
