-- Queries of the PostgreSQL snapshot recorder (see events.sql for the conventions).

-- InsertSnapshots records a batch in one statement, so it is atomic without an explicit transaction.
-- name: InsertSnapshots :exec
INSERT INTO /* TEMPLATE: schema */snapshots (originator_id, originator_version, topic, state)
SELECT
    unnest(sqlc.arg(originator_ids)::_uuid::uuid[]),
    unnest(sqlc.arg(versions)::_int8::bigint[]),
    unnest(sqlc.arg(topics)::_text::text[]),
    unnest(sqlc.arg(states)::_bytea::bytea[]);

-- name: SelectSnapshots :many
SELECT originator_version, topic, state
FROM /* TEMPLATE: schema */snapshots
WHERE originator_id = sqlc.arg(originator_id)
  AND originator_version > sqlc.arg(after)
  AND originator_version <= sqlc.arg(up_to)
ORDER BY originator_version
LIMIT sqlc.narg(lim);

-- name: SelectSnapshotsDesc :many
SELECT originator_version, topic, state
FROM /* TEMPLATE: schema */snapshots
WHERE originator_id = sqlc.arg(originator_id)
  AND originator_version > sqlc.arg(after)
  AND originator_version <= sqlc.arg(up_to)
ORDER BY originator_version DESC
LIMIT sqlc.narg(lim);
