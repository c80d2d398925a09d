"""CCoL policy: the ROS-free core (model, data, training, evaluation) and the policy node."""

__version__ = "0.1.0"
