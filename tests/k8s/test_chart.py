"""The Helm chart: it lints, renders valid Kubernetes objects with each values file, refuses
unsafe values, and agrees with what the services really expose (ports, commands, gRPC
service names, settings)."""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Iterator
from typing import Any, cast

import helm_python
import pytest

import command_svc.app
import projector.app
import query_svc.app
from command_svc.worker.partition import PartitionProcessor
from devkit.k8s import CHART, ROOT, Manifest, documents, notes, render, values_file
from gateway.api import Gateway
from tests.k8s import kube
from voting.cli import build_parser
from voting.config import (
    CommandSettings,
    GatewaySettings,
    ProjectorSettings,
    QuerySettings,
    TopicSettings,
    WorkerSettings,
    describe,
)

VARIANTS = {
    "default": None,
    "production": values_file("values-production.yaml"),
    "dev": values_file("values-dev.yaml"),
}
COMPONENTS = ("command", "query", "worker", "projector", "gateway")
LISTEN_DEFAULTS: dict[str, tuple[type[Any], str]] = {
    "command": (CommandSettings, "listen"),
    "query": (QuerySettings, "listen"),
    "worker": (WorkerSettings, "health_listen"),
    "projector": (ProjectorSettings, "listen"),
    "gateway": (GatewaySettings, "listen"),
}
GRPC_SERVICES = {
    "command": command_svc.app.SERVICE_DESCRIPTOR.full_name,
    "query": query_svc.app.SERVICE_DESCRIPTOR.full_name,
    "projector": projector.app.SERVICE_DESCRIPTOR.full_name,
    "worker": "",  # the worker's server hosts health alone
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@functools.cache
def objects(variant: str) -> list[Manifest]:
    return documents(render(VARIANTS[variant]))


def of_kind(variant: str, kind: str) -> list[Manifest]:
    return [o for o in objects(variant) if o["kind"] == kind]


def component(manifest: Manifest) -> str:
    return str(manifest["metadata"]["labels"]["app.kubernetes.io/component"])


def pod_specs(variant: str) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    """(owner, pod spec) of every Deployment, Job and CronJob."""
    for o in objects(variant):
        if o["kind"] in ("Deployment", "Job"):
            yield o, o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            yield o, o["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def deployment(variant: str, name: str) -> Manifest:
    return next(d for d in of_kind(variant, "Deployment") if component(d) == name)


def container(manifest: Manifest) -> dict[str, Any]:
    spec = manifest["spec"]["template"]["spec"]
    (only,) = spec["containers"]
    return cast(dict[str, Any], only)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def config_data(variant: str) -> dict[str, str]:
    (config,) = [
        c
        for c in of_kind(variant, "ConfigMap")
        if "data" in c and c["metadata"]["name"].endswith("-config")
    ]
    return cast(dict[str, str], config["data"])


def port_of(listen: str) -> int:
    return int(listen.rpartition(":")[2])


def setting_field(settings: type[Any], name: str) -> dataclasses.Field[Any]:
    return next(f for f in dataclasses.fields(settings) if f.name == name)


# -- Helm: lint, schema, refusals ---------------------------------------------------------


def test_chart_lints_without_warnings(variant: str) -> None:
    report = helm_python.lint(CHART, VARIANTS[variant], strict=True, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [], problems
    assert report["errors"] == []


@pytest.mark.parametrize(
    "values",
    [
        {"command": {"replicas": "two"}},
        {"environment": "staging"},
        {"kafka": {"partitions": 0}},
        {"extraEnv": {"VOTING_WORKER_BATCH_MAX": 1000}},  # settings are strings
        {"extraEnv": {"PATH": "/bin"}},  # not a setting
        {"comand": {"replicas": 2}},  # a typo is not silently ignored
        {"gateway": {"ingress": {"enabled": True}}},  # an ingress needs hosts
    ],
    ids=str,
)
def test_schema_refuses_bad_values(values: dict[str, Any]) -> None:
    with pytest.raises(helm_python.HelmValuesError):
        render(values)
    report = helm_python.lint(CHART, values, kube_version="v1.30.0")
    assert report["errors"], report


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (
            {"security": {"voterKeySecret": {"name": ""}}},
            "production needs VOTING_VOTER_KEY_SECRET",
        ),
        ({"auth": {"mode": "development"}}, "needs environment=development"),
        ({"auth": {"jwt": {"keysSecret": ""}}}, "auth.mode=jwt needs a Secret"),
        ({"worker": {"replicas": 9}}, "worker.replicas must not exceed kafka.partitions"),
        ({"projector": {"replicas": 9}}, "projector.replicas must not exceed kafka.partitions"),
        ({"redis": {"existingSecret": {"name": ""}}}, "redis: set redis.existingSecret.name"),
        ({"tls": {"enabled": True}}, "tls.enabled needs a Secret"),
        ({"receipts": {"enabled": True}}, "receipts need a Secret"),
        (
            {"kafka": {"clientConfig": {"a": "b"}, "clientConfigSecret": {"name": "k"}}},
            "not both",
        ),
        ({"shutdown": {"terminationGracePeriodSeconds": 15}}, "must exceed"),
        ({"serviceAccount": {"create": False}}, "name an existing service account"),
        (
            {"tls": {"enabled": True, "existingSecret": "t", "clientAuth": "require"}},
            "the gateway needs a client certificate",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_chart_refuses_unsafe_settings(values: dict[str, Any], reason: str) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=reason):
        render(values)


def test_development_mode_needs_no_secrets() -> None:
    env_names = {
        e["name"]
        for d in of_kind("dev", "Deployment")
        for e in container(d)["env"]
        if "valueFrom" in e
    }
    assert env_names == {"VOTING_DYNAMODB_ACCESS_KEY_ID", "VOTING_DYNAMODB_SECRET_ACCESS_KEY"}
    assert config_data("dev")["VOTING_ENVIRONMENT"] == "development"


# -- Kubernetes: every object is valid --------------------------------------------------


@pytest.mark.parametrize("version", kube.KUBE_VERSIONS)
def test_every_object_is_valid_kubernetes(variant: str, version: str) -> None:
    for manifest in objects(variant):
        if not kube.is_custom(manifest):
            kube.validate(manifest, version=version)


def test_custom_resources_are_only_the_service_monitor() -> None:
    """kubernetes-validate knows built-in kinds only; the one custom resource, the
    prometheus-operator ServiceMonitor, is checked here: it selects the components'
    Services by labels they carry and scrapes a port they all name `metrics`."""
    custom = [o for v in VARIANTS for o in objects(v) if kube.is_custom(o)]
    assert [o["kind"] for o in custom] == ["ServiceMonitor"]  # production only
    (monitor,) = custom
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = {
        component(s)
        for s in of_kind("production", "Service")
        if selector.items() <= s["metadata"]["labels"].items()
        and any(p["name"] == "metrics" for p in s["spec"]["ports"])
    }
    assert scraped == set(COMPONENTS)
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


# -- The chart agrees with the services ---------------------------------------------------


def test_ports_are_the_services_defaults(variant: str) -> None:
    health = port_of(config_data(variant)["VOTING_HEALTH_LISTEN"])
    metrics = port_of(config_data(variant)["VOTING_METRICS_LISTEN"])
    for name in COMPONENTS:
        listen = setting_field(*LISTEN_DEFAULTS[name])
        default = port_of(str(listen.default))
        spec = container(deployment(variant, name))
        assert env_of(spec)[listen.metadata["env"]] == f"0.0.0.0:{default}"
        ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
        assert ports.pop("metrics") == metrics
        if name != "gateway":
            assert ports.pop("grpc-health") == health
        assert list(ports.values()) == [default]


def test_containers_run_real_voting_commands(variant: str) -> None:
    parser = build_parser()
    commands = {}
    for owner, spec in pod_specs(variant):
        for c in spec["containers"]:
            try:
                parser.parse_args(c["args"])
            except SystemExit:
                pytest.fail(f"{owner['metadata']['name']}: not a voting command: {c['args']}")
            commands[component(owner)] = c["args"]
    assert commands["command"] == ["command-svc"]
    assert commands["query"] == ["query-svc"]
    assert commands["worker"] == ["worker"]
    assert commands["projector"] == ["projector"]
    if "gateway" in commands:
        assert commands["gateway"] == ["gateway"]
    assert commands["init"] == ["init"]
    if "recount" in commands:
        assert commands["recount"] == ["recount", "--sweep"]


def test_probes_ask_the_services_health(variant: str) -> None:
    health = port_of(config_data(variant)["VOTING_HEALTH_LISTEN"])
    for name, service in GRPC_SERVICES.items():
        spec = container(deployment(variant, name))
        for probe in ("startupProbe", "livenessProbe"):
            assert spec[probe]["grpc"] == {"port": health}  # the server as a whole
        readiness = spec["readinessProbe"]["grpc"]
        assert readiness["port"] == health
        assert readiness.get("service", "") == service
    app = Gateway(client=cast(Any, None), hub=cast(Any, None), settings=GatewaySettings()).app()
    routes = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    gateway = container(deployment(variant, "gateway"))
    assert gateway["readinessProbe"]["httpGet"]["path"] in routes


def test_every_variable_is_a_real_setting(variant: str) -> None:
    settings = {env for env, _, _ in describe()}
    names = set(config_data(variant))
    for _, spec in pod_specs(variant):
        for c in spec["containers"]:
            names |= {e["name"] for e in c.get("env", [])}
    unknown = {n for n in names - settings if not n.startswith("OTEL_")}
    assert unknown == set()


def test_graceful_stop_fits_in_the_termination_grace(variant: str) -> None:
    grace = float(config_data(variant)["VOTING_SHUTDOWN_GRACE_S"])
    for d in of_kind(variant, "Deployment"):
        spec = d["spec"]["template"]["spec"]
        sleep = container(d)["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert sleep > 0
        assert spec["terminationGracePeriodSeconds"] > sleep + grace


def test_the_worker_may_be_a_deployment() -> None:
    """Transactional ids belong to input partitions, not pods: whichever pod is assigned
    partition 3 fences the previous owner with the same id. No stable pod identity."""
    ids = {
        PartitionProcessor(
            partition=p, kafka=cast(Any, None), topics=TopicSettings(), group_id="dedup-worker"
        )._transactional_id
        for p in (3, 3, 4)
    }
    assert ids == {"dedup-worker-votes-3", "dedup-worker-votes-4"}
    assert deployment("default", "worker")["kind"] == "Deployment"


# -- Kubernetes practice ------------------------------------------------------------------


def test_pods_are_locked_down(variant: str) -> None:
    for owner, spec in pod_specs(variant):
        where = owner["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] == 10001, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        assert spec["enableServiceLinks"] is False, where  # no *_PORT variables
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes["tmp"], where
        for c in spec["containers"]:
            context = c["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert {"requests", "limits"} <= set(c["resources"]), where
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], where
            mounted = {m["name"] for m in c["volumeMounts"]}
            assert mounted == set(volumes), where


def test_secrets_are_referred_to_never_carried(variant: str) -> None:
    assert of_kind(variant, "Secret") == []
    for _, spec in pod_specs(variant):
        for volume in spec["volumes"]:
            if "secret" in volume:
                assert volume["secret"]["secretName"]
        for c in spec["containers"]:
            for e in c.get("env", []):
                if "valueFrom" in e:
                    ref = e["valueFrom"]["secretKeyRef"]
                    assert ref["name"], e
                    assert ref["key"], e
                else:
                    assert not any(w in e["name"] for w in ("SECRET", "PASSWORD", "TOKEN")), e
    assert "VOTING_REDIS_URL" not in config_data("production")
    assert "VOTING_KAFKA_CLIENT_CONFIG" not in config_data("production")


def test_every_deployment_has_a_budget_and_spreads(variant: str) -> None:
    budgets = {component(p): p for p in of_kind(variant, "PodDisruptionBudget")}
    for d in of_kind(variant, "Deployment"):
        selector = d["spec"]["selector"]["matchLabels"]
        assert budgets[component(d)]["spec"]["selector"]["matchLabels"] == selector
        assert selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        spread = d["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
        assert variant == "dev" or len(spread) == 2


def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(variant: str) -> None:
    scaled = {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(variant, "HorizontalPodAutoscaler")
    }
    deployments = {d["metadata"]["name"]: d for d in of_kind(variant, "Deployment")}
    assert scaled <= set(deployments)
    for name, d in deployments.items():
        assert ("replicas" in d["spec"]) == (name not in scaled), name
    expected = set() if variant == "dev" else {"command", "query", "gateway"}
    assert {component(deployments[n]) for n in scaled} == expected


def test_services_and_policies_name_real_ports(variant: str) -> None:
    pods = [
        (d["spec"]["template"]["metadata"]["labels"], container(d))
        for d in of_kind(variant, "Deployment")
    ]

    def ports_selected(selector: dict[str, str]) -> list[set[str]]:
        return [
            {p["name"] for p in c["ports"]}
            for labels, c in pods
            if selector.items() <= labels.items()
        ]

    for service in of_kind(variant, "Service"):
        selected = ports_selected(service["spec"]["selector"])
        assert len(selected) == 1, service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in selected[0]
    for policy in of_kind(variant, "NetworkPolicy"):
        selected = ports_selected(policy["spec"]["podSelector"]["matchLabels"])
        for rule in policy["spec"].get("ingress", []):
            for port in rule["ports"]:
                assert all(port["port"] in names for names in selected), policy["metadata"]


def test_the_gateway_reads_from_the_headless_query_service() -> None:
    services = {s["metadata"]["name"]: s for s in of_kind("default", "Service")}
    target = env_of(container(deployment("default", "gateway")))["VOTING_GATEWAY_QUERY_TARGET"]
    host, _, port = target.rpartition(":")
    assert services[host]["spec"]["clusterIP"] == "None"
    assert int(port) == port_of(QuerySettings().listen)


def test_config_map_references_resolve(variant: str) -> None:
    maps = {c["metadata"]["name"] for c in of_kind(variant, "ConfigMap")}
    for owner, spec in pod_specs(variant):
        for c in spec["containers"]:
            for source in c.get("envFrom", []):
                assert source["configMapRef"]["name"] in maps, owner["metadata"]["name"]


def test_init_runs_as_a_hook_before_the_release_exists() -> None:
    hooks = {
        o["kind"]: o
        for o in objects("default")
        if "helm.sh/hook" in o["metadata"].get("annotations", {})
    }
    assert set(hooks) == {"Job", "ServiceAccount"}
    job, account = hooks["Job"], hooks["ServiceAccount"]
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    weight = int(account["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert weight < int(annotations["helm.sh/hook-weight"])
    spec = job["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    (c,) = spec["containers"]
    assert "envFrom" not in c  # the ConfigMap does not exist yet
    assert config_data("default").items() <= env_of(c).items()


def test_app_version_is_the_package_version() -> None:
    with helm_python.Chart.load(CHART) as chart:
        app_version = chart.metadata["appVersion"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert app_version == pyproject["project"]["version"]


def test_dashboard_copy_is_current() -> None:
    copy = CHART / "dashboards" / "voting-dashboard.json"
    assert copy.read_bytes() == (ROOT / "k8s" / "grafana" / "voting-dashboard.json").read_bytes(), (
        "copy k8s/grafana/voting-dashboard.json to k8s/helm/voting/dashboards/"
    )
    (dashboard,) = [
        c for c in of_kind("production", "ConfigMap") if "voting-dashboard.json" in c["data"]
    ]
    assert dashboard["data"]["voting-dashboard.json"].strip() == copy.read_text().strip()


def test_notes_list_the_secrets_production_needs() -> None:
    text = notes()
    assert "voting-command:50051" in text
    assert "voting-voter-key" in text
    assert "voting-jwt-keys" in text
