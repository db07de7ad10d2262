CREATE TABLE anomalies (
    seq        BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    provider   TEXT NOT NULL,
    detail     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, payment_id, provider)
);
CREATE INDEX anomalies_provider ON anomalies (provider, created_at);
CREATE INDEX anomalies_payment ON anomalies (payment_id);
