"""Errors that name the parameters of the function that raised them, so that each caller can name them its own way.

An API function says ``max_face 5 is below min_face 10``; the command line says ``--max-face 5 is below
--min-face 10`` for the same error. The message is written once, as a function of how parameters are named
(:class:`ParameterError`); ``str()`` names them as the API does, :meth:`ParameterError.named` as a caller does.
"""

from __future__ import annotations

from collections.abc import Callable

Naming = Callable[[str], str]  # a parameter's name -> how a message calls it


def as_parameter(name: str) -> str:
    return name


class ParameterError(ValueError):
    """Bad input to an API function, naming its parameters through a naming function::

        raise ParameterError(lambda n: f"{n('classes')} has no meaning with {n('teacher')}")

    ``str(error)``: ``classes has no meaning with teacher``; ``error.named(flag)``: the caller's names. A plain
    message (a ``str``) names no parameter and reads the same for every caller."""

    def __init__(self, message: str | Callable[[Naming], str]) -> None:
        self.message = message
        super().__init__(self.named(as_parameter))

    def named(self, name: Naming) -> str:
        """The message with each parameter called ``name(parameter)``."""
        return self.message if isinstance(self.message, str) else self.message(name)
