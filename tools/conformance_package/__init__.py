"""The PainPath conformance package (``fhir_profiles/``), generated from the knowledge files.

``python -m tools.conformance_package build`` writes it; ``check`` fails when the committed package
differs from what the generator produces. See ``package.py`` for what goes where.
"""

__all__: list[str] = []
