from glob import glob

from setuptools import find_packages, setup

package_name = "ccol_sim"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
    ],
    install_requires=["numpy", "mujoco>=3.1"],
    zip_safe=True,
    maintainer="CCoL-ROS maintainers",
    maintainer_email="maintainers@ccol-ros.org",
    description="Simulated Panda world for CCoL-ROS",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_node = ccol_sim.sim_node:main",
        ],
        "ccol.commands": [  # ccol demo, sim-eval, ablate, sim-record; replay in the simulator (ccol_policy.cli)
            "sim = ccol_sim.cli:register",
        ],
    },
)
