"""tribune: room control for classrooms, driven from the lectern PC."""

__version__ = "0.1.0"
