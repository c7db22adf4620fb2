"""The events the gateway's task registry folds, in one place for every service.

Every service declares the registry's queue with the rest of the base topology: a service that
starts before the gateway (on a new broker, say) would otherwise publish its first lifecycle
events and heartbeats into ``prs.unrouted``, where the registry never sees them.
"""

from __future__ import annotations

from prs_shared.messaging.deals import AUDIT_REPORT_GENERATED
from prs_shared.messaging.messages import HEARTBEAT, LIFECYCLE_STATUS_TYPES, TASK_OUTCOMES
from prs_shared.messaging.notifications import NOTIFICATION_FAILED, NOTIFICATION_SENT
from prs_shared.messaging.schedule import SCHEDULE_CHANGED

REGISTRY_SUBSCRIBER = "gateway-registry"
"""Its queue is ``<namespace>gateway-registry.events``."""

REGISTRY_TYPES: tuple[str, ...] = (
    *LIFECYCLE_STATUS_TYPES.values(),
    TASK_OUTCOMES.type,
    HEARTBEAT.type,
    AUDIT_REPORT_GENERATED.type,
    NOTIFICATION_SENT.type,
    NOTIFICATION_FAILED.type,
    SCHEDULE_CHANGED.type,
)
