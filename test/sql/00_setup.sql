-- belay regression setup: install the extension and check what it provides.
CREATE EXTENSION belay;

SELECT extname, extversion, extrelocatable FROM pg_extension WHERE extname = 'belay';

-- The SQL functions of belay 0.1.0, with their arguments.
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS arguments
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'belay'
ORDER BY p.proname, arguments;

-- Every function but uuidv7() checks its arguments itself (not STRICT: a NULL gets an
-- error naming it rather than a silent NULL result). The search path is pinned in C++,
-- not by a SET clause (test/sql/search_path.sql shows it holds).
SELECT p.proname, p.proisstrict, p.proconfig IS NULL AS no_set_clause
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'belay' AND p.proname <> 'uuidv7'
ORDER BY p.proname;

-- The tables and the claim-path indexes.
SELECT c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'belay'
ORDER BY c.relname;

-- Nothing is granted to PUBLIC.
SELECT c.relname, has_table_privilege('public', c.oid, 'SELECT') AS public_select
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'belay' AND c.relkind IN ('r', 'v')
ORDER BY c.relname;

-- Every function may be called by PUBLIC except tick(), the background worker's round.
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS arguments
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'belay' AND NOT has_function_privilege('public', p.oid, 'EXECUTE')
ORDER BY p.proname;

-- uuidv7(): version 7, RFC variant, strictly increasing within a session.
SELECT substr(u::text, 15, 1) AS version, substr(u::text, 20, 1) IN ('8', '9', 'a', 'b') AS rfc_variant
FROM belay.uuidv7() AS u;
SELECT a = (SELECT array_agg(x ORDER BY x) FROM unnest(a) AS x) AS increasing,
       cardinality(a) = (SELECT count(DISTINCT x) FROM unnest(a) AS x) AS distinct_ids
FROM (SELECT array_agg(belay.uuidv7()) AS a FROM generate_series(1, 1000)) AS s;

-- Helpers for the tests that follow (bad_inputs, suspension_inputs): regress.try(sql)
-- runs one call and returns 'SQLSTATE: message (HINT: hint)', with ids replaced by
-- <uuid>; if the call changed any row of belay's tables it appends [DATA CHANGED], and
-- a call that raises no error returns 'no error'.
CREATE SCHEMA regress;
CREATE FUNCTION regress.fingerprint() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(q::text, ',' ORDER BY q.queue) FROM belay.queues q),
		(SELECT string_agg(t::text, ',' ORDER BY t.task_id) FROM belay.tasks t),
		(SELECT string_agg(r::text, ',' ORDER BY r.run_id) FROM belay.runs r),
		(SELECT string_agg(c::text, ',' ORDER BY c.task_id, c.step) FROM belay.checkpoints c),
		(SELECT string_agg(e::text, ',' ORDER BY e.queue, e.event) FROM belay.events e),
		(SELECT string_agg(w::text, ',' ORDER BY w.task_id) FROM belay.waits w)))
$$;

CREATE FUNCTION regress.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	before text := regress.fingerprint();
	code text;
	message text;
	hint text;
	outcome text;
BEGIN
	BEGIN
		EXECUTE sql;
		outcome := 'no error';
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
		outcome := code || ': ' || message || CASE WHEN hint <> '' THEN ' (HINT: ' || hint || ')' ELSE '' END;
	END;
	outcome := regexp_replace(outcome, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g');
	IF regress.fingerprint() IS DISTINCT FROM before THEN
		outcome := outcome || ' [DATA CHANGED]';
	END IF;
	RETURN outcome;
END
$$;
