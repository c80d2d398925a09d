from glob import glob

from setuptools import find_packages, setup

package_name = "ccol_policy"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/models", glob("models/*.yaml")),
    ],
    install_requires=[
        "numpy",
        "torch",
        "torchdiffeq",
        "transformers",
        "safetensors",
        "h5py",
        "pyyaml",
        "tqdm",
        "pyarrow",  # LeRobot datasets (ccol export-lerobot, training on LeRobot directories)
        "av",
        "matplotlib",
    ],
    zip_safe=True,
    maintainer="CCoL-ROS maintainers",
    maintainer_email="maintainers@ccol-ros.org",
    description="CCoL vision-language-action policy core and real-time policy node",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "ccol = ccol_policy.cli:main",
            "policy_node = ccol_policy.policy_node:main",
        ],
    },
)
