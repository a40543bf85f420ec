-- (1) baseline: an INSERT of the row spawn writes, into a plain table with the same indexes.
INSERT INTO bench.raw_tasks (task_id, queue, task_name, params, headers, state, priority, max_attempts, available_at, created_at)
VALUES (belay.uuidv7(), 'bench', 'noop', '{"n": 1}', '{}', 'pending', 0, 5, now(), now());
