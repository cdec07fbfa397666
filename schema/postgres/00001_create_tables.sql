-- Tables and functions of the PostgreSQL recorders.
--
-- Every name is written as /* TEMPLATE: schema */name. goose and sqlc read the marker as a comment, so
-- run as they are the objects land in the connection's search_path; schema.Migrate with WithSchema (and
-- the recorders' queries) replace it with "schema.", so several applications can share one database.

-- +goose Up

-- The application sequence. CACHE 1 (the default) matters: with a per-session cache two sessions would
-- hand out interleaved ranges, and the ordering arguments below assume one global counter. Only
-- events_append takes values from it, always inside its ordering critical section.
CREATE SEQUENCE /* TEMPLATE: schema */events_notification_id_seq AS bigint MINVALUE 1 CACHE 1;

-- events is the aggregate store and the notification log in one table. notification_id is the position
-- in the application sequence; it has no default, so that no row gets an ID but from events_append,
-- which allocates IDs in an order readers can rely on (see there). xid is the writing transaction's ID,
-- which the "xid" ordering's readers compare with their snapshot.
CREATE TABLE /* TEMPLATE: schema */events (
    notification_id    bigint NOT NULL,
    originator_id      uuid   NOT NULL,
    originator_version bigint NOT NULL,
    xid                xid8   NOT NULL,
    topic              text   NOT NULL,
    state              bytea  NOT NULL,
    -- The optimistic concurrency check, and the index SelectEvents reads through.
    CONSTRAINT events_pkey PRIMARY KEY (originator_id, originator_version),
    -- The notification log's index.
    CONSTRAINT events_notification_id_key UNIQUE (notification_id)
);

ALTER SEQUENCE /* TEMPLATE: schema */events_notification_id_seq
    OWNED BY /* TEMPLATE: schema */events.notification_id;

-- snapshots has no application sequence: keyed by originator and version only.
CREATE TABLE /* TEMPLATE: schema */snapshots (
    originator_id      uuid   NOT NULL,
    originator_version bigint NOT NULL,
    topic              text   NOT NULL,
    state              bytea  NOT NULL,
    CONSTRAINT snapshots_pkey PRIMARY KEY (originator_id, originator_version)
);

-- tracking keeps one high-water mark per upstream application (gaps are never filled, so the mark is
-- all there is to know).
CREATE TABLE /* TEMPLATE: schema */tracking (
    application_name text   NOT NULL,
    notification_id  bigint NOT NULL,
    CONSTRAINT tracking_pkey PRIMARY KEY (application_name)
);

-- recorder_settings records choices every recorder of the schema must share. Today that is the
-- notification ordering ('table_lock' or 'xid'): the readers of one ordering are not safe against the
-- writers of the other, so the first recorder to open the schema records its ordering and recorders
-- configured otherwise are refused.
CREATE TABLE /* TEMPLATE: schema */recorder_settings (
    name  text NOT NULL,
    value text NOT NULL,
    CONSTRAINT recorder_settings_pkey PRIMARY KEY (name)
);

-- events_append records a batch of events and, optionally, a tracking mark, in one call, so that an
-- append is one round trip (called outside an explicit transaction it is also its own transaction). It
-- returns the notification ID of the first event; the batch has the contiguous IDs from there, in input
-- order. With no events it returns NULL.
--
-- p_ordering chooses how notification IDs are made safe for readers (rule: once a reader has seen ID n,
-- no ID below n ever appears):
--
-- 'table_lock' takes LOCK TABLE events IN EXCLUSIVE MODE until commit, so appends run one at a time and
-- IDs are allocated in commit order. Readers need no filter. Writers are serialised through their commit
-- (one WAL flush each).
--
-- 'xid' allocates the transaction's xid and then the IDs in a critical section (an advisory lock held
-- for microseconds) and writes the rows after it; commits then run concurrently and share WAL flushes.
-- The transaction must have no xid before (the append must be its first write), so that xid order
-- equals ID order between appends. Readers (events_notifications_xid) return rows whose xid is below
-- their snapshot's xmin: every append with a lower ID has a lower xid, so it has finished.
-- Each append also holds a shared "in flight" advisory lock from before it takes IDs until it ends, so
-- that a reader that can take that lock exclusively knows every ID taken so far is final (see
-- events_horizon): then an application's own appends are readable as soon as they have committed, even
-- while unrelated transactions elsewhere in the cluster hold the xmin back.
--
-- The critical section's lock is session-level, so that it can be released as soon as the IDs are
-- taken (a transaction-level lock would be held until commit and serialise the commits). It is taken
-- and released inside a block whose exception handler releases it on any error, cancellation and
-- lock_timeout included, so an append that fails does not leave it behind (only an error inside the
-- handler itself, such as a second cancel request within microseconds of the first, could); a
-- terminated session releases it with the session.
-- (A transaction-level lock taken in a subtransaction that is then rolled back on purpose would need no
-- handler, but holds the lock through the error handling: measured 20% fewer appends at 16 writers.)
--
-- p_lock_timeout, when not NULL, is set as lock_timeout for the rest of the transaction, bounding the
-- wait for the locks of either ordering.
--
-- Errors: a version recorded already or twice in the batch is a unique violation (23505); a tracking ID
-- at or below the application's mark raises ES001; an 'xid' append after another write in the same
-- transaction raises ES002.
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
    seq        regclass := '/* TEMPLATE: schema */events_notification_id_seq'::regclass;
    first_id   bigint;
    writer_xid xid8;
BEGIN
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

-- events_horizon returns, for the xid ordering, an ID up to which every notification is final: the
-- last ID taken, if no append is in flight (its shared lock can be taken exclusively, for an instant,
-- in a subtransaction rolled back to release it); 0 otherwise. Every append that took an ID up to it
-- has ended, so a snapshot taken afterwards sees all of them that committed.
-- +goose StatementBegin
CREATE FUNCTION /* TEMPLATE: schema */events_horizon() RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    seq     regclass := '/* TEMPLATE: schema */events_notification_id_seq'::regclass;
    horizon bigint := 0;
BEGIN
    BEGIN
        IF pg_try_advisory_xact_lock((1163067394::bigint << 32) | seq::oid::bigint) THEN
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

-- events_notifications_xid is the xid ordering's page of the notification log (p_topics NULL: all
-- topics), as rows of the events table. A row is returned when its xid is below the xmin of the query's snapshot, or when its ID is
-- at or below the horizon taken just before that snapshot. The horizon needs a snapshot taken after it,
-- which a VOLATILE function (the default) gets for each statement under READ COMMITTED only; under
-- other isolation levels the horizon is not used.
-- +goose StatementBegin
CREATE FUNCTION /* TEMPLATE: schema */events_notifications_xid(
    p_after   bigint,
    p_up_to   bigint,
    p_topics  text[],
    p_limit   integer
) RETURNS SETOF /* TEMPLATE: schema */events
LANGUAGE plpgsql
AS $$
DECLARE
    horizon bigint := 0;
BEGIN
    IF current_setting('transaction_isolation') = 'read committed' THEN
        horizon := /* TEMPLATE: schema */events_horizon();
    END IF;
    -- The rows that pass the filter are a prefix, in ID order, of the committed rows (a row passes
    -- only if every lower ID is final), so the first p_limit rows are read and then filtered: the same
    -- result as filtering first, without scanning every row held back above the prefix.
    IF p_topics IS NULL THEN
        RETURN QUERY
        SELECT e.*
        FROM (SELECT * FROM /* TEMPLATE: schema */events
              WHERE notification_id > p_after AND notification_id <= p_up_to
              ORDER BY notification_id
              LIMIT p_limit) AS e
        WHERE e.notification_id <= horizon OR e.xid < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
        ORDER BY e.notification_id;
    ELSE
        RETURN QUERY
        SELECT e.*
        FROM (SELECT * FROM /* TEMPLATE: schema */events
              WHERE notification_id > p_after AND notification_id <= p_up_to
                AND topic = ANY (p_topics)
              ORDER BY notification_id
              LIMIT p_limit) AS e
        WHERE e.notification_id <= horizon OR e.xid < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
        ORDER BY e.notification_id;
    END IF;
END
$$;
-- +goose StatementEnd

-- events_max_notification_id_xid is the xid ordering's highest readable notification ID (0 for none).
-- +goose StatementBegin
CREATE FUNCTION /* TEMPLATE: schema */events_max_notification_id_xid() RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    horizon bigint := 0;
    result  bigint;
BEGIN
    IF current_setting('transaction_isolation') = 'read committed' THEN
        horizon := /* TEMPLATE: schema */events_horizon();
    END IF;
    SELECT max(e.notification_id) INTO result
    FROM /* TEMPLATE: schema */events AS e
    WHERE e.notification_id <= horizon OR e.xid < (SELECT pg_snapshot_xmin(pg_current_snapshot()));
    RETURN coalesce(result, 0);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION /* TEMPLATE: schema */events_max_notification_id_xid();
DROP FUNCTION /* TEMPLATE: schema */events_notifications_xid(bigint, bigint, text[], integer);
DROP FUNCTION /* TEMPLATE: schema */events_horizon();
DROP FUNCTION /* TEMPLATE: schema */events_append(text, text, uuid[], bigint[], text[], bytea[], text, bigint);
DROP TABLE /* TEMPLATE: schema */recorder_settings;
DROP TABLE /* TEMPLATE: schema */tracking;
DROP TABLE /* TEMPLATE: schema */snapshots;
DROP TABLE /* TEMPLATE: schema */events;
