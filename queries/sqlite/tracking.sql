-- InsertTracking raises the mark of an application. When the new ID is not above the mark the upsert
-- changes nothing and affects no row, which the recorder reports as a conflict: one statement, no
-- read-then-write.
-- name: InsertTracking :execrows
INSERT INTO tracking (application_name, notification_id)
VALUES (sqlc.arg(application_name), sqlc.arg(notification_id))
ON CONFLICT (application_name) DO UPDATE
SET notification_id = excluded.notification_id
WHERE excluded.notification_id > tracking.notification_id;

-- name: MaxTrackingID :one
SELECT CAST(coalesce(max(notification_id), 0) AS INTEGER) AS max_id
FROM tracking
WHERE application_name = ?;
