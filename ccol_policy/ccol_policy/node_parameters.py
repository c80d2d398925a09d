"""Node parameters from one table: each has one default and a description (`ros2 param describe`).

A node module holds a `PARAMETERS` table and declares it with `declare_parameters`; YAML files in ccol_bringup
carry only deployment overrides of these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class Param:
    default: Any
    description: str


def declare_parameters(node: Node, table: dict[str, Param]) -> None:
    """Declare every parameter of `table`; a whole number given for a float parameter (`rate_hz:=30`, as people
    type it) is taken as that float, anything else of the wrong type is refused with the parameter's name."""
    for name, param in table.items():
        if isinstance(param.default, float):
            descriptor = ParameterDescriptor(description=param.description, dynamic_typing=True)
            value = node.declare_parameter(name, param.default, descriptor).value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"parameter {name!r} must be a number, got {value!r}")
            if isinstance(value, int):
                node.set_parameters([Parameter(name, Parameter.Type.DOUBLE, float(value))])
        else:
            node.declare_parameter(name, param.default, ParameterDescriptor(description=param.description))
