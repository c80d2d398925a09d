"""ros2 launch ccol_sim sim.launch.py mode:=follow|kinesthetic instruction:="lift the pen"

The simulated Panda + RealSense (included by record.launch.py and policy.launch.py with use_sim:=true).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

ARGS = {
    "robot_type": ("panda", "joint-name prefix and driver row whose topics the simulator speaks"),
    "mode": ("follow", "follow (trajectory commands) or kinesthetic (scripted teacher + recorder services)"),
    "instruction": ("lift the pen", "kinesthetic: task the teacher demonstrates"),
    "episodes": ("10", "kinesthetic: demonstrations to record"),
    "image_width": ("640", "camera width"),
    "image_height": ("480", "camera height"),
}


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=d, description=doc) for name, (d, doc) in ARGS.items()]
    params = {
        "arm_id": LaunchConfiguration("robot_type"),
        "mode": LaunchConfiguration("mode"),
        "instruction": LaunchConfiguration("instruction"),
    }
    node = Node(
        package="ccol_sim",
        executable="sim_node",
        name="sim_node",
        output="screen",
        parameters=[
            params,
            {
                "episodes": LaunchConfiguration("episodes"),
                "image_width": LaunchConfiguration("image_width"),
                "image_height": LaunchConfiguration("image_height"),
            },
        ],
    )
    return LaunchDescription([*declared, node])
