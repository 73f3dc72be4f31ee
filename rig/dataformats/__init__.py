"""Dataset and message formats without ROS or torch: ROS 2 message conversions (rosbags typestores),
rosbag2 MCAP bag writing, and the LeRobot v3.0 dataset writer and reader.
"""
