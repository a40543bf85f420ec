-- (3) baseline: the least raw SQL that does the same on a plain table: take the next
-- pending row with a lease, then mark it done. Two transactions, like ours.
UPDATE bench.raw_tasks SET state = 'running', worker = 'pgbench', run_started_at = now(),
       lease_expires_at = now() + interval '60 seconds', first_started_at = coalesce(first_started_at, now())
 WHERE task_id = (SELECT task_id FROM bench.raw_tasks
                   WHERE queue = 'bench' AND state = 'pending'
                   ORDER BY priority DESC, available_at, task_id
                   LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING task_id \gset
UPDATE bench.raw_tasks SET state = 'completed', finished_at = now(), lease_expires_at = NULL WHERE task_id = :task_id;
