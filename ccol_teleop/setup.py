from setuptools import find_packages, setup

package_name = "ccol_teleop"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["numpy", "rosbags>=0.10"],
    zip_safe=True,
    maintainer="CCoL-ROS maintainers",
    maintainer_email="maintainers@ccol-ros.org",
    description="Kinesthetic-teaching recorder and bag-to-dataset converter",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "recorder_node = ccol_teleop.recorder_node:main",
        ],
    },
)
