"""Node parameters from one table: each has one default and a description (`ros2 param describe`).

A node module holds a `PARAMETERS` table and declares it with `declare_parameters`; YAML files in ccol_bringup
carry only deployment overrides of these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node


@dataclass(frozen=True)
class Param:
    default: Any
    description: str


def declare_parameters(node: Node, table: dict[str, Param]) -> None:
    for name, param in table.items():
        node.declare_parameter(name, param.default, ParameterDescriptor(description=param.description))
