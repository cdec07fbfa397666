-- Queries of the SQLite data key store. Every LIMIT is an expression, not a bare parameter: see
-- events.sql.

-- GetDataKey reads the entry of a subject: its wrapped data key or its tombstone.
-- name: GetDataKey :one
SELECT key_id, wrapped_key, forgotten_at
FROM data_keys
WHERE subject = sqlc.arg(subject);

-- InsertDataKey records a data key unless the subject has an entry already; the store then reads the
-- entry the subject has, whoever wrote it.
-- name: InsertDataKey :exec
INSERT INTO data_keys (subject, key_id, wrapped_key)
VALUES (sqlc.arg(subject), sqlc.arg(key_id), sqlc.arg(wrapped_key))
ON CONFLICT (subject) DO NOTHING;

-- ForgetDataKey replaces the subject's entry by a tombstone, or makes one; a tombstone keeps its date.
-- name: ForgetDataKey :exec
INSERT INTO data_keys AS k (subject, forgotten_at)
VALUES (sqlc.arg(subject), sqlc.arg(forgotten_at))
ON CONFLICT (subject) DO UPDATE
SET key_id = NULL, wrapped_key = NULL, forgotten_at = coalesce(k.forgotten_at, excluded.forgotten_at);

-- ListDataKeys reads a page of entries in subject order, for rewrapping and counting.
-- name: ListDataKeys :many
SELECT subject, key_id, wrapped_key, forgotten_at
FROM data_keys
WHERE subject > sqlc.arg(after)
ORDER BY subject
LIMIT +sqlc.arg(lim);

-- RewrapDataKey replaces one wrapped key, only where the subject's key is still wrapped by
-- previous_key_id (a tombstone's key_id is NULL: it never matches). The store runs it for a batch in
-- one transaction.
-- name: RewrapDataKey :execrows
UPDATE data_keys
SET key_id = sqlc.arg(key_id), wrapped_key = sqlc.arg(wrapped_key)
WHERE subject = sqlc.arg(subject) AND key_id = sqlc.arg(previous_key_id);
