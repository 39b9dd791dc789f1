"""``python -m resilient.migration`` runs the ``resilient`` command."""

from ._cli import entry

entry()
