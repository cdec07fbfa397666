-- Queries of the tracking marks (see events.sql for the conventions). Recording a mark goes through
-- events_append (AppendEvents with no events), so its compare-and-set lives in one place.

-- name: MaxTrackingID :one
SELECT coalesce(max(notification_id), 0)::bigint AS max_id
FROM /* TEMPLATE: schema */tracking
WHERE consumer = sqlc.arg(consumer) AND upstream = sqlc.arg(upstream);

-- name: TrackingMarks :many
SELECT consumer, upstream, notification_id
FROM /* TEMPLATE: schema */tracking
ORDER BY consumer, upstream;

-- name: DeleteTracking :exec
DELETE FROM /* TEMPLATE: schema */tracking
WHERE consumer = sqlc.arg(consumer) AND upstream = sqlc.arg(upstream);
