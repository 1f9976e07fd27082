-- The physical reference of bench/nested.sh: one statement that builds,
-- inside PostgreSQL, the same JSON document the GraphQL query of
-- bench/nested.graphql returns (the first 50 sessions of the demo tenant by
-- creation time, their modules by order, each module's videos oldest
-- first). pgbench runs it; its rate is what the server is measured against.
SELECT json_build_object('data', json_build_object('sessions', json_build_object('nodes',
  coalesce((
    SELECT json_agg(json_build_object(
        'id', s.id, 'name', s.name, 'status', upper(s.status),
        'startTime', s.start_time, 'endTime', s.end_time, 'createdAt', s.created_at,
        'modules', (
          SELECT coalesce(json_agg(json_build_object(
              'id', m.id, 'name', m.name, 'orderIndex', m.order_index,
              'videos', (
                SELECT coalesce(json_agg(json_build_object(
                    'id', v.id, 'fileName', v.file_name, 'fileUrl', v.file_url,
                    'fileSize', v.file_size, 'mimeType', v.mime_type, 'createdAt', v.created_at
                  ) ORDER BY v.created_at, v.id), '[]')
                FROM videos v WHERE v.module_id = m.id)
            ) ORDER BY m.order_index), '[]')
          FROM modules m WHERE m.session_id = s.id)
      ) ORDER BY s.created_at, s.id)
    FROM (
      SELECT * FROM sessions
      WHERE tenant_id = (SELECT id FROM tenants WHERE name = 'Demo District')
      ORDER BY created_at, id LIMIT 50
    ) s
  ), '[]'))));
