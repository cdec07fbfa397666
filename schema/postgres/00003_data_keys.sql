-- The data key store (package datakey): one data key per subject, wrapped by the application's key
-- ring. Names carry the /* TEMPLATE: schema */ marker of 00001_create_tables.sql.

-- +goose Up

-- data_keys holds, per subject, its data key encrypted (AES-GCM) by the key ring's key key_id, or,
-- once the subject is forgotten, a tombstone: no key, and the time it was forgotten. The tombstone keeps
-- a forgotten subject from getting a new key, and tells "forgotten" from "never had a key". Subjects
-- sort byte-wise (COLLATE "C"), as Go compares strings, so that the store can be read in pages.
--
-- A forgotten key's bytes may linger after the UPDATE that deletes them (in the dead row version until
-- vacuum, in the write-ahead log, in backups): they are useless once the ring key that wrapped them is
-- retired, which is how forgetting reaches them (see package datakey).
CREATE TABLE /* TEMPLATE: schema */data_keys (
    subject      text COLLATE "C" NOT NULL,
    key_id       text,
    wrapped_key  bytea,
    forgotten_at timestamptz,
    CONSTRAINT data_keys_pkey PRIMARY KEY (subject),
    CONSTRAINT data_keys_key_or_tombstone CHECK (
        (key_id IS NOT NULL AND wrapped_key IS NOT NULL AND forgotten_at IS NULL)
        OR (key_id IS NULL AND wrapped_key IS NULL AND forgotten_at IS NOT NULL)
    )
);

-- +goose Down
DROP TABLE /* TEMPLATE: schema */data_keys;
