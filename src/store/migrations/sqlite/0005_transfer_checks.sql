ALTER TABLE refunds ADD COLUMN next_check_at INTEGER;
ALTER TABLE refunds ADD COLUMN checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refunds ADD COLUMN check_claimed_until INTEGER;
ALTER TABLE payouts ADD COLUMN next_check_at INTEGER;
ALTER TABLE payouts ADD COLUMN checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payouts ADD COLUMN check_claimed_until INTEGER;
CREATE INDEX payments_created ON payments (provider, created_at);
