"""Runtime pieces of the policy graph that need no ROS: the policy loop (observations in, chunks out)
and the policies it can drive besides the trained model (the twin's scripted expert)."""
