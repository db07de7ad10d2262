-- The ops console lists payments newest first (all, by merchant, by out_trade_no), counts the
-- last day's payments by account and status from an index alone, and lists notifications
-- newest first by state, by merchant, and by merchant and state.
CREATE INDEX payments_recent ON payments (created_at, provider, status);
CREATE INDEX payments_merchant_recent ON payments (merchant_id, created_at);
CREATE INDEX payments_out_trade_no ON payments (out_trade_no);
CREATE INDEX events_state_recent ON events (state, seq);
CREATE INDEX events_merchant_state ON events (merchant_id, state, seq);
CREATE INDEX events_merchant ON events (merchant_id, seq);
