-- Queries of the SQLite snapshot recorder. Every LIMIT is an expression, not a bare parameter: see
-- events.sql.

-- name: InsertSnapshot :exec
INSERT INTO snapshots (originator_id, originator_version, topic, state)
VALUES (?, ?, ?, ?);

-- name: SelectSnapshots :many
SELECT originator_version, CAST(topic AS BLOB) AS topic, state
FROM snapshots
WHERE originator_id = sqlc.arg(originator_id)
  AND originator_version > sqlc.arg(after)
  AND originator_version <= sqlc.arg(up_to)
ORDER BY originator_version
LIMIT +sqlc.arg(lim);

-- name: SelectSnapshotsDesc :many
SELECT originator_version, CAST(topic AS BLOB) AS topic, state
FROM snapshots
WHERE originator_id = sqlc.arg(originator_id)
  AND originator_version > sqlc.arg(after)
  AND originator_version <= sqlc.arg(up_to)
ORDER BY originator_version DESC
LIMIT +sqlc.arg(lim);
