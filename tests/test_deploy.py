"""What can be checked of ``deploy/`` without a container engine or a cluster:

- the Kubernetes manifests against the Kubernetes JSON schemas bundled by ``kubernetes-validate``
  (offline), and the invariants the server needs (non-root, read-only root, probes on the real
  endpoints, grace period above the shutdown timeout, one key for all replicas);
- the compose file against the compose-spec schema ``check-jsonschema`` ships;
- the example tenant configs load (``check-config``);
- the nginx configuration passes ``nginx -t``;
- the Containerfile's install steps, run on the plain Debian Python into a fresh venv, give a
  working ``smart-imaging`` whose HEALTHCHECK command passes and which stops with 0 on SIGTERM.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from joserfc.jwk import ECKey

from smart_imaging.cli import check_config

from .support.ports import free_port
from .support.processes import stop_process, wait_for_url

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S_VERSIONS = ("1.30", "1.33")  # the oldest we support (preStop sleep, HPA v2, PDB v1), and a newer
TENANT_ENV = {
    "EHR_FHIR_BASE_URL": "https://ehr.example.org/fhir",
    "EHR_CLIENT_JWK": json.dumps(
        ECKey.generate_key("P-384", parameters={"kid": "k", "alg": "ES384"}, private=True).as_dict(
            private=True
        )
    ),
    "ORTHANC_PASSWORD": "example",
}


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def by_kind(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_against_the_kubernetes_schemas(version: str) -> None:
    resources_ = [d for d in manifests() if d["kind"] != "Kustomization"]
    assert {d["kind"] for d in resources_} >= {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Secret",
        "ConfigMap",
    }
    for doc in resources_:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_refuses_a_broken_manifest() -> None:
    """The check above can fail: a typo'd field and a wrong type are both refused."""
    deployment = by_kind("Deployment", "smart-imaging")
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    wrong = copy.deepcopy(deployment)
    wrong["spec"]["replicas"] = "three"
    for doc in (typo, wrong):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_the_deployment_gives_each_replica_what_it_needs() -> None:
    deployment = by_kind("Deployment", "smart-imaging")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["enableServiceLinks"] is False  # else SMART_IMAGING_PORT=tcp://... from the Service
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/var/lib/smart-imaging", "/etc/smart-imaging/tenants"} <= mounts
    settings = by_kind("ConfigMap", "smart-imaging-settings")["data"]
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + float(settings["SMART_IMAGING_SHUTDOWN_TIMEOUT"])
    assert int(settings["SMART_IMAGING_WORKERS"]) <= int(container["resources"]["limits"]["cpu"])
    sources = {ref.get("secretRef", {}).get("name") for ref in container["envFrom"]}
    assert (
        "smart-imaging" in sources and "SMART_IMAGING_KEY" in by_kind("Secret", "smart-imaging")["stringData"]
    )
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_service_pdb_and_hpa_select_the_deployment() -> None:
    labels = by_kind("Deployment", "smart-imaging")["spec"]["template"]["metadata"]["labels"]
    assert by_kind("Service", "smart-imaging")["spec"]["selector"].items() <= labels.items()
    assert (
        by_kind("PodDisruptionBudget", "smart-imaging")["spec"]["selector"]["matchLabels"].items()
        <= labels.items()
    )
    hpa = by_kind("HorizontalPodAutoscaler", "smart-imaging")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "smart-imaging"}
    assert hpa["minReplicas"] >= 2


def test_the_example_tenant_configs_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TENANT_ENV.items():
        monkeypatch.setenv(name, value)
    for name, text in by_kind("ConfigMap", "smart-imaging-tenants")["data"].items():
        (tmp_path / name).write_text(text)
    assert check_config(tmp_path) == 0
    assert check_config(DEPLOY / "tenants") == 0


def test_compose_file_follows_the_compose_spec() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(schema_file.read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(compose)
    broken = copy.deepcopy(compose)
    broken["services"]["smart-imaging"]["readonly"] = True  # a typo: the spec knows no such key
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validators.validator_for(schema)(schema).validate(broken)
    server = compose["services"]["smart-imaging"]
    assert server["read_only"] is True and not server["user"].startswith("0")
    assert server["deploy"]["replicas"] >= 2 and "/tmp" in server["tmpfs"]
    grace = float(server["stop_grace_period"].rstrip("s"))
    assert grace > float(server["environment"]["SMART_IMAGING_SHUTDOWN_TIMEOUT"])
    assert "${SMART_IMAGING_KEY:?" in server["environment"]["SMART_IMAGING_KEY"]  # required, one for all
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), volume


@pytest.mark.integration
def test_the_nginx_configuration_passes_nginx_t(tmp_path: Path) -> None:
    conf = (
        (DEPLOY / "nginx" / "smart-imaging.conf").read_text().replace("smart-imaging:8000", "127.0.0.1:8000")
    )
    (tmp_path / "site.conf").write_text(conf.replace("listen 8080;", f"listen 127.0.0.1:{free_port()};"))
    main = f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
    main += f"http {{ access_log off; client_body_temp_path {tmp_path}; proxy_temp_path {tmp_path}; "
    main += f"include {tmp_path}/site.conf; }}\n"
    (tmp_path / "nginx.conf").write_text(main)
    result = subprocess.run(
        [
            shutil.which("nginx") or "/usr/sbin/nginx",
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def containerfile_build_stage() -> tuple[list[str], list[str]]:
    """(files the build stage copies, its RUN commands), from deploy/Containerfile."""
    text = (DEPLOY / "Containerfile").read_text().replace("\\\n", " ")
    build = text.split("\nFROM ", 2)[1]  # the first stage
    copies = [line.split()[1:-1] for line in build.splitlines() if line.startswith("COPY ")]
    runs = [line[4:].strip() for line in build.splitlines() if line.startswith("RUN ")]
    return [name for names in copies for name in names], runs


def image_env() -> dict[str, str]:
    text = (DEPLOY / "Containerfile").read_text().replace("\\\n", " ")
    final = text.rsplit("\nFROM ", 1)[1]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            env.update(item.split("=", 1) for item in shlex.split(line[4:]))  # type: ignore[misc]
    return env


@pytest.mark.integration
def test_the_container_install_steps_give_a_working_server(tmp_path: Path) -> None:
    copied, runs = containerfile_build_stage()
    assert copied == ["pyproject.toml", "README.md", "src"] and runs
    source = tmp_path / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in copied:
        (
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
            if (ROOT / name).is_dir()
            else shutil.copy(ROOT / name, source)
        )
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_NO_CACHE_DIR", "VIRTUAL_ENV", "PYTHONPATH")}
    for command in runs:  # the plain Debian Python stands in for the image's; the pip cache is used
        command = command.replace("/opt/smart-imaging", str(venv))
        command = re.sub(r"(^|&& )python ", r"\1/usr/bin/python3 ", command)
        result = subprocess.run(
            command, shell=True, cwd=source, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr[-3000:]
    serve_help = subprocess.run(
        [venv / "bin" / "smart-imaging", "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    assert (
        serve_help.returncode == 0
        and "--workers" in serve_help.stdout
        and "--shutdown-timeout" in serve_help.stdout
    )
    run_like_the_image(tmp_path, venv)


def run_like_the_image(tmp_path: Path, venv: Path) -> None:
    """The installed server with the image's environment (loopback, a free port), its HEALTHCHECK
    command, then SIGTERM: exit 0."""
    port = free_port()
    env = {**image_env(), "PATH": f"{venv}/bin:/usr/bin:/bin", "SMART_IMAGING_HOST": "127.0.0.1"}
    env.update(SMART_IMAGING_PORT=str(port), SMART_IMAGING_CONFIG_DIR=str(DEPLOY / "tenants"))
    env.update(SMART_IMAGING_STATE_DIR=str(tmp_path / "state"), TMPDIR=str(tmp_path), **TENANT_ENV)
    env.update(SMART_IMAGING_KEY="container-test-key", SMART_IMAGING_WORKERS="1")
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", (DEPLOY / "Containerfile").read_text(), re.M)[1])  # type: ignore[index]
    process = subprocess.Popen(entrypoint, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_url(
            f"http://127.0.0.1:{port}/healthz", process=process, what="the installed server", timeout=60
        )
        check = re.search(r'CMD (\["python".+\])$', (DEPLOY / "Containerfile").read_text(), re.M)
        assert check is not None
        health = subprocess.run(json.loads(check[1]), env=env, capture_output=True, text=True, timeout=30)
        assert health.returncode == 0, health.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0
    finally:
        stop_process(process)
