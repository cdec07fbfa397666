-- Queries of the PostgreSQL data key store (see events.sql for the conventions).

-- GetDataKey reads the entry of a subject: its wrapped data key or its tombstone.
-- name: GetDataKey :one
SELECT key_id, wrapped_key, forgotten_at
FROM /* TEMPLATE: schema */data_keys
WHERE subject = sqlc.arg(subject);

-- InsertDataKey records a data key unless the subject has an entry already; the store then reads the
-- entry the subject has, whoever wrote it.
-- name: InsertDataKey :exec
INSERT INTO /* TEMPLATE: schema */data_keys (subject, key_id, wrapped_key)
VALUES (sqlc.arg(subject), sqlc.arg(key_id), sqlc.arg(wrapped_key))
ON CONFLICT (subject) DO NOTHING;

-- ForgetDataKey replaces the subject's entry by a tombstone, or makes one; a tombstone keeps its date.
-- name: ForgetDataKey :exec
INSERT INTO /* TEMPLATE: schema */data_keys AS k (subject, forgotten_at)
VALUES (sqlc.arg(subject), sqlc.arg(forgotten_at))
ON CONFLICT (subject) DO UPDATE
SET key_id = NULL, wrapped_key = NULL, forgotten_at = coalesce(k.forgotten_at, excluded.forgotten_at);

-- ListDataKeys reads a page of entries in subject order, for rewrapping and counting.
-- name: ListDataKeys :many
SELECT subject, key_id, wrapped_key, forgotten_at
FROM /* TEMPLATE: schema */data_keys
WHERE subject > sqlc.arg(after)
ORDER BY subject
LIMIT sqlc.arg(lim);

-- RewrapDataKeys replaces a batch of wrapped keys in one statement, each only where the subject's key
-- is still wrapped by previous_key_id (a tombstone's key_id is NULL: it never matches).
-- name: RewrapDataKeys :execrows
UPDATE /* TEMPLATE: schema */data_keys AS k
SET key_id = u.key_id, wrapped_key = u.wrapped_key
FROM (
    SELECT
        unnest(sqlc.arg(subjects)::_text::text[]) AS subject,
        unnest(sqlc.arg(previous_key_ids)::_text::text[]) AS previous_key_id,
        unnest(sqlc.arg(key_ids)::_text::text[]) AS key_id,
        unnest(sqlc.arg(wrapped_keys)::_bytea::bytea[]) AS wrapped_key
) AS u
WHERE k.subject = u.subject AND k.key_id = u.previous_key_id;
