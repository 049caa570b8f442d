"""The face gallery: enrolled people, their embeddings and crops, the decision threshold and the audit log, in an
SQLite file (FaceDB) or on a PostgreSQL server (PostgresGallery); open_gallery picks by the location."""

from edgepipe.apps.face.gallery.location import describe, discard_new_gallery, gallery_exists, on_server, open_gallery
from edgepipe.apps.face.gallery.sqlite import FaceDB
from edgepipe.apps.face.gallery.store import GalleryStore, LiveGallery
from edgepipe.apps.face.gallery.transfer import export_encoder
from edgepipe.apps.face.gallery.values import (
    SCHEMA_VERSION,
    AuditEntry,
    DecisionThreshold,
    EncoderId,
    Enrolled,
    GalleryStatus,
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
    "GalleryStatus",
    "GalleryStore",
    "LiveGallery",
    "Person",
    "check_name",
    "describe",
    "discard_new_gallery",
    "export_encoder",
    "gallery_exists",
    "on_server",
    "open_gallery",
]
