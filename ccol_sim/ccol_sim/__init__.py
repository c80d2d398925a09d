"""Simulated Panda world for CCoL-ROS: MuJoCo scene, scripted teachers, ROS node and closed-loop evaluation."""
