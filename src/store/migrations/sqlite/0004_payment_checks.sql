ALTER TABLE payments ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE payments ADD COLUMN next_check_at INTEGER;
ALTER TABLE payments ADD COLUMN checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN check_claimed_until INTEGER;
CREATE INDEX payments_checks ON payments (status, next_check_at);
