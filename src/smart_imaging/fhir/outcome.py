"""OperationOutcome (FHIR R4) for every error a FHIR route answers with."""

from __future__ import annotations

from typing import Any


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }
