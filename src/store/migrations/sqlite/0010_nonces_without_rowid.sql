-- Nonces keyed by (merchant_id, nonce) alone: WITHOUT ROWID keeps one b-tree for the table and
-- its key instead of a rowid table plus the key's index, one insert fewer per request.
CREATE TABLE nonces_by_key (
    merchant_id TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    seen_at     INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, nonce)
) WITHOUT ROWID;
INSERT INTO nonces_by_key (merchant_id, nonce, seen_at) SELECT merchant_id, nonce, seen_at FROM nonces;
DROP TABLE nonces;
ALTER TABLE nonces_by_key RENAME TO nonces;
CREATE INDEX nonces_seen ON nonces (seen_at);
