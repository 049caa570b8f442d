"""The face gallery: enrolled people, their embeddings and crops, the decision threshold and the audit log."""

from edgepipe.apps.face.gallery.sqlite import FaceDB
from edgepipe.apps.face.gallery.transfer import export_encoder
from edgepipe.apps.face.gallery.values import (
    SCHEMA_VERSION,
    AuditEntry,
    DecisionThreshold,
    EncoderId,
    Enrolled,
    Person,
    check_name,
)

__all__ = [
    "SCHEMA_VERSION",
    "AuditEntry",
    "DecisionThreshold",
    "EncoderId",
    "Enrolled",
    "FaceDB",
    "Person",
    "check_name",
    "export_encoder",
]
