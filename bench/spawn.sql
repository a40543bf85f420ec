-- (1) ours: one spawn per transaction.
SELECT task_id FROM belay.spawn('bench', 'noop', '{"n": 1}');
