"""custseg: customer segmentation experiments and serving.

The stages live in their own top-level packages (features -> training -> serving / monitoring);
this thin package holds what they share: the CLI, paths and configuration, and user-facing errors.
"""

__version__ = "0.1.0"
