"""SMS and email provider clients (one module each) behind one small interface, and the
verification of their delivery webhooks. Plain clients: no database, no Flask, no retries of
their own; the notification gateway (app/services/notifications/) decides what to do with an
outcome."""
