CREATE TABLE timeline (
    seq     BIGSERIAL PRIMARY KEY,
    subject TEXT NOT NULL,
    at_ms   BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX timeline_subject ON timeline (subject, seq);
