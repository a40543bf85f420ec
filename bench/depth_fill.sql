-- (7) setup, not measured: :finished completed tasks (each keeping its completing run, as
-- complete() leaves them) and :pending
-- pending ones in queue 'depth', written directly. Every NOT NULL column of belay.tasks is
-- filled; the pending ones are due in the past, oldest first, so claims start at the head.
INSERT INTO belay.tasks (task_id, queue, task_name, params, headers, state, priority, attempt, max_attempts,
                         available_at, run_id, worker, run_started_at, lease_seconds, first_started_at, created_at,
                         finished_at)
SELECT belay.uuidv7(), 'depth', 'noop', jsonb_build_object('n', i), '{}', 'completed', 0, 1, 5,
       now() - interval '2 hours', belay.uuidv7(), 'fill', now() - interval '2 hours', 60, now() - interval '2 hours',
       now() - interval '2 hours', now() - interval '2 hours' + i * interval '1 millisecond'
  FROM generate_series(1, :finished) i;

INSERT INTO belay.tasks (task_id, queue, task_name, params, headers, state, priority, attempt, max_attempts,
                         available_at, created_at)
SELECT belay.uuidv7(), 'depth', 'noop', jsonb_build_object('n', i), '{}', 'pending', 0, 1, 5,
       now() - interval '1 hour' + i * interval '1 microsecond', now() - interval '1 hour'
  FROM generate_series(1, :pending) i;
