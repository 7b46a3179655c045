"""The notification gateway: SMS and email through ordered providers with failover, the rules
checked before any provider is tried, delivery receipts, templates and reminders."""
