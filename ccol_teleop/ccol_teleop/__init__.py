"""Kinesthetic-teaching recorder (rosbag2 MCAP episodes) and the bag-to-dataset converter."""
