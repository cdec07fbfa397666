-- Queries of the SQLite recorders, compiled by sqlc into db/sqlite/internal/dbsqlc.
--
-- Optional bounds are passed as values that cannot exclude anything (up_to = max int64, lim = -1, which
-- SQLite reads as "no limit"), so each query has one static text and one cached prepared statement.
--
-- Every LIMIT is an expression (+param), never a bare parameter: SQLite plans with the value of a bare
-- LIMIT parameter, so it compiles the statement again whenever that parameter is bound anew or the
-- bindings are cleared, which database/sql drivers do after every query. The plans here do not depend
-- on the limit.
--
-- The reads return the topic as a BLOB (the same bytes: the database is UTF-8): a driver hands a TEXT
-- value over as a new string per row, where the recorder wants only the bytes, to find the string of
-- a topic it has read already (see db/sqlite/rows.go).

-- name: InsertEvent :execlastid
INSERT INTO events (originator_id, originator_version, topic, state)
VALUES (?, ?, ?, ?);

-- name: SelectEvents :many
SELECT originator_version, CAST(topic AS BLOB) AS topic, state
FROM events
WHERE originator_id = sqlc.arg(originator_id)
  AND originator_version > sqlc.arg(after)
  AND originator_version <= sqlc.arg(up_to)
ORDER BY originator_version
LIMIT +sqlc.arg(lim);

-- name: SelectEventsDesc :many
SELECT originator_version, CAST(topic AS BLOB) AS topic, state
FROM events
WHERE originator_id = sqlc.arg(originator_id)
  AND originator_version > sqlc.arg(after)
  AND originator_version <= sqlc.arg(up_to)
ORDER BY originator_version DESC
LIMIT +sqlc.arg(lim);

-- name: SelectNotifications :many
SELECT notification_id, originator_id, originator_version, CAST(topic AS BLOB) AS topic, state
FROM events
WHERE notification_id > sqlc.arg(after)
  AND notification_id <= sqlc.arg(up_to)
ORDER BY notification_id
LIMIT +sqlc.arg(lim);

-- SelectNotificationsByTopics is SelectNotifications with a topic filter; sqlc expands the slice into
-- one placeholder per topic, so the SQL text depends only on how many topics there are.
-- name: SelectNotificationsByTopics :many
SELECT notification_id, originator_id, originator_version, CAST(topic AS BLOB) AS topic, state
FROM events
WHERE notification_id > ?
  AND notification_id <= ?
  AND topic IN (sqlc.slice(topics))
ORDER BY notification_id
LIMIT +?;

-- name: MaxNotificationID :one
SELECT CAST(coalesce(max(notification_id), 0) AS INTEGER) AS max_id
FROM events;
