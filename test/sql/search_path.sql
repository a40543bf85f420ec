-- belay pins its search path to pg_catalog in C++: a caller's search_path that puts a
-- hostile operator ahead of pg_catalog changes nothing in what belay does.
\set VERBOSITY terse
CREATE SCHEMA hostile;
CREATE FUNCTION hostile.never_equal(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT false';
CREATE OPERATOR hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.never_equal);
CREATE FUNCTION hostile.never_equal_uuid(uuid, uuid) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT false';
CREATE OPERATOR hostile.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = hostile.never_equal_uuid);

SET search_path = hostile, pg_catalog;
-- The hostile operator is live for the session's own queries...
SELECT 'a'::text = 'a'::text AS plain_equal_in_this_session;

-- ...but not inside belay.
SELECT belay.create_queue('pinned');
SELECT created FROM belay.spawn('pinned', 'job', '{"n": 1}');
SELECT task_name, params, attempt FROM belay.claim('pinned', 'w') \gset
SELECT :'task_name' AS claimed_task, :'params' AS claimed_params;
SELECT count(*) AS live_runs FROM belay.tasks WHERE queue OPERATOR(pg_catalog.=) 'pinned' AND state OPERATOR(pg_catalog.=) 'running';
SELECT belay.complete(run_id) FROM belay.tasks WHERE queue OPERATOR(pg_catalog.=) 'pinned';
SELECT state FROM belay.tasks WHERE queue OPERATOR(pg_catalog.=) 'pinned';
SELECT belay.drop_queue('pinned');

RESET search_path;
DROP SCHEMA hostile CASCADE;
