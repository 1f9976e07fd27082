#!/usr/bin/env python3
"""Seeds the nested-query benchmark's data: SESSIONS sessions (default 1,000)
x 10 modules x 5 videos in the demo tenant, deterministic (ids are UUIDv5 of
their position, times count up from 2026-11-01), on top of `seed-demo`.

    nested_seed.py postgres postgres://postgres@127.0.0.1:5432/DB
    nested_seed.py sqlite /path/to/file.db

PostgreSQL rows go through `psql \\copy` (CSV on stdin); SQLite rows are
written with Python's sqlite3 in the server's own encodings (UUIDs as 16-byte
blobs, timestamps as RFC 3339 text), so that both backends hold the same data.
"""

import csv
import datetime
import io
import os
import sqlite3
import subprocess
import sys
import uuid

SESSIONS = int(os.environ.get("BENCH_SESSIONS", "1000"))
MODULES = 10
VIDEOS = 5
NAMESPACE = uuid.UUID("5e551011-0000-4000-8000-000000000013")
EPOCH = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)


def stamp(seconds):
    return (EPOCH + datetime.timedelta(seconds=seconds)).isoformat()


def rows(tenant, users, guardian):
    """(table, columns, rows) of the whole data set, in insertion order."""
    sessions, modules, videos = [], [], []
    for s in range(SESSIONS):
        session_id = uuid.uuid5(NAMESPACE, f"session-{s}")
        created = s * 60
        sessions.append([
            session_id, tenant, users[s % len(users)], guardian, f"Bench session {s:04}",
            "Linear Flow", "ended", stamp(created), stamp(created + 3600), stamp(created + 3600),
            stamp(created + 3600), guardian, "ended_by_guardian", stamp(created), stamp(created + 3600),
        ])
        for m in range(MODULES):
            module_id = uuid.uuid5(NAMESPACE, f"module-{s}-{m}")
            modules.append([module_id, session_id, f"Module {m + 1}", m, stamp(created + m), stamp(created + m)])
            for v in range(VIDEOS):
                name = f"lecture-{m + 1}-{v + 1}.mp4"
                videos.append([
                    uuid.uuid5(NAMESPACE, f"video-{s}-{m}-{v}"), module_id, name,
                    f"https://videos.demo.example/{session_id}/{name}",
                    1_048_576 * (1 + (s * 50 + m * 5 + v) % 500), "video/mp4",
                    stamp(created + m * 10 + v), stamp(created + m * 10 + v),
                ])
    return [
        ("sessions", "id, tenant_id, user_id, guardian_id, name, session_type, status, start_time, "
         "end_time, planned_end_time, ended_at, ended_by, end_kind, created_at, updated_at", sessions),
        ("modules", "id, session_id, name, order_index, created_at, updated_at", modules),
        ("videos", "id, module_id, file_name, file_url, file_size, mime_type, created_at, updated_at", videos),
    ]


PEOPLE = """
SELECT t.id,
  (SELECT u.id FROM users u WHERE u.email = 'alex@demo.example'),
  (SELECT u.id FROM users u WHERE u.email = 'sam@demo.example'),
  (SELECT u.id FROM users u WHERE u.email = 'guardian@demo.example')
FROM tenants t WHERE t.name = 'Demo District'
"""


def seed_postgres(url):
    out = subprocess.run(["psql", "-qtA", "-F", " ", url, "-c", PEOPLE], check=True,
                         capture_output=True, text=True).stdout.split()
    tenant, alex, sam, guardian = (uuid.UUID(x) for x in out)
    script = io.StringIO()
    for table, columns, data in rows(tenant, [alex, sam], guardian):
        script.write(f"\\copy {table} ({columns}) FROM STDIN WITH (FORMAT csv)\n")
        writer = csv.writer(script, lineterminator="\n")
        writer.writerows([str(x) if isinstance(x, uuid.UUID) else x for x in row] for row in data)
        script.write("\\.\n")
    script.write("ANALYZE sessions; ANALYZE modules; ANALYZE videos;\n")
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input=script.getvalue(),
                   check=True, text=True)


def seed_sqlite(path):
    db = sqlite3.connect(path)
    found = db.execute(PEOPLE).fetchone()
    tenant, alex, sam, guardian = (uuid.UUID(bytes=x) for x in found)
    with db:
        for table, columns, data in rows(tenant, [alex, sam], guardian):
            marks = ", ".join("?" for _ in columns.split(","))
            db.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                ([x.bytes if isinstance(x, uuid.UUID) else x for x in row] for row in data),
            )
    db.execute("ANALYZE")
    db.close()


if __name__ == "__main__":
    backend, target = sys.argv[1], sys.argv[2]
    {"postgres": seed_postgres, "sqlite": seed_sqlite}[backend](target)
