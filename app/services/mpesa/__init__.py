"""M-Pesa business rules: settings, payments in (STK Push, paybill), loan disbursements (B2C),
callbacks, status checks, the suspense queue and statement reconciliation."""
