"""Task encoders: one vector per task for a task-conditioned policy.

The interface maps task ids (automimic env ids such as ``metaworld/push-v3``) to vectors, by
index into the policy's task vocabulary. The one implementation here is a learned embedding: the
text encoders on the package registry download their weights at run time, which cannot work on
machines without internet. A text encoder would implement the same interface, encoding each
task's name or instruction once (frozen) and projecting it, and would be selected by name through
:data:`ENCODERS`.
"""

from __future__ import annotations

import abc
from typing import Callable

import torch
from torch import nn


class TaskEncoder(nn.Module, abc.ABC):
    """Vectors ``(B, dim)`` for task indices ``(B,)`` into ``tasks``.

    Args:
        tasks: the task vocabulary (env ids), in index order.
        dim: width of a task vector.
    """

    def __init__(self, tasks: tuple[str, ...], dim: int) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.dim = dim

    @abc.abstractmethod
    def forward(self, index: torch.Tensor) -> torch.Tensor:
        """Task vectors ``(B, dim)`` for indices ``(B,)``."""

    @abc.abstractmethod
    def grown_state(self, old: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This encoder's state from ``old``, an encoder's state over a prefix of this vocabulary.

        Called when a pretrained policy meets a new task: the known tasks keep their vectors and
        each new one gets a starting vector.
        """


class LearnedTaskEmbedding(TaskEncoder):
    """One trained vector per task (``nn.Embedding``); a new task starts at the known tasks' mean,
    the point that commits it to none of them."""

    def __init__(self, tasks: tuple[str, ...], dim: int) -> None:
        super().__init__(tasks, dim)
        self.table = nn.Embedding(max(1, len(tasks)), dim)
        # Unit-scale rows would swamp a normalised observation of ~40 values; 0.1 lets the policy
        # lean on the state first and grow the task signal as the loss asks.
        nn.init.normal_(self.table.weight, std=0.1)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        """Rows of the embedding table."""
        return self.table(index)

    def grown_state(self, old: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Known rows copied; new rows set to their mean."""
        known = old["table.weight"]
        table = known.mean(0, keepdim=True).repeat(len(self.tasks), 1)
        table[: len(known)] = known
        return {"table.weight": table}


#: Task encoders by name (``policy_config.encoder`` of a multi-task policy).
ENCODERS: dict[str, Callable[[tuple[str, ...], int], TaskEncoder]] = {"learned": LearnedTaskEmbedding}
