\echo Use "CREATE EXTENSION belay" to load this file. \quit

-- belay 0.1.0: tables, indexes, function declarations and grants. Every function body is
-- C++ (src/); this file holds no logic.

CREATE SCHEMA belay;
SET LOCAL search_path TO pg_catalog, pg_temp;

CREATE TABLE belay.queues (
	queue      text PRIMARY KEY,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	policy     jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE belay.queues IS 'belay queues: a name and the default policy of its tasks';

-- One row per task, of every queue. The live run (run_id, worker, lease) lives in the
-- task row, and stays there once it has completed the task; belay.run_history keeps the
-- runs that ended otherwise.
--
-- state holds the public states, plus one internal one: 'scheduled' is a pending task
-- whose available_at is still in the future (delayed, or backing off before a retry).
-- belay.task() and the docs report it as 'pending'. Keeping it apart is what lets the
-- claim index below hold only work that is claimable now.
CREATE TABLE belay.tasks (
	task_id              uuid PRIMARY KEY,
	-- No foreign key to belay.queues: its check would lock the queue row once per inserted
	-- task. spawn() and spawn_many() lock it once per statement instead (FOR KEY SHARE),
	-- which makes drop_queue() wait for them, and drop_queue() deletes the queue's tasks.
	queue                text NOT NULL,
	task_name            text NOT NULL,
	params               jsonb NOT NULL,
	headers              jsonb NOT NULL DEFAULT '{}',
	state                text NOT NULL,
	priority             smallint NOT NULL DEFAULT 0,
	attempt              integer NOT NULL DEFAULT 1,
	max_attempts         integer NOT NULL,
	retry_policy         jsonb,              -- NULL: belay's default policy
	available_at         timestamptz NOT NULL,
	idempotency_key      text,
	parent_task_id       uuid,
	parent_step          text,
	run_id               uuid,               -- the live run (the fencing token), or the completing one
	worker               text,               -- who holds (or last held) the task
	run_started_at       timestamptz,
	lease_seconds        double precision,
	lease_expires_at     timestamptz,
	first_started_at     timestamptz,
	max_delay_seconds    double precision,   -- cancellation policy
	max_duration_seconds double precision,
	cancel_at            timestamptz,        -- when the cancellation policy cancels it
	watched              boolean NOT NULL DEFAULT false, -- NOTIFY belay_finished when it ends
	result               jsonb,
	error                jsonb,
	created_at           timestamptz NOT NULL,
	finished_at          timestamptz,
	CONSTRAINT tasks_state_check CHECK (state IN ('scheduled', 'pending', 'running', 'sleeping',
	                                             'waiting', 'completed', 'failed', 'cancelled')),
	CONSTRAINT tasks_attempts_check CHECK (attempt >= 1 AND max_attempts >= 1)
);
COMMENT ON TABLE belay.tasks IS 'belay tasks of all queues';

-- The claim path. claim() reads only this index: it holds nothing but tasks claimable
-- now, in claim order, so its cost does not grow with delayed, sleeping, waiting,
-- running or finished tasks (they are not in it), nor with other queues (queue leads).
CREATE INDEX tasks_claim_idx ON belay.tasks (queue, priority DESC, available_at, task_id)
	WHERE state = 'pending';

-- Delayed and sleeping tasks by due time: claim() and the background worker make the
-- due ones pending with one probe into this index per queue. (No second index by due time
-- alone: the claim's probe would be planned onto it and read other queues' due tasks.)
CREATE INDEX tasks_due_idx ON belay.tasks (queue, available_at)
	WHERE state IN ('scheduled', 'sleeping');

-- Cancellation deadlines (max_delay_seconds before the first start, max_duration_seconds
-- after it) for the background worker.
CREATE INDEX tasks_cancel_idx ON belay.tasks (cancel_at)
	WHERE cancel_at IS NOT NULL AND state NOT IN ('completed', 'failed', 'cancelled');

-- Fencing: run-scoped calls find the task by its live run. Only running tasks: an entry
-- for every completed task would cost each completion an index insert. (A completed task
-- keeps its run_id; a lookup of belay.runs by a completed run_id reads the table.)
CREATE UNIQUE INDEX tasks_run_idx ON belay.tasks (run_id) WHERE state = 'running';

-- Leases to reclaim, in expiry order (the background worker).
CREATE INDEX tasks_lease_idx ON belay.tasks (lease_expires_at) WHERE state = 'running';

CREATE UNIQUE INDEX tasks_idempotency_idx ON belay.tasks (queue, idempotency_key)
	WHERE idempotency_key IS NOT NULL;

-- cleanup() finds finished tasks by age.
CREATE INDEX tasks_finished_idx ON belay.tasks (finished_at)
	WHERE state IN ('completed', 'failed', 'cancelled');

-- cancel() walks down to children.
CREATE INDEX tasks_parent_idx ON belay.tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;

-- Runs that ended without completing their task: one row per claim that failed, was
-- suspended, was cancelled or lost its lease. Written once, when the run ends. The run
-- that completes a task is not copied here: the task row keeps it (run_id, worker,
-- run_started_at, finished_at), which spares the hot path a row, two index entries and a
-- foreign-key check per task. belay.runs below shows both as one history.
CREATE TABLE belay.run_history (
	run_id     uuid PRIMARY KEY,
	task_id    uuid NOT NULL REFERENCES belay.tasks (task_id) ON DELETE CASCADE,
	attempt    integer NOT NULL,
	worker     text NOT NULL,
	started_at timestamptz NOT NULL,
	ended_at   timestamptz NOT NULL,
	outcome    text NOT NULL,
	error      jsonb,
	CONSTRAINT run_history_outcome_check CHECK (outcome IN ('failed', 'suspended', 'cancelled', 'lease_expired'))
);
CREATE INDEX run_history_task_idx ON belay.run_history (task_id);
COMMENT ON TABLE belay.run_history IS 'belay runs that ended without completing their task; see the view belay.runs';

-- Every run that has ended, with its outcome: the live run is in belay.tasks. A lookup by
-- task_id reads one index of each side (run_history_task_idx, tasks_pkey); one by run_id
-- reads run_history_pkey and scans the tasks (completed runs are not indexed by run_id).
CREATE VIEW belay.runs AS
	SELECT run_id, task_id, attempt, worker, started_at, ended_at, outcome, error FROM belay.run_history
	UNION ALL
	SELECT run_id, task_id, attempt, worker, run_started_at, finished_at, 'completed'::text, NULL::jsonb
	  FROM belay.tasks WHERE state = 'completed' AND run_id IS NOT NULL;
COMMENT ON VIEW belay.runs IS 'belay runs that have ended: belay.run_history and the completing run of each completed task';

CREATE TABLE belay.checkpoints (
	task_id    uuid NOT NULL REFERENCES belay.tasks (task_id) ON DELETE CASCADE,
	step       text NOT NULL,
	value      jsonb NOT NULL,
	run_id     uuid NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (task_id, step)
);
COMMENT ON TABLE belay.checkpoints IS 'belay finished steps: durable values a re-run gets back';

-- The latest payload of each event emitted in a queue.
CREATE TABLE belay.events (
	queue      text NOT NULL REFERENCES belay.queues (queue) ON DELETE CASCADE,
	event      text NOT NULL,
	payload    jsonb,
	emitted_at timestamptz NOT NULL,
	PRIMARY KEY (queue, event)
);
COMMENT ON TABLE belay.events IS 'belay events: the latest payload per queue and name';

-- What a waiting task waits for: an event of its queue or a child task, until an
-- optional deadline. One wait per task; it is deleted when it is settled.
CREATE TABLE belay.waits (
	task_id       uuid PRIMARY KEY REFERENCES belay.tasks (task_id) ON DELETE CASCADE,
	step          text NOT NULL,
	run_id        uuid NOT NULL,      -- the run that suspended
	queue         text,               -- event waits: the event's queue and name
	event         text,
	child_task_id uuid,               -- join waits: the child
	deadline      timestamptz,        -- NULL: no timeout
	CONSTRAINT waits_kind_check CHECK ((event IS NULL) <> (child_task_id IS NULL))
);
CREATE INDEX waits_event_idx ON belay.waits (queue, event) WHERE event IS NOT NULL;
CREATE INDEX waits_child_idx ON belay.waits (child_task_id) WHERE child_task_id IS NOT NULL;
CREATE INDEX waits_deadline_idx ON belay.waits (deadline) WHERE deadline IS NOT NULL;
COMMENT ON TABLE belay.waits IS 'belay waits of waiting tasks: for an event or a child';

-- A queue table churns: every task is inserted, updated two or three times and deleted by
-- cleanup. The default thresholds (20% of the table dead) let that churn pile up between
-- vacuums; belay's tables are vacuumed and analyzed after a small fraction instead.
ALTER TABLE belay.tasks SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.02,
                             autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE belay.run_history SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.02,
                                   autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE belay.checkpoints SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE belay.waits SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);

-- pg_dump keeps the contents of these tables.
SELECT pg_catalog.pg_extension_config_dump('belay.queues', '');
SELECT pg_catalog.pg_extension_config_dump('belay.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('belay.run_history', '');
SELECT pg_catalog.pg_extension_config_dump('belay.checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('belay.events', '');
SELECT pg_catalog.pg_extension_config_dump('belay.waits', '');

-- Functions. All are C++; all check their arguments themselves (CALLED ON NULL INPUT) so
-- that a NULL gets an error naming it rather than a silent NULL result. Each pins its
-- search path to pg_catalog in C++ (include/belay/guard.hpp, PinnedSearchPath) rather than
-- with a SET clause, which would cost a GUC save and restore on every call; every name
-- in belay's statements is schema-qualified besides.

CREATE FUNCTION belay.uuidv7() RETURNS uuid
	LANGUAGE c VOLATILE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'belay_uuidv7';
COMMENT ON FUNCTION belay.uuidv7() IS 'a new time-ordered (version 7) UUID';

CREATE FUNCTION belay.create_queue(queue text, policy jsonb DEFAULT '{}') RETURNS void
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_create_queue';
COMMENT ON FUNCTION belay.create_queue(text, jsonb) IS 'creates a queue, or sets the policy of an existing one';

CREATE FUNCTION belay.drop_queue(queue text) RETURNS void
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_drop_queue';
COMMENT ON FUNCTION belay.drop_queue(text) IS 'removes a queue and all its tasks';

CREATE FUNCTION belay.list_queues() RETURNS TABLE (queue text, created_at timestamptz, policy jsonb)
	LANGUAGE c STABLE
	AS 'MODULE_PATHNAME', 'belay_list_queues';
COMMENT ON FUNCTION belay.list_queues() IS 'the queues, by name';

CREATE FUNCTION belay.spawn(queue text, task_name text, params jsonb DEFAULT '{}', options jsonb DEFAULT '{}')
	RETURNS TABLE (task_id uuid, created boolean)
	LANGUAGE c VOLATILE CALLED ON NULL INPUT ROWS 1
	AS 'MODULE_PATHNAME', 'belay_spawn';
COMMENT ON FUNCTION belay.spawn(text, text, jsonb, jsonb) IS 'enqueues one task';

CREATE FUNCTION belay.spawn_many(queue text, task_name text, params jsonb, options jsonb DEFAULT '{}')
	RETURNS TABLE (task_id uuid, created boolean)
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_spawn_many';
COMMENT ON FUNCTION belay.spawn_many(text, text, jsonb, jsonb) IS 'enqueues one task per element of a params array, in order';

CREATE FUNCTION belay.claim(queue text, worker text, qty integer DEFAULT 1, lease_seconds numeric DEFAULT 60)
	RETURNS TABLE (run_id uuid, task_id uuid, task_name text, params jsonb, headers jsonb, attempt integer,
	               lease_expires_at timestamptz, checkpoints jsonb)
	LANGUAGE c VOLATILE CALLED ON NULL INPUT ROWS 1
	AS 'MODULE_PATHNAME', 'belay_claim';
COMMENT ON FUNCTION belay.claim(text, text, integer, numeric) IS 'claims up to qty tasks, highest priority first, never blocking on other claimers';

CREATE FUNCTION belay.complete(run_id uuid, result jsonb DEFAULT NULL) RETURNS void
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_complete';
COMMENT ON FUNCTION belay.complete(uuid, jsonb) IS 'completes the task of a live run';

CREATE FUNCTION belay.complete_many(run_ids uuid[], results jsonb[] DEFAULT NULL)
	RETURNS TABLE (run_id uuid, completed boolean)
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_complete_many';
COMMENT ON FUNCTION belay.complete_many(uuid[], jsonb[]) IS 'completes many live runs in one call; a run that is not live is reported (completed = false), not raised';

CREATE FUNCTION belay.fail(run_id uuid, error jsonb, retry_at timestamptz DEFAULT NULL, final boolean DEFAULT false)
	RETURNS text
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_fail';
COMMENT ON FUNCTION belay.fail(uuid, jsonb, timestamptz, boolean) IS 'fails a live run; retries by the policy unless final; returns the task''s new state';

CREATE FUNCTION belay.heartbeat(run_id uuid, lease_seconds numeric DEFAULT NULL) RETURNS timestamptz
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_heartbeat';
COMMENT ON FUNCTION belay.heartbeat(uuid, numeric) IS 'extends the lease of a live run; returns the new expiry';

CREATE FUNCTION belay.set_checkpoint(run_id uuid, step text, value jsonb) RETURNS void
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_set_checkpoint';
COMMENT ON FUNCTION belay.set_checkpoint(uuid, text, jsonb) IS 'records a finished step of the task of a live run';

CREATE FUNCTION belay.checkpoints(task_id uuid) RETURNS TABLE (step text, value jsonb, updated_at timestamptz)
	LANGUAGE c STABLE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_checkpoints';
COMMENT ON FUNCTION belay.checkpoints(uuid) IS 'the finished steps of a task';

CREATE FUNCTION belay.cancel(task_id uuid) RETURNS integer
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_cancel';
COMMENT ON FUNCTION belay.cancel(uuid) IS 'cancels a task and its unfinished descendants; returns how many';

CREATE FUNCTION belay.retry(task_id uuid) RETURNS void
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_retry';
COMMENT ON FUNCTION belay.retry(uuid) IS 'puts a failed or cancelled task back to pending with one more attempt';

CREATE FUNCTION belay.watch(task_id uuid) RETURNS text
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_watch';
COMMENT ON FUNCTION belay.watch(uuid) IS 'asks for NOTIFY belay_finished, ''<task_id>'' when the task ends; returns its state now';

CREATE FUNCTION belay.task(task_id uuid)
	RETURNS TABLE (task_id uuid, queue text, task_name text, state text, attempt integer, max_attempts integer,
	               params jsonb, result jsonb, error jsonb, parent_task_id uuid, created_at timestamptz,
	               available_at timestamptz, finished_at timestamptz)
	LANGUAGE c STABLE CALLED ON NULL INPUT ROWS 1
	AS 'MODULE_PATHNAME', 'belay_task';
COMMENT ON FUNCTION belay.task(uuid) IS 'one task; no row if there is none';

CREATE FUNCTION belay.cleanup(queue text DEFAULT NULL, older_than interval DEFAULT '7 days') RETURNS bigint
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_cleanup';
COMMENT ON FUNCTION belay.cleanup(text, interval) IS 'deletes terminal tasks finished more than older_than ago (by the clock), with their runs, checkpoints and waits';

CREATE FUNCTION belay.sleep(run_id uuid, step text, wake_at timestamptz) RETURNS boolean
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_sleep_until';
COMMENT ON FUNCTION belay.sleep(uuid, text, timestamptz) IS 'sleeps until wake_at (the first call of the step fixes it); true: the run is suspended, stop';

CREATE FUNCTION belay.sleep(run_id uuid, step text, seconds numeric) RETURNS boolean
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_sleep_for';
COMMENT ON FUNCTION belay.sleep(uuid, text, numeric) IS 'sleeps for seconds on the database clock (the first call of the step fixes the wake time); true: suspended';

CREATE FUNCTION belay.await_event(run_id uuid, step text, event text, timeout_seconds numeric DEFAULT NULL)
	RETURNS TABLE (suspended boolean, payload jsonb, timed_out boolean)
	LANGUAGE c VOLATILE CALLED ON NULL INPUT ROWS 1
	AS 'MODULE_PATHNAME', 'belay_await_event';
COMMENT ON FUNCTION belay.await_event(uuid, text, text, numeric) IS 'the payload of an event of the task''s queue, or suspends the run until it is emitted or the timeout';

CREATE FUNCTION belay.emit_event(queue text, event text, payload jsonb DEFAULT NULL) RETURNS integer
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_emit_event';
COMMENT ON FUNCTION belay.emit_event(text, text, jsonb) IS 'stores the event''s payload and wakes every task awaiting it; returns how many';

CREATE FUNCTION belay.spawn_child(run_id uuid, step text, task_name text, params jsonb DEFAULT '{}',
                                  options jsonb DEFAULT '{}') RETURNS uuid
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_spawn_child';
COMMENT ON FUNCTION belay.spawn_child(uuid, text, text, jsonb, jsonb) IS 'spawns a child task, once per (task, step); options may name another queue';

CREATE FUNCTION belay.join(run_id uuid, step text, child_task_id uuid, timeout_seconds numeric DEFAULT NULL)
	RETURNS TABLE (suspended boolean, state text, result jsonb, error jsonb)
	LANGUAGE c VOLATILE CALLED ON NULL INPUT ROWS 1
	AS 'MODULE_PATHNAME', 'belay_join';
COMMENT ON FUNCTION belay.join(uuid, text, uuid, numeric) IS 'the outcome of a child task, or suspends the run until it ends or the timeout';

CREATE FUNCTION belay.tick(now timestamptz DEFAULT pg_catalog.clock_timestamp(), batch_size integer DEFAULT 1000)
	RETURNS TABLE (woken integer, timed_out integer, reclaimed integer, cancelled integer, next_due_at timestamptz)
	LANGUAGE c VOLATILE CALLED ON NULL INPUT
	AS 'MODULE_PATHNAME', 'belay_tick';
COMMENT ON FUNCTION belay.tick(timestamptz, integer) IS 'one round of the background worker at time now: wake due tasks, time out waits, reclaim leases, enforce cancellation deadlines';
REVOKE ALL ON FUNCTION belay.tick(timestamptz, integer) FROM PUBLIC;

-- Applications use belay through its functions, which run with the caller's rights: a
-- role that produces or consumes work needs USAGE on the schema and DML on the tables
-- (README, "Roles"). Nothing is granted to PUBLIC.
REVOKE ALL ON ALL TABLES IN SCHEMA belay FROM PUBLIC;
