ALTER TABLE events ADD COLUMN claimed_until INTEGER;
