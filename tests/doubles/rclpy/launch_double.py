"""Test double of the ROS 2 `launch` and `launch_ros` Python APIs used by our launch files, with their
documented constructor signatures, plus substitution evaluation against a `LaunchContext` so a test can
ask which nodes a given set of launch arguments starts and with which parameters.

`FindPackageShare(pkg)` resolves to `LaunchContext.package_share[pkg]` (a test sets it to the source
tree, which has the same config/ and launch/ layout as share/<pkg>/).
"""

from __future__ import annotations

import sys
import types
from typing import Any


class LaunchContext:
    """Holds launch configurations (argument values) and where package shares live."""

    def __init__(self, *, argv: list[str] | None = None, noninteractive: bool = False) -> None:
        self.launch_configurations: dict[str, str] = {}
        self.package_share: dict[str, str] = {}

    def perform_substitution(self, substitution: Any) -> str:
        return perform(substitution, self)


def perform(value: Any, context: LaunchContext) -> str:
    """Evaluate a substitution, a string, or a list of them (concatenated), like launch does."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "".join(perform(v, context) for v in value)
    return value.perform(context)


class Substitution:
    """Base class: `perform(context) -> str`."""

    def perform(self, context: LaunchContext) -> str:
        raise NotImplementedError


class TextSubstitution(Substitution):
    """`TextSubstitution(*, text)`."""

    def __init__(self, *, text: str) -> None:
        self.text = text

    def perform(self, context: LaunchContext) -> str:
        return self.text


class LaunchConfiguration(Substitution):
    """`LaunchConfiguration(variable_name, *, default=None)`: the value of a launch argument."""

    def __init__(self, variable_name: str, *, default: Any = None) -> None:
        self.variable_name = variable_name
        self.default = default

    def perform(self, context: LaunchContext) -> str:
        if self.variable_name in context.launch_configurations:
            return context.launch_configurations[self.variable_name]
        if self.default is None:
            raise KeyError(f"launch configuration '{self.variable_name}' does not exist")
        return perform(self.default, context)


class PathJoinSubstitution(Substitution):
    """`PathJoinSubstitution(substitutions)`: joins the parts with os.path.join."""

    def __init__(self, substitutions: list[Any]) -> None:
        self.substitutions = substitutions

    def perform(self, context: LaunchContext) -> str:
        import os

        return os.path.join(*[perform(s, context) for s in self.substitutions])


class PythonExpression(Substitution):
    """`PythonExpression(expression)`: evaluates the concatenated expression with Python's eval."""

    def __init__(self, expression: Any) -> None:
        self.expression = expression

    def perform(self, context: LaunchContext) -> str:
        import math

        return str(eval(perform(self.expression, context), {"math": math}))  # test double only


class FindPackageShare(Substitution):
    """`FindPackageShare(package)` (launch_ros.substitutions)."""

    def __init__(self, package: str) -> None:
        self.package = package

    def perform(self, context: LaunchContext) -> str:
        if self.package not in context.package_share:
            raise LookupError(f"package '{self.package}' not found")
        return context.package_share[self.package]


class Condition:
    """`evaluate(context) -> bool`."""

    def __init__(self, *, predicate: Any = None) -> None:
        self._predicate = predicate

    def evaluate(self, context: LaunchContext) -> bool:
        return bool(self._predicate(context))


def _truthy(text: str, what: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValueError(f"{what}: unknown condition value '{text}' (expected true/false/1/0)")


class IfCondition(Condition):
    """`IfCondition(predicate_expression)`: true when the expression evaluates to true/1."""

    def __init__(self, predicate_expression: Any) -> None:
        self.predicate_expression = predicate_expression
        super().__init__(predicate=lambda ctx: _truthy(perform(predicate_expression, ctx), "IfCondition"))


class UnlessCondition(Condition):
    """`UnlessCondition(predicate_expression)`."""

    def __init__(self, predicate_expression: Any) -> None:
        self.predicate_expression = predicate_expression
        super().__init__(predicate=lambda ctx: not _truthy(perform(predicate_expression, ctx), "UnlessCondition"))


class Action:
    """Base of launch actions: an optional `condition`."""

    def __init__(self, *, condition: Condition | None = None) -> None:
        self.condition = condition

    def enabled(self, context: LaunchContext) -> bool:
        return self.condition is None or self.condition.evaluate(context)


class DeclareLaunchArgument(Action):
    """`DeclareLaunchArgument(name, *, default_value=None, description=None, choices=None)`."""

    def __init__(self, name: str, *, default_value: Any = None, description: str | None = None,
                 choices: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.default_value = default_value
        self.description = description or "no description given"
        self.choices = choices

    def apply(self, context: LaunchContext) -> None:
        """Set the default unless a value was given; check `choices`, as launch does."""
        if self.name not in context.launch_configurations:
            if self.default_value is None:
                raise RuntimeError(f"Required launch argument '{self.name}' was not provided")
            context.launch_configurations[self.name] = perform(self.default_value, context)
        if self.choices is not None and context.launch_configurations[self.name] not in self.choices:
            raise RuntimeError(f"Argument '{self.name}' provided value "
                               f"'{context.launch_configurations[self.name]}' is not valid. "
                               f"Valid options are: {self.choices}")


class ExecuteProcess(Action):
    """`ExecuteProcess(*, cmd, name=None, cwd=None, env=None, output='log', ...)`."""

    def __init__(self, *, cmd: list[Any], name: str | None = None, cwd: Any = None, env: Any = None,
                 output: str = "log", shell: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cmd = cmd
        self.name = name
        self.output = output

    def command(self, context: LaunchContext) -> list[str]:
        return [perform(c, context) for c in self.cmd]


class ParameterValue:
    """`ParameterValue(value, *, value_type=None)` (launch_ros.parameter_descriptions)."""

    def __init__(self, value: Any, *, value_type: Any = None) -> None:
        self.value = value
        self.value_type = value_type

    def evaluate(self, context: LaunchContext) -> Any:
        text = perform(self.value, context)
        return self.value_type(text) if self.value_type is not None else text


class Node(Action):
    """`Node(*, executable, package=None, name=None, namespace=None, parameters=None, remappings=None,
    arguments=None, output='log', condition=None, ...)` (launch_ros.actions)."""

    def __init__(self, *, executable: Any, package: Any = None, name: Any = None, namespace: Any = None,
                 exec_name: Any = None, parameters: list[Any] | None = None, remappings: Any = None,
                 ros_arguments: Any = None, arguments: Any = None, output: str = "log", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.executable = executable
        self.package = package
        self.node_name = name
        self.namespace = namespace
        self.parameters = parameters or []
        self.remappings = remappings
        self.arguments = arguments
        self.output = output

    def parameter_sources(self, context: LaunchContext) -> list[Any]:
        """Each parameters entry evaluated: a file path (str) or a dict of evaluated values."""
        out: list[Any] = []
        for entry in self.parameters:
            if isinstance(entry, dict):
                out.append({k: (v.evaluate(context) if isinstance(v, ParameterValue) else
                                perform(v, context) if not isinstance(v, (bool, int, float)) else v)
                            for k, v in entry.items()})
            else:
                out.append(perform(entry, context))
        return out


class LaunchDescription:
    """`LaunchDescription(initial_entities=None)`."""

    def __init__(self, initial_entities: list[Any] | None = None, *, deprecated_reason: str | None = None) -> None:
        self.entities = list(initial_entities or [])

    def add_action(self, action: Any) -> None:
        self.entities.append(action)

    @property
    def launch_arguments(self) -> list[DeclareLaunchArgument]:
        return [e for e in self.entities if isinstance(e, DeclareLaunchArgument)]


def install() -> None:
    """Register `launch`, `launch.actions`, `launch.substitutions`, `launch.conditions`, `launch_ros`,
    `launch_ros.actions`, `launch_ros.substitutions`, `launch_ros.parameter_descriptions`."""
    def module(name: str, **attrs: Any) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
        return mod

    launch = module("launch", LaunchDescription=LaunchDescription, LaunchContext=LaunchContext,
                    Substitution=Substitution, Action=Action, Condition=Condition)
    launch.actions = module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument,
                            ExecuteProcess=ExecuteProcess)
    launch.substitutions = module("launch.substitutions", LaunchConfiguration=LaunchConfiguration,
                                  PathJoinSubstitution=PathJoinSubstitution, PythonExpression=PythonExpression,
                                  TextSubstitution=TextSubstitution)
    launch.conditions = module("launch.conditions", IfCondition=IfCondition, UnlessCondition=UnlessCondition)
    launch_ros = module("launch_ros")
    launch_ros.actions = module("launch_ros.actions", Node=Node)
    launch_ros.substitutions = module("launch_ros.substitutions", FindPackageShare=FindPackageShare)
    launch_ros.parameter_descriptions = module("launch_ros.parameter_descriptions", ParameterValue=ParameterValue)
