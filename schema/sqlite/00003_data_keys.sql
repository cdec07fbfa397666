-- The data key store (package datakey): one data key per subject, wrapped by the application's key
-- ring.

-- +goose Up

-- data_keys holds, per subject, its data key encrypted (AES-GCM) by the key ring's key key_id, or,
-- once the subject is forgotten, a tombstone: no key, and the time it was forgotten (Unix time in
-- microseconds). The tombstone keeps a forgotten subject from getting a new key, and tells "forgotten"
-- from "never had a key". TEXT compares byte-wise (BINARY collation), as Go compares strings, so that
-- the store can be read in pages.
--
-- A forgotten key's bytes may linger after the UPDATE that deletes them (in free pages, in the
-- write-ahead log, in backups): they are useless once the ring key that wrapped them is retired, which
-- is how forgetting reaches them (see package datakey).
CREATE TABLE data_keys (
    subject      TEXT    NOT NULL PRIMARY KEY,
    key_id       TEXT,
    wrapped_key  BLOB,
    forgotten_at INTEGER,
    CHECK (
        (key_id IS NOT NULL AND wrapped_key IS NOT NULL AND forgotten_at IS NULL)
        OR (key_id IS NULL AND wrapped_key IS NULL AND forgotten_at IS NOT NULL)
    )
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE data_keys;
