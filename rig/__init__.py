"""The robot side without ROS: schema and conventions, drivers, the MuJoCo twin, timing, executor, guard."""
