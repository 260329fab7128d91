"""Domain error tree.

    DomainError
    ├── KnowledgeError        a knowledge file is missing, malformed or inconsistent
    │                         (stops start-up)
    └── EvaluationError       the input cannot be evaluated
        └── NoPatientError    no patient could be identified in the input

Only ``service.api.errors`` (and the CLI) turn these into HTTP answers / exit codes.
"""

__all__ = ["DomainError", "EvaluationError", "KnowledgeError", "NoPatientError"]


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class KnowledgeError(DomainError):
    """A knowledge file failed validation; the service must not start with it."""


class EvaluationError(DomainError):
    """Valid input that cannot be evaluated."""


class NoPatientError(EvaluationError):
    """The input names no patient to evaluate."""
