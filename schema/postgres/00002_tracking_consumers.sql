-- Tracking marks are kept per consumer and upstream, so that any number of projections and process
-- applications share one schema, each with marks of its own; and recording a mark becomes a
-- compare-and-set on the consumer's prior mark, so that a transaction covering a batch of
-- notifications cannot commit over another instance's batch.
--
-- The marks recorded before this migration had no consumer: they move to the consumer named '' with
-- their values, and a consumer takes them over by renaming them (esctl tracking adopt), or by being
-- named '' itself.
--
-- Object names carry the /* TEMPLATE: schema */ marker, as in the first migration; no string literal
-- does, because goose (and the goose command-line tool) leaves text inside literals as it is.

-- +goose Up
ALTER TABLE /* TEMPLATE: schema */tracking RENAME COLUMN application_name TO upstream;
ALTER TABLE /* TEMPLATE: schema */tracking ADD COLUMN consumer text NOT NULL DEFAULT '';
ALTER TABLE /* TEMPLATE: schema */tracking ALTER COLUMN consumer DROP DEFAULT;
ALTER TABLE /* TEMPLATE: schema */tracking DROP CONSTRAINT tracking_pkey;
ALTER TABLE /* TEMPLATE: schema */tracking ADD CONSTRAINT tracking_pkey PRIMARY KEY (consumer, upstream);

DROP FUNCTION /* TEMPLATE: schema */events_append(text, text, uuid[], bigint[], text[], bytea[], text, bigint);

-- events_append records a batch of events and, optionally, a tracking mark, in one call (see the first
-- migration for the orderings and the critical section of the xid ordering, which are unchanged).
--
-- The tracking mark of p_consumer for p_upstream moves from p_prior to p_tracking_id, or the call fails
-- with ES001: the first mark is inserted (a mark recorded meanwhile conflicts), a later one updates the
-- row that still holds p_prior (under READ COMMITTED, an update that waited for a concurrent one
-- re-reads the row, finds it moved on, and updates nothing).
--
-- The sequence is found through its own tableoid rather than a regclass literal, so that the function
-- works wherever the migration put it, with or without a schema.
-- +goose StatementBegin
CREATE FUNCTION /* TEMPLATE: schema */events_append(
    p_ordering         text,
    p_lock_timeout     text,
    p_originator_ids   uuid[],
    p_versions         bigint[],
    p_topics           text[],
    p_states           bytea[],
    p_consumer         text,
    p_upstream         text,
    p_tracking_id      bigint,
    p_prior            bigint
) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    n          integer := coalesce(cardinality(p_originator_ids), 0);
    seq        oid;
    first_id   bigint;
    writer_xid xid8;
    mark       bigint;
BEGIN
    IF coalesce(cardinality(p_versions), 0) <> n OR coalesce(cardinality(p_topics), 0) <> n
            OR coalesce(cardinality(p_states), 0) <> n THEN
        RAISE EXCEPTION 'events_append: arrays of different lengths' USING ERRCODE = '22023';
    END IF;
    IF p_lock_timeout IS NOT NULL THEN
        PERFORM set_config('lock_timeout', p_lock_timeout, true);
    END IF;

    IF n > 0 THEN
        SELECT s.tableoid INTO seq FROM /* TEMPLATE: schema */events_notification_id_seq AS s;
        IF p_ordering = 'xid' THEN
            IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
                RAISE EXCEPTION 'events_append: with the xid ordering the append must be the first write of its transaction'
                    USING ERRCODE = 'ES002';
            END IF;
            -- Lock keys: classid 'ES' 0x0001 (critical section) or 0x0002 (in flight), objid the
            -- sequence's OID, so that each schema has its own.
            PERFORM pg_advisory_xact_lock_shared((1163067394::bigint << 32) | seq::bigint);
            BEGIN
                PERFORM pg_advisory_lock((1163067393::bigint << 32) | seq::bigint);
                writer_xid := pg_current_xact_id();
                first_id := nextval(seq::regclass);
                IF n > 1 THEN
                    PERFORM setval(seq::regclass, first_id + n - 1);
                END IF;
                PERFORM pg_advisory_unlock((1163067393::bigint << 32) | seq::bigint);
            EXCEPTION WHEN OTHERS OR query_canceled THEN
                -- A session-level lock outlives the transaction: never leave it behind. The error may
                -- have come before the lock was granted (a cancelled wait, lock_timeout) or after it
                -- was released, hence the look-up.
                IF EXISTS (SELECT FROM pg_catalog.pg_locks
                           WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
                             AND classid = 1163067393 AND objid = seq AND objsubid = 1) THEN
                    PERFORM pg_advisory_unlock((1163067393::bigint << 32) | seq::bigint);
                END IF;
                RAISE;
            END;
        ELSIF p_ordering = 'table_lock' THEN
            LOCK TABLE /* TEMPLATE: schema */events IN EXCLUSIVE MODE;
            writer_xid := pg_current_xact_id();
            first_id := nextval(seq::regclass);
            IF n > 1 THEN
                PERFORM setval(seq::regclass, first_id + n - 1);
            END IF;
        ELSE
            RAISE EXCEPTION 'events_append: unknown ordering %', p_ordering USING ERRCODE = '22023';
        END IF;

        INSERT INTO /* TEMPLATE: schema */events
            (notification_id, originator_id, originator_version, xid, topic, state)
        SELECT first_id + u.ord - 1, u.originator_id, u.originator_version, writer_xid, u.topic, u.state
        FROM unnest(p_originator_ids, p_versions, p_topics, p_states)
            WITH ORDINALITY AS u (originator_id, originator_version, topic, state, ord);
    END IF;

    IF p_consumer IS NOT NULL THEN
        IF p_tracking_id <= p_prior THEN
            RAISE EXCEPTION 'tracking: consumer % upstream %: notification % is not above the prior mark %',
                p_consumer, p_upstream, p_tracking_id, p_prior USING ERRCODE = 'ES001';
        END IF;
        IF p_prior = 0 THEN
            INSERT INTO /* TEMPLATE: schema */tracking (consumer, upstream, notification_id)
            VALUES (p_consumer, p_upstream, p_tracking_id)
            ON CONFLICT (consumer, upstream) DO NOTHING;
        ELSE
            UPDATE /* TEMPLATE: schema */tracking SET notification_id = p_tracking_id
            WHERE consumer = p_consumer AND upstream = p_upstream AND notification_id = p_prior;
        END IF;
        IF NOT FOUND THEN
            SELECT t.notification_id INTO mark FROM /* TEMPLATE: schema */tracking AS t
            WHERE t.consumer = p_consumer AND t.upstream = p_upstream;
            RAISE EXCEPTION 'tracking: consumer % upstream %: the mark is %, not the prior mark %',
                p_consumer, p_upstream, coalesce(mark, 0), p_prior USING ERRCODE = 'ES001';
        END IF;
    END IF;

    RETURN first_id;
END
$$;
-- +goose StatementEnd

-- events_horizon as in the first migration, with the sequence found through its tableoid.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION /* TEMPLATE: schema */events_horizon() RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    seq     oid;
    horizon bigint := 0;
BEGIN
    SELECT s.tableoid INTO seq FROM /* TEMPLATE: schema */events_notification_id_seq AS s;
    BEGIN
        IF pg_try_advisory_xact_lock((1163067394::bigint << 32) | seq::bigint) THEN
            SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END INTO horizon
            FROM /* TEMPLATE: schema */events_notification_id_seq AS s;
        END IF;
        RAISE SQLSTATE 'ES900';
    EXCEPTION WHEN SQLSTATE 'ES900' THEN
        NULL; -- the lock is released
    END;
    RETURN horizon;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The first version keeps one mark per upstream: only the marks of the consumer '' have a place in it.
DELETE FROM /* TEMPLATE: schema */tracking WHERE consumer <> '';
ALTER TABLE /* TEMPLATE: schema */tracking DROP CONSTRAINT tracking_pkey;
ALTER TABLE /* TEMPLATE: schema */tracking DROP COLUMN consumer;
ALTER TABLE /* TEMPLATE: schema */tracking RENAME COLUMN upstream TO application_name;
ALTER TABLE /* TEMPLATE: schema */tracking ADD CONSTRAINT tracking_pkey PRIMARY KEY (application_name);

DROP FUNCTION /* TEMPLATE: schema */events_append(text, text, uuid[], bigint[], text[], bytea[], text, text, bigint, bigint);

-- The first version's function, with the sequence found through its tableoid.
-- +goose StatementBegin
CREATE FUNCTION /* TEMPLATE: schema */events_append(
    p_ordering         text,
    p_lock_timeout     text,
    p_originator_ids   uuid[],
    p_versions         bigint[],
    p_topics           text[],
    p_states           bytea[],
    p_tracking_app     text,
    p_tracking_id      bigint
) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    n          integer := coalesce(cardinality(p_originator_ids), 0);
    seq        regclass;
    first_id   bigint;
    writer_xid xid8;
BEGIN
    SELECT s.tableoid::regclass INTO seq FROM /* TEMPLATE: schema */events_notification_id_seq AS s;
    IF coalesce(cardinality(p_versions), 0) <> n OR coalesce(cardinality(p_topics), 0) <> n
            OR coalesce(cardinality(p_states), 0) <> n THEN
        RAISE EXCEPTION 'events_append: arrays of different lengths' USING ERRCODE = '22023';
    END IF;
    IF p_lock_timeout IS NOT NULL THEN
        PERFORM set_config('lock_timeout', p_lock_timeout, true);
    END IF;

    IF n > 0 THEN
        IF p_ordering = 'xid' THEN
            IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
                RAISE EXCEPTION 'events_append: with the xid ordering the append must be the first write of its transaction'
                    USING ERRCODE = 'ES002';
            END IF;
            -- Lock keys: classid 'ES' 0x0001 (critical section) or 0x0002 (in flight), objid the
            -- sequence's OID, so that each schema has its own.
            PERFORM pg_advisory_xact_lock_shared((1163067394::bigint << 32) | seq::oid::bigint);
            BEGIN
                PERFORM pg_advisory_lock((1163067393::bigint << 32) | seq::oid::bigint);
                writer_xid := pg_current_xact_id();
                first_id := nextval(seq);
                IF n > 1 THEN
                    PERFORM setval(seq, first_id + n - 1);
                END IF;
                PERFORM pg_advisory_unlock((1163067393::bigint << 32) | seq::oid::bigint);
            EXCEPTION WHEN OTHERS OR query_canceled THEN
                -- A session-level lock outlives the transaction: never leave it behind. The error may
                -- have come before the lock was granted (a cancelled wait, lock_timeout) or after it
                -- was released, hence the look-up.
                IF EXISTS (SELECT FROM pg_catalog.pg_locks
                           WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
                             AND classid = 1163067393 AND objid = seq::oid AND objsubid = 1) THEN
                    PERFORM pg_advisory_unlock((1163067393::bigint << 32) | seq::oid::bigint);
                END IF;
                RAISE;
            END;
        ELSIF p_ordering = 'table_lock' THEN
            LOCK TABLE /* TEMPLATE: schema */events IN EXCLUSIVE MODE;
            writer_xid := pg_current_xact_id();
            first_id := nextval(seq);
            IF n > 1 THEN
                PERFORM setval(seq, first_id + n - 1);
            END IF;
        ELSE
            RAISE EXCEPTION 'events_append: unknown ordering %', p_ordering USING ERRCODE = '22023';
        END IF;

        INSERT INTO /* TEMPLATE: schema */events
            (notification_id, originator_id, originator_version, xid, topic, state)
        SELECT first_id + u.ord - 1, u.originator_id, u.originator_version, writer_xid, u.topic, u.state
        FROM unnest(p_originator_ids, p_versions, p_topics, p_states)
            WITH ORDINALITY AS u (originator_id, originator_version, topic, state, ord);
    END IF;

    IF p_tracking_app IS NOT NULL THEN
        INSERT INTO /* TEMPLATE: schema */tracking AS t (application_name, notification_id)
        VALUES (p_tracking_app, p_tracking_id)
        ON CONFLICT (application_name) DO UPDATE
        SET notification_id = excluded.notification_id
        WHERE excluded.notification_id > t.notification_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'tracking: notification % of application % is at or below the recorded mark',
                p_tracking_id, p_tracking_app USING ERRCODE = 'ES001';
        END IF;
    END IF;

    RETURN first_id;
END
$$;
-- +goose StatementEnd
