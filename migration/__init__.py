"""Migration tooling: the `resilient check` guard and the `resilient migrate` codemod.

Installed as ``resilient.migration``.  This package may import ``resilient``;
the runtime never imports it.  ``resilient check`` uses only the standard
library; ``resilient migrate`` needs the ``migrate`` extra (LibCST), imported
only when the command runs.
"""
