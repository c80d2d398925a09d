from glob import glob

from setuptools import setup

package_name = "ccol_bringup"

setup(
    name=package_name,
    version="0.1.0",
    packages=[package_name],
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
    ],
    install_requires=["pyyaml"],
    zip_safe=True,
    maintainer="CCoL-ROS maintainers",
    maintainer_email="maintainers@ccol-ros.org",
    description="Launch files and configuration of CCoL-ROS",
    license="Apache-2.0",
)
