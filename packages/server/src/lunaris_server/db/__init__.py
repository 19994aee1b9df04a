from lunaris_server.db.base import Base, UTCDateTime
from lunaris_server.db.engine import Database

__all__ = ["Base", "Database", "UTCDateTime"]
