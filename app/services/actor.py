"""Who is acting: a staff user, an API key, the system, or a callback. Recorded in the audit log."""

from dataclasses import dataclass

from app.models import ActorType


@dataclass(frozen=True)
class Actor:
    type: ActorType
    label: str
    id: int | None = None
    ip: str | None = None

    @classmethod
    def staff(cls, user, ip: str | None = None) -> "Actor":
        return cls(ActorType.STAFF, user.email, user.id, ip)

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(ActorType.SYSTEM, label)

    @classmethod
    def callback(cls, label: str, ip: str | None = None) -> "Actor":
        """A provider's callback (for example "mpesa:stk"), as the audit log names it."""
        return cls(ActorType.CALLBACK, label, None, ip)

    @property
    def staff_id(self) -> int | None:
        return self.id if self.type == ActorType.STAFF else None
