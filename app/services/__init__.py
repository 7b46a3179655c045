"""Business rules. Each public function validates, changes state, records the audit entry and the
outbox event, and commits once, or raises and changes nothing."""
