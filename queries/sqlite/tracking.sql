-- Queries of the tracking marks. Recording a mark is a compare-and-set on the consumer's prior mark:
-- the first mark is an INSERT (a mark recorded meanwhile makes it a unique violation), every later one
-- an UPDATE of the row that still holds the prior mark (a row that has moved on, or is gone, matches
-- nothing). The recorder reports both failures as conflicts.

-- name: InsertFirstTracking :exec
INSERT INTO tracking (consumer, upstream, notification_id)
VALUES (sqlc.arg(consumer), sqlc.arg(upstream), sqlc.arg(notification_id));

-- name: AdvanceTracking :execrows
UPDATE tracking
SET notification_id = sqlc.arg(notification_id)
WHERE consumer = sqlc.arg(consumer) AND upstream = sqlc.arg(upstream) AND notification_id = sqlc.arg(prior);

-- name: MaxTrackingID :one
SELECT CAST(coalesce(max(notification_id), 0) AS INTEGER) AS max_id
FROM tracking
WHERE consumer = sqlc.arg(consumer) AND upstream = sqlc.arg(upstream);

-- name: TrackingMarks :many
SELECT consumer, upstream, notification_id
FROM tracking
ORDER BY consumer, upstream;

-- name: DeleteTracking :exec
DELETE FROM tracking
WHERE consumer = sqlc.arg(consumer) AND upstream = sqlc.arg(upstream);
