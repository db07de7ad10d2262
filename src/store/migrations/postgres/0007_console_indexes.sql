-- The ops console lists payments newest first (all, by merchant, by out_trade_no) and counts
-- the last day's payments by account and status from the index alone.
CREATE INDEX payments_recent ON payments (created_at, provider, status);
CREATE INDEX payments_merchant_recent ON payments (merchant_id, created_at);
CREATE INDEX payments_out_trade_no ON payments (out_trade_no);
CREATE INDEX events_merchant ON events (merchant_id, seq);
