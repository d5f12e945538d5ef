#!/usr/bin/env python3
"""Checks the rendered manifests of caravan's Kubernetes overlays.

    check_manifests.py dev rendered-dev.yaml
    check_manifests.py prod rendered-prod.yaml
    check_manifests.py rehearsal rendered-rehearsal.yaml

Asserts what an SRE relies on, so a later edit cannot silently drop it:
probes, security contexts, resources, drain timing, configuration sources,
Services, PodDisruptionBudgets, migration Jobs, per-overlay scale, the
OpenTelemetry Collector, the partners' Gateway and route, scaling ahead of
shows, monitoring, images by digest and PgBouncer with its connection
arithmetic at the autoscalers' maxima (prod), topology spread and drain-safe
disruption budgets, and — by evaluating the NetworkPolicies as Kubernetes
does, addresses included — every allowed and every forbidden network edge
of the call graph. Exits non-zero listing every failure.
"""

import configparser
import ipaddress
import pathlib
import re
import sys

import yaml

# What the binary takes after the grace: its trace flush and runtime stop,
# read from where they are defined (crates/platform/src/shutdown.rs).
SHUTDOWN_RS = pathlib.Path(__file__).resolve().parents[2] / "crates/platform/src/shutdown.rs"
EXIT_ALLOWANCES = sum(
    int(re.search(rf"pub const {name}: Duration = Duration::from_secs\((\d+)\);", SHUTDOWN_RS.read_text()).group(1))
    for name in ("TRACE_FLUSH", "RUNTIME_STOP")
)

# caravan's default statement timeout (crates/platform/src/config/settings.rs),
# which PgBouncer's connect_query must set, since caravan cannot send it through.
SETTINGS_RS = pathlib.Path(__file__).resolve().parents[2] / "crates/platform/src/config/settings.rs"
STATEMENT_TIMEOUT_MS = 1000 * int(
    re.search(r"DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs\((\d+)\);", SETTINGS_RS.read_text()).group(1))
# PostgreSQL keeps this many connections for superusers (its default).
SUPERUSER_RESERVED = 3
POOLER_PORT = 6432

SERVICES = {"catalog": 50051, "scheduling": 50052, "inventory": 50053, "orders": 50054}
# The call graph (ARCHITECTURE.md): who calls whom.
CALLS = {("orders", "catalog"), ("orders", "scheduling"), ("orders", "inventory"),
         ("scheduling", "catalog"), ("scheduling", "inventory")}
METRICS_PORT = 9464
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def load(path):
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def seconds(text):
    match = re.fullmatch(r"(\d+)s", text)
    return int(match.group(1)) if match else None


def config_of(docs):
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("caravan-config")]
    check(len(maps) == 1, f"one caravan-config ConfigMap, found {len(maps)}")
    return maps[0]["data"] if maps else {}


def check_deployment(name, deployment, config, overlay):
    where = f"Deployment {name}"
    pod = deployment["spec"]["template"]["spec"]
    port = SERVICES[name]
    containers = pod["containers"]
    check(len(containers) == 1, f"{where}: one container")
    c = containers[0]
    check(c.get("args") == ["serve", name], f"{where}: runs `caravan serve {name}`")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("grpc") == port, f"{where}: port grpc {port}")
    check(ports.get("metrics") == METRICS_PORT, f"{where}: port metrics {METRICS_PORT}")
    # Probes: native gRPC against the health service.
    probes = {kind: c.get(kind) for kind in ("readinessProbe", "livenessProbe", "startupProbe")}
    for kind, probe in probes.items():
        if check(probe and "grpc" in probe, f"{where}: a grpc {kind}"):
            check(probe["grpc"].get("port") == port, f"{where}: {kind} on port {port}")
    if probes["readinessProbe"] and "grpc" in probes["readinessProbe"]:
        check(probes["readinessProbe"]["grpc"].get("service", "") == "", f"{where}: readiness asks the whole server")
    for kind in ("livenessProbe", "startupProbe"):
        if probes[kind] and "grpc" in probes[kind]:
            check(probes[kind]["grpc"].get("service") == "liveness", f"{where}: {kind} asks `liveness`")
    # Resources.
    resources = c.get("resources", {})
    for part in ("requests", "limits"):
        for what in ("cpu", "memory"):
            check(what in resources.get(part, {}), f"{where}: resources.{part}.{what}")
    # Security.
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccomp RuntimeDefault")
    sc = c.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True, f"{where}: container runAsNonRoot")
    check(sc.get("readOnlyRootFilesystem") is True, f"{where}: read-only root filesystem")
    check(sc.get("allowPrivilegeEscalation") is False, f"{where}: no privilege escalation")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: all capabilities dropped")
    check(pod.get("automountServiceAccountToken") is False, f"{where}: no service account token")
    check(pod.get("serviceAccountName") == name, f"{where}: its own ServiceAccount")
    # Drain: the grace period covers the preStop sleep and the drain.
    sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds")
    check(isinstance(sleep, int) and sleep > 0, f"{where}: a preStop sleep")
    grace = seconds(config.get("CARAVAN_SHUTDOWN_GRACE", ""))
    delay = seconds(config.get("CARAVAN_DRAIN_DELAY", ""))
    check(grace is not None and delay is not None and delay < grace, f"{where}: drain delay within the grace")
    if isinstance(sleep, int) and grace is not None:
        budget = sleep + grace + EXIT_ALLOWANCES
        check(pod.get("terminationGracePeriodSeconds", 30) >= budget,
              f"{where}: terminationGracePeriodSeconds covers preStop {sleep} s + grace {grace} s "
              f"+ trace flush and runtime stop {EXIT_ALLOWANCES} s = {budget} s")
    # Configuration from the ConfigMap, secrets from Secrets.
    env_from = [e.get("configMapRef", {}).get("name", "") for e in c.get("envFrom", [])]
    check(any(n.startswith("caravan-config") for n in env_from), f"{where}: settings from caravan-config")
    env = {e["name"]: e for e in c.get("env", [])}
    check(len(env) == len(c.get("env", [])), f"{where}: no variable set twice")
    migrate = env.get("CARAVAN_MIGRATE", {}).get("value")
    check(migrate == ("apply" if overlay == "dev" else "verify"), f"{where}: CARAVAN_MIGRATE={migrate}")
    db = env.get("CARAVAN_DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(db.get("name", "").startswith("caravan-databases") and db.get("key") == name,
          f"{where}: database URL from the caravan-databases Secret")
    check(env.get("CARAVAN_KEYS_FILE", {}).get("value", "").startswith("/etc/caravan/keys/"), f"{where}: keys file")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    check(volumes.get("keys", {}).get("secret", {}).get("secretName", "").startswith("caravan-keys"),
          f"{where}: keys from the caravan-keys Secret")
    if name in ("scheduling", "orders"):
        check("CARAVAN_SERVICE_KEY_FILE" in env, f"{where}: its own service key")
        check(volumes.get("service-key", {}).get("secret", {}).get("secretName", "").startswith("caravan-service-keys"),
              f"{where}: service key from the caravan-service-keys Secret")
    if overlay == "dev":
        check(deployment["spec"].get("replicas") == 1, f"{where}: one replica in dev")
        check("data" in volumes and "persistentVolumeClaim" in volumes["data"], f"{where}: SQLite on a volume")
    else:
        check("replicas" not in deployment["spec"], f"{where}: no replica count (its autoscaler owns it)")
    # Spread over zones and nodes, counted within the rollout.
    spread = {c.get("topologyKey"): c for c in pod.get("topologySpreadConstraints", [])}
    for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname"):
        constraint = spread.get(key, {})
        check(constraint.get("maxSkew") == 1
              and constraint.get("labelSelector", {}).get("matchLabels") == {"app.kubernetes.io/name": name}
              and "pod-template-hash" in constraint.get("matchLabelKeys", []),
              f"{where}: spread across {key}, skew 1, within one rollout")


def check_services(docs, overlay):
    services = by_kind(docs, "Service")
    for name, port in SERVICES.items():
        for svc_name, headless in ((name, False), (f"{name}-headless", True)):
            svc = services.get(svc_name)
            if not check(svc, f"Service {svc_name}"):
                continue
            spec = svc["spec"]
            check((spec.get("clusterIP") == "None") == headless, f"Service {svc_name}: headless={headless}")
            check(spec.get("selector") == {"app.kubernetes.io/name": name}, f"Service {svc_name}: selects {name}")
            grpc = [p for p in spec.get("ports", []) if p.get("name") == "grpc"]
            check(grpc and grpc[0]["port"] == port and grpc[0].get("appProtocol") == "grpc",
                  f"Service {svc_name}: port grpc {port} with appProtocol")
        check(name in by_kind(docs, "ServiceAccount"), f"ServiceAccount {name}")
        check(name in by_kind(docs, "PodDisruptionBudget"), f"PodDisruptionBudget {name}")
        jobs = by_kind(docs, "Job")
        if overlay == "prod":
            job = jobs.get(f"{name}-migrate")
            if check(job, f"Job {name}-migrate"):
                args = job["spec"]["template"]["spec"]["containers"][0].get("args")
                check(args == ["serve", name, "migrate"], f"Job {name}-migrate: runs the migrations")
                # Two roles: the Job's may change the schema, the replicas'
                # may only read and write rows.
                job_env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0].get("env", [])}
                ref = job_env.get("CARAVAN_DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
                check(ref.get("name", "").startswith("caravan-migration-databases") and ref.get("key") == name,
                      f"Job {name}-migrate: the migration role's URL, from caravan-migration-databases")
                sc = job["spec"]["template"]["spec"]["containers"][0].get("securityContext", {})
                check(sc.get("readOnlyRootFilesystem") is True and sc.get("capabilities", {}).get("drop") == ["ALL"],
                      f"Job {name}-migrate: locked down")
        else:
            check(not jobs, "dev: no migration Jobs (each pod migrates its own SQLite)")


def max_replicas(docs, name):
    """The most replicas the autoscaler of `name` runs (HPA or KEDA ScaledObject)."""
    hpa = by_kind(docs, "HorizontalPodAutoscaler").get(name)
    if hpa:
        return hpa["spec"]["maxReplicas"]
    scaled = by_kind(docs, "ScaledObject").get(name)
    return scaled["spec"]["maxReplicaCount"] if scaled else 1


# Scaled ahead of a show, on scheduling's count of shows about to start.
AHEAD_OF_SHOWS = ("scheduling", "inventory", "orders")


def check_scaling(docs):
    hpas, scaled = by_kind(docs, "HorizontalPodAutoscaler"), by_kind(docs, "ScaledObject")
    for name in SERVICES:
        owners = [n for n in (name in hpas and "HPA", name in scaled and "ScaledObject") if n]
        check(len(owners) == 1, f"{name}: exactly one autoscaler, found {owners}")
        if name in hpas:
            spec = hpas[name]["spec"]
            check(spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                  f"HPA {name}: scales its Deployment")
            check(spec.get("minReplicas", 1) >= 2, f"HPA {name}: at least two replicas")
            check(any(m.get("resource", {}).get("name") == "cpu" for m in spec.get("metrics", [])), f"HPA {name}: on CPU")
            check(spec.get("behavior", {}).get("scaleUp", {}).get("stabilizationWindowSeconds") != 0,
                  f"HPA {name}: does not restate the default scale-up window")
        if name in scaled:
            spec = scaled[name]["spec"]
            check(spec["scaleTargetRef"].get("name") == name, f"ScaledObject {name}: scales its Deployment")
            check(spec.get("minReplicaCount", 0) >= 2, f"ScaledObject {name}: at least two replicas")
            check(spec.get("maxReplicaCount", 0) > spec.get("minReplicaCount", 0), f"ScaledObject {name}: room to scale")
            triggers = spec.get("triggers", [])
            shows = [t for t in triggers if t.get("type") == "prometheus"
                     and "caravan_shows_starting" in t.get("metadata", {}).get("query", "")
                     and "caravan_shows_live" in t["metadata"]["query"]]
            check(shows and float(shows[0]["metadata"].get("threshold", 0)) > 0,
                  f"ScaledObject {name}: scales on the shows starting soon and on air")
            check(any(t.get("type") == "cpu" or ("rpc_server" in t.get("metadata", {}).get("query", ""))
                      for t in triggers), f"ScaledObject {name}: and on its load (calls or CPU)")
    for name in AHEAD_OF_SHOWS:
        check(name in scaled, f"{name}: scaled ahead of shows (a KEDA ScaledObject)")


def check_monitoring(docs):
    rules = by_kind(docs, "PrometheusRule").get("caravan")
    if check(rules, "PrometheusRule caravan"):
        alerts = {r["alert"]: r for g in rules["spec"]["groups"] for r in g["rules"] if "alert" in r}
        for slo in ("PlaceOrderAvailability", "PlaceOrderLatency", "ReserveStockAvailability"):
            check(f"{slo}FastBurn" in alerts and f"{slo}SlowBurn" in alerts, f"PrometheusRule: burn-rate alerts of {slo}")
        for name, alert in alerts.items():
            check(alert.get("labels", {}).get("severity") in ("page", "ticket"), f"alert {name}: severity page or ticket")
            check(alert.get("annotations", {}).get("runbook_url"), f"alert {name}: a runbook entry")
            check("FAILED_PRECONDITION" not in alert["expr"], f"alert {name}: sold out (FAILED_PRECONDITION) never counts")
    monitors = by_kind(docs, "PodMonitor")
    scraped = set()
    for monitor in monitors.values():
        selector = monitor["spec"]["selector"]
        for name in list(SERVICES) + ["otel-collector"]:
            if matches(selector, {"app.kubernetes.io/name": name}):
                check(any(e.get("port") == "metrics" for e in monitor["spec"].get("podMetricsEndpoints", [])),
                      f"PodMonitor {monitor['metadata']['name']}: scrapes the metrics port")
                scraped.add(name)
    check(scraped == set(SERVICES) | {"otel-collector"}, f"PodMonitors scrape the services and the collector: {sorted(scraped)}")
    dashboards = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("caravan-dashboards")]
    check(len(dashboards) == 1 and dashboards[0]["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
          and len(dashboards[0].get("data", {})) >= 4, "Grafana dashboards provisioned by a labelled ConfigMap")


def check_prod(docs, config):
    check_scaling(docs)
    check_monitoring(docs)
    images = [c["image"] for d in [*by_kind(docs, "Deployment").values(), *by_kind(docs, "Job").values()]
              for c in d["spec"]["template"]["spec"]["containers"] if "caravan" in c["image"]]
    check(images and all(re.search(r"@sha256:[0-9a-f]{64}$", i) for i in images),
          f"prod: caravan's images by digest, not by tag: {sorted(set(images))}")
    for name, pdb in by_kind(docs, "PodDisruptionBudget").items():
        check(pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow",
              f"PodDisruptionBudget {name}: unhealthy pods may always be evicted")
    collector = by_kind(docs, "Deployment").get("otel-collector")
    check(collector, "Deployment otel-collector")
    maps = {n: m for n, m in by_kind(docs, "ConfigMap").items() if n.startswith("otel-collector")}
    check(len(maps) == 1 and all(re.fullmatch(r"otel-collector-[a-z0-9]{10}", n) for n in maps),
          f"otel-collector: its configuration in a hashed ConfigMap, so a change rolls the pods: {sorted(maps)}")
    collector_config = next(iter(maps.values()), {}).get("data", {}).get("config.yaml", "")
    if collector:
        mounted = [v.get("configMap", {}).get("name") for v in collector["spec"]["template"]["spec"].get("volumes", [])]
        check(set(maps) <= set(mounted), "otel-collector: mounts the hashed ConfigMap")
        ports = {p["name"]: p["containerPort"] for p in collector["spec"]["template"]["spec"]["containers"][0]["ports"]}
        check(ports.get("metrics") == 8888, "otel-collector: its own metrics on port metrics (8888)")
    parsed = yaml.safe_load(collector_config) if collector_config else {}
    pipeline = (parsed or {}).get("service", {}).get("pipelines", {}).get("traces", {})
    check("otlp" in pipeline.get("receivers", []) and pipeline.get("exporters"), "otel-collector: receives OTLP, exports onward")
    for exporter in pipeline.get("exporters", []):
        tls = (parsed or {}).get("exporters", {}).get(exporter, {}).get("tls", {})
        check(not tls.get("insecure") and tls.get("ca_file"), f"otel-collector: exporter {exporter} verifies TLS (no insecure)")
    check(any(p["spec"]["selector"].get("matchLabels", {}).get("app.kubernetes.io/name") == "otel-collector"
              for p in by_kind(docs, "PodDisruptionBudget").values()), "otel-collector: a PodDisruptionBudget")
    check(config.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").endswith("otel-collector:4317"), "services export to otel-collector")
    check(config.get("OTEL_TRACES_SAMPLER"), "a sampler is set")
    for name, deployment in by_kind(docs, "Deployment").items():
        if name not in SERVICES:
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = container.get("env", [])
        names = [e["name"] for e in env]
        field = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in env}
        resource = next((e.get("value", "") for e in env if e["name"] == "OTEL_RESOURCE_ATTRIBUTES"), "")
        check(field.get("POD_NAME") == "metadata.name" and field.get("POD_NAMESPACE") == "metadata.namespace",
              f"{name}: the pod's name and namespace from the downward API")
        check("k8s.pod.name=$(POD_NAME)" in resource and "k8s.namespace.name=$(POD_NAMESPACE)" in resource
              and "OTEL_RESOURCE_ATTRIBUTES" in names
              and names.index("OTEL_RESOURCE_ATTRIBUTES") > max(names.index("POD_NAME"), names.index("POD_NAMESPACE")),
              f"{name}: spans carry k8s.pod.name and k8s.namespace.name (defined after what they refer to)")
    routes = by_kind(docs, "GRPCRoute")
    route = routes.get("caravan-partners")
    if check(route, "GRPCRoute caravan-partners (the partners' entry point)"):
        spec = route["spec"]
        check(route["apiVersion"] == "gateway.networking.k8s.io/v1", "GRPCRoute: Gateway API v1")
        check(spec.get("parentRefs") and spec["parentRefs"][0].get("name"), "GRPCRoute: attached to a Gateway")
        gateway = by_kind(docs, "Gateway").get(spec["parentRefs"][0].get("name"))
        if check(gateway, "prod: the route's Gateway is in the repository"):
            listener = next((l for l in gateway["spec"]["listeners"]
                             if l["name"] == spec["parentRefs"][0].get("sectionName")), {})
            check(listener.get("protocol") == "HTTPS" and listener.get("tls", {}).get("mode") == "Terminate"
                  and listener["tls"].get("certificateRefs"), "Gateway: the route's listener terminates TLS with a certificate")
            allowed_routes = listener.get("allowedRoutes", {})
            check(allowed_routes.get("namespaces", {}).get("from") in ("Same", "Selector")
                  and {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"} in allowed_routes.get("kinds", []),
                  "Gateway: accepts GRPCRoutes of chosen namespaces only")
        routed = {}
        for rule in spec.get("rules", []):
            for match in rule.get("matches", []):
                for ref in rule.get("backendRefs", []):
                    routed[match.get("method", {}).get("service")] = (ref.get("name"), ref.get("port"))
        for name, port in SERVICES.items():
            grpc_service = f"caravan.{name}.v1.{name.capitalize()}Service"
            check(routed.get(grpc_service) == (name, port), f"GRPCRoute: {grpc_service} -> {name}:{port}")
    databases = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].startswith("caravan-databases")]
    check(not databases, "prod: database URLs are not committed (Secret created out of band)")
    check_pooler(docs, config)


def check_pooler(docs, config):
    """PgBouncer before PostgreSQL, and connections that fit at the HPA maxima."""
    deployments = by_kind(docs, "Deployment")
    pooler = deployments.get("pgbouncer")
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("pgbouncer")]
    if not (check(pooler, "prod: Deployment pgbouncer") and check(len(maps) == 1, "prod: one pgbouncer ConfigMap")):
        return
    ini = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"), inline_comment_prefixes=None)
    ini.read_string(maps[0]["data"]["pgbouncer.ini"])
    bouncer = ini["pgbouncer"]
    number = lambda key, default=0: int(bouncer.get(key, default))

    # What caravan's statements need of a pooler (crates/platform/src/db.rs, `Db`).
    check(bouncer.get("pool_mode") == "transaction", "pgbouncer: pool_mode = transaction")
    check(bouncer.get("server_reset_query") == "DEALLOCATE ALL" and bouncer.get("server_reset_query_always") == "1",
          "pgbouncer: DEALLOCATE ALL whenever a server connection changes hands")
    check("extra_float_digits" in bouncer.get("ignore_startup_parameters", ""),
          "pgbouncer: ignores sqlx's extra_float_digits")
    check(config.get("CARAVAN_DB_POOLER") == "transaction", "prod: CARAVAN_DB_POOLER=transaction")
    check("CARAVAN_DB_STATEMENT_TIMEOUT" not in config, "prod: no CARAVAN_DB_STATEMENT_TIMEOUT (the pooler sets it)")
    for name in SERVICES:
        line = ini["databases"].get(name, "")
        check(f"dbname={name}" in line, f"pgbouncer: a pool for the {name} database")
        check(f"statement_timeout = {STATEMENT_TIMEOUT_MS}" in line,
              f"pgbouncer: {name}'s server connections get caravan's statement timeout ({STATEMENT_TIMEOUT_MS} ms)")

    # Server side: every PgBouncer replica's pools, the migration Jobs and
    # the superusers' reserve within PostgreSQL's max_connections.
    spec = pooler["spec"]
    replicas = spec.get("replicas", 1)
    check(spec.get("strategy", {}).get("rollingUpdate", {}).get("maxSurge") == 0,
          "pgbouncer: never more replicas than counted (maxSurge 0)")
    check(not any(h["spec"]["scaleTargetRef"]["name"] == "pgbouncer"
                  for h in list(by_kind(docs, "HorizontalPodAutoscaler").values())
                  + list(by_kind(docs, "ScaledObject").values())), "pgbouncer: a fixed replica count")
    per_pool = number("default_pool_size", 20) + number("reserve_pool_size")
    if number("max_db_connections"):
        per_pool = min(per_pool, number("max_db_connections"))
    pools = len(ini["databases"])
    migrations = [j for name, j in by_kind(docs, "Job").items() if name.endswith("-migrate")]
    for job in migrations:
        env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        check(env.get("CARAVAN_DB_POOLER") == "none",
              f"{job['metadata']['name']}: migrates on PostgreSQL directly (CARAVAN_DB_POOLER=none)")
    jobs = len(migrations)
    server_limit = int(pooler["metadata"].get("annotations", {}).get("caravan.io/postgres-max-connections", 0))
    server = replicas * pools * per_pool + jobs + SUPERUSER_RESERVED
    print(f"server connections: {replicas} PgBouncer x {pools} pools x {per_pool} + {jobs} migration Jobs "
          f"+ {SUPERUSER_RESERVED} reserved = {server} <= max_connections {server_limit}")
    check(server_limit and server <= server_limit,
          f"PostgreSQL connections at most {server_limit}, the pools need {server}")

    # Client side: every replica at its HPA maximum plus its surge pod, each
    # with its pool and health's connection, even if all land on one PgBouncer.
    pool = int(config.get("CARAVAN_DB_MAX_CONNECTIONS", 10)) + 1
    clients = 0
    for name in SERVICES:
        surge = deployments[name]["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", 0)
        clients += (max_replicas(docs, name) + int(surge)) * pool
    limit = number("max_client_conn", 100)
    print(f"client connections: (autoscaler maxima + surge) x {pool} = {clients} <= max_client_conn {limit}")
    check(clients <= limit, f"PgBouncer max_client_conn {limit} below the {clients} clients at the HPA maxima")

    # Idle connections close on both sides.
    check(number("server_idle_timeout", 600) > 0, "pgbouncer: idle server connections close")
    idle = seconds(config.get("CARAVAN_DB_IDLE_TIMEOUT", ""))
    check(idle and 0 < idle <= number("server_idle_timeout", 600),
          "prod: CARAVAN_DB_IDLE_TIMEOUT set, no longer than PgBouncer's server_idle_timeout")
    check(any(p.get("spec", {}).get("selector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "pgbouncer"
              for p in by_kind(docs, "PodDisruptionBudget").values()), "pgbouncer: a PodDisruptionBudget")


def check_dev(docs, config):
    check(not by_kind(docs, "HorizontalPodAutoscaler") and not by_kind(docs, "ScaledObject"), "dev: no autoscaling")
    secrets = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].startswith("caravan-databases")]
    check(len(secrets) == 1, "dev: a caravan-databases Secret")
    check(not config.get("OTEL_EXPORTER_OTLP_ENDPOINT"), "dev: no trace export")


# --- NetworkPolicies, evaluated as Kubernetes does -------------------------

def matches(selector, labels):
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def peer_matches(peer, policy_ns, pod):
    if "ipBlock" in peer:
        if pod["namespace"] is not None:
            return False  # A pod: ipBlocks are for addresses outside the cluster.
        block = peer["ipBlock"]
        address = ipaddress.ip_address(pod["ip"])
        return (address in ipaddress.ip_network(block["cidr"])
                and not any(address in ipaddress.ip_network(e) for e in block.get("except", [])))
    if pod["namespace"] is None:
        return False
    pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
    if ns_sel is not None:
        ns_ok = matches(ns_sel, pod["namespace_labels"])
    else:
        ns_ok = pod["namespace"] == policy_ns
    pod_ok = matches(pod_sel, pod["labels"]) if pod_sel is not None else True
    return ns_ok and pod_ok


def port_matches(ports, port):
    return not ports or any(p.get("port") == port for p in ports)


def allowed(policies, direction, subject, peer, port, namespace):
    """Whether `subject` may send (Egress) to / receive (Ingress) from `peer` on `port`."""
    if subject["namespace"] != namespace:
        return True  # Not ours: not isolated by these policies.
    selecting = [p for p in policies if matches(p["spec"]["podSelector"], subject["labels"])
                 and direction in p["spec"].get("policyTypes", ["Ingress"])]
    if not selecting:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(peers_key)
            if (not peers or any(peer_matches(p, namespace, peer) for p in peers)) and port_matches(rule.get("ports"), port):
                return True
    return False


def connects(policies, src, dst, port, namespace):
    return (allowed(policies, "Egress", src, dst, port, namespace)
            and allowed(policies, "Ingress", dst, src, port, namespace))


def check_network(docs, overlay):
    policies = list(by_kind(docs, "NetworkPolicy").values())
    namespace = next(d["metadata"]["name"] for d in docs if d["kind"] == "Namespace")
    ns_labels = {"kubernetes.io/metadata.name": namespace}

    def pod(name, component="service"):
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component,
                  "app.kubernetes.io/part-of": "caravan"}
        return {"labels": labels, "namespace": namespace, "namespace_labels": ns_labels}

    def outsider(ns, ns_extra=None, labels=None):
        return {"labels": labels or {"app": "something"}, "namespace": ns,
                "namespace_labels": {"kubernetes.io/metadata.name": ns, **(ns_extra or {})}}

    pods = {name: pod(name) for name in SERVICES}
    partner = outsider("gateway", {"caravan.io/partner-ingress": "true"})
    scraper = outsider("monitoring", {"caravan.io/metrics-scraper": "true"})
    stranger = outsider("elsewhere")
    neighbour = {"labels": {"app": "debug"}, "namespace": namespace, "namespace_labels": ns_labels}
    dns = outsider("kube-system", labels={"k8s-app": "kube-dns"})
    # The database: an address inside the range allow-database names; the
    # internet: one outside it.
    blocks = [p["ipBlock"]["cidr"] for r in by_kind(docs, "NetworkPolicy")["allow-database"]["spec"]["egress"]
              for p in r.get("to", []) if "ipBlock" in p]
    check(blocks and all(ipaddress.ip_network(b).prefixlen >= 8 for b in blocks),
          f"{overlay}: allow-database names the database's address range, not the internet: {blocks}")
    inside = str(next(ipaddress.ip_network(blocks[0]).hosts())) if blocks else "192.0.2.1"
    database = {"labels": {}, "namespace": None, "namespace_labels": {}, "ip": inside}
    internet = {"labels": {}, "namespace": None, "namespace_labels": {}, "ip": "203.0.113.7"}
    collector = pod("otel-collector", component="telemetry")
    pooler = pod("pgbouncer", component="pooler")

    # Every pair of services, both ways: exactly the call graph.
    for src in SERVICES:
        for dst, port in SERVICES.items():
            if src == dst:
                continue
            want = (src, dst) in CALLS
            got = connects(policies, pods[src], pods[dst], port, namespace)
            check(got == want, f"{overlay}: {src} -> {dst}:{port} {'allowed' if want else 'denied'} (got {'allowed' if got else 'denied'})")
            check(not connects(policies, pods[src], pods[dst], METRICS_PORT, namespace),
                  f"{overlay}: {src} -> {dst} metrics denied")
    for name, port in SERVICES.items():
        check(connects(policies, partner, pods[name], port, namespace), f"{overlay}: partners -> {name}:{port} allowed")
        check(not connects(policies, partner, pods[name], METRICS_PORT, namespace), f"{overlay}: partners -> {name} metrics denied")
        check(connects(policies, scraper, pods[name], METRICS_PORT, namespace), f"{overlay}: Prometheus -> {name} metrics allowed")
        check(not connects(policies, scraper, pods[name], port, namespace), f"{overlay}: Prometheus -> {name}:{port} denied")
        for other in (stranger, neighbour):
            check(not connects(policies, other, pods[name], port, namespace),
                  f"{overlay}: {other['namespace']}/{other['labels']} -> {name}:{port} denied")
        check(connects(policies, pods[name], dns, 53, namespace), f"{overlay}: {name} -> DNS allowed")
        if overlay == "prod":
            # Through PgBouncer only.
            check(connects(policies, pods[name], pooler, POOLER_PORT, namespace), f"{overlay}: {name} -> pgbouncer allowed")
            check(not connects(policies, pods[name], database, 5432, namespace),
                  f"{overlay}: {name} -> PostgreSQL directly denied")
        else:
            check(connects(policies, pods[name], database, 5432, namespace), f"{overlay}: {name} -> its database allowed")
        check(not connects(policies, pods[name], internet, 443, namespace), f"{overlay}: {name} -> the internet denied")
        check(not connects(policies, pods[name], internet, 5432, namespace),
              f"{overlay}: {name} -> a PostgreSQL on the internet denied")
        check(not connects(policies, pods[name], stranger, port, namespace), f"{overlay}: {name} -> another namespace denied")
        if overlay == "prod":
            check(connects(policies, pods[name], collector, 4317, namespace), f"{overlay}: {name} -> otel-collector allowed")
            migration = pod(f"{name}-migrate", component="migration")
            check(connects(policies, migration, database, 5432, namespace), f"{overlay}: {name}-migrate -> database allowed")
            check(not connects(policies, migration, pods[name], port, namespace), f"{overlay}: {name}-migrate -> {name} denied")
    # Anything else in the namespace (a debug pod, a future workload) is
    # denied both ways until a policy says otherwise.
    check(not connects(policies, stranger, neighbour, 8080, namespace), f"{overlay}: default deny of ingress")
    check(not connects(policies, neighbour, stranger, 8080, namespace), f"{overlay}: default deny of egress")
    if overlay == "prod":
        check(not connects(policies, stranger, collector, 4317, namespace), "prod: another namespace -> otel-collector denied")
        check(connects(policies, pooler, database, 5432, namespace), "prod: pgbouncer -> PostgreSQL allowed")
        check(not connects(policies, pooler, internet, 5432, namespace), "prod: pgbouncer -> the internet denied")
        check(connects(policies, scraper, collector, 8888, namespace), "prod: Prometheus -> otel-collector metrics allowed")
        for other in (stranger, neighbour):
            check(not connects(policies, other, pooler, POOLER_PORT, namespace),
                  f"prod: {other['namespace']}/{other['labels']} -> pgbouncer denied")


def check_drills(docs, overlay):
    """Fault-injection drills: allowed only on a rehearsal cluster."""
    for name, deployment in by_kind(docs, "Deployment").items():
        if name not in SERVICES:
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        allowed = env.get("CARAVAN_CHAOS_ALLOWED") == "true"
        if overlay == "rehearsal":
            volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"].get("volumes", [])}
            chaos = volumes.get("chaos", {}).get("configMap", {})
            check(allowed and env.get("CARAVAN_CHAOS_FILE", "").startswith("/etc/caravan/chaos/"),
                  f"rehearsal: {name} may run drills")
            check(chaos.get("name") == "caravan-chaos" and chaos.get("optional") is True,
                  f"rehearsal: {name} reads drills from the optional ConfigMap caravan-chaos")
        else:
            check(not allowed and "CARAVAN_CHAOS_FILE" not in env, f"{overlay}: {name} runs no fault-injection drill")


def main():
    overlay, path = sys.argv[1], sys.argv[2]
    docs = load(path)
    check_drills(docs, overlay)
    # A rehearsal cluster is production with drills allowed.
    shown, overlay = overlay, ("prod" if overlay == "rehearsal" else overlay)
    config = config_of(docs)
    deployments = by_kind(docs, "Deployment")
    for name in SERVICES:
        if check(name in deployments, f"Deployment {name}"):
            check_deployment(name, deployments[name], config, overlay)
    check_services(docs, overlay)
    (check_prod if overlay == "prod" else check_dev)(docs, config)
    check_network(docs, overlay)
    if failures:
        print(f"{path}: {len(failures)} problem(s):")
        for failure in failures:
            print(f"  - {failure}")
        sys.exit(1)
    print(f"{path}: {shown} manifests hold every checked property")


if __name__ == "__main__":
    main()
