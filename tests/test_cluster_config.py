"""cluster-config/: dask config files that validate, a SLURM script that renders, deployment files that parse."""
import os
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import dask.config
import jsonschema
import pytest
import yaml

import pipeline  # registers the mosaic: defaults

CLUSTER_CONFIG = Path(__file__).parents[1] / "cluster-config"
DEPLOY = CLUSTER_CONFIG / "deploy"
IMAGE = "mosaic-pipeline:0.1.0"


def load(path):
    return yaml.safe_load(path.read_text())


def config_files():
    return sorted(CLUSTER_CONFIG.glob("*.yaml"))


def unknown_keys(config, defaults, prefix=""):
    """Keys of ``config`` that dask's defaults do not have (free-form mappings, empty by default or of
    environment variables, take anything)."""
    missing = []
    for key, value in config.items():
        canonical = key.replace("_", "-") if key not in defaults else key
        if canonical not in defaults:
            missing.append(prefix + key)
        elif isinstance(value, dict) and isinstance(defaults[canonical], dict) and defaults[canonical] \
                and not canonical.endswith("environ"):  # environment variables: any name is valid
            missing += unknown_keys(value, defaults[canonical], prefix + key + ".")
    return missing


def test_config_folder_is_read_by_dask():
    assert {"dask.yaml", "jobqueue.yaml"} <= {p.name for p in config_files()}
    assert [c for c in dask.config.collect_yaml(paths=[str(CLUSTER_CONFIG)]) if c] == [c for c in map(load, config_files()) if c]


def test_distributed_settings_validate_against_distributeds_schema():
    import distributed

    schema = load(Path(distributed.__file__).parent / "distributed-schema.yaml")
    config = load(CLUSTER_CONFIG / "dask.yaml")
    jsonschema.validate({"distributed": config["distributed"]}, schema)
    broken = {"distributed": {**config["distributed"], "scheduler": {"allowed-failures": "many"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_every_key_is_a_known_setting():
    # dask reads every YAML file in DASK_CONFIG, so this also keeps deployment files
    # (compose, Kubernetes, Helm) out of the folder: their keys are not dask settings.
    import dask_jobqueue  # noqa: F401  registers the jobqueue defaults

    defaults = dask.config.merge(*dask.config.defaults)
    assert "mosaic" in defaults and "jobqueue" in defaults
    for path in sorted(CLUSTER_CONFIG.glob("*.y*ml")):
        assert unknown_keys(load(path) or {}, defaults) == [], path.name
    assert unknown_keys(load(DEPLOY / "docker-compose.yml"), defaults) != []
    assert unknown_keys({"distributed": {"scheduler": {"alowed-failures": 1}}}, defaults) == ["distributed.scheduler.alowed-failures"]


def run_python(code, config_folder):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "DASK_CONFIG": str(config_folder)})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_cli_honours_the_mosaic_section(cluster_config):
    assert run_python("from pipeline.config import config_get; print(config_get('index.batch-size'))", cluster_config).strip() == "256"
    made_help = subprocess.run([sys.executable, "-m", "pipeline", "make", "--help"], capture_output=True, text=True,
                               env={**os.environ, "DASK_CONFIG": str(cluster_config), "DASK_MOSAIC__MAKE__COLS": "17"})
    assert "mosaic.make.cols, 17" in " ".join(made_help.stdout.split())
    # Loaded everywhere a process starts with DASK_CONFIG: a distributed setting too.
    code = "import distributed, dask; print(dask.config.get('distributed.scheduler.allowed-failures'))"
    assert run_python(code, cluster_config).strip() == "5"


def test_slurm_job_script_renders(cluster_config):
    script = run_python(
        "from dask_jobqueue import SLURMCluster\n"
        "from distributed.security import Security\n"
        "with SLURMCluster(scheduler_options={'host': '127.0.0.1', 'dashboard_address': ':0'},\n"
        "                  security=Security.temporary()) as cluster:\n"
        "    print(cluster.job_script())\n",
        cluster_config,
    )
    assert script.startswith("#!/usr/bin/env bash")
    for line in ("#SBATCH -J mosaic-worker", "#SBATCH --cpus-per-task=8", "#SBATCH -t 02:00:00",
                 'export DASK_CONFIG="${MOSAIC_CLUSTER_CONFIG:-$HOME/mosaic/cluster-config}"'):
        assert line in script, line
    worker = [line for line in script.splitlines() if "distributed.cli.dask_worker" in line]
    # The README's recipe: temporary TLS credentials, which the job script hands the workers.
    assert len(worker) == 1 and "tls://127.0.0.1:" in worker[0]
    assert "--tls-ca-file" in worker[0] and "--tls-cert" in worker[0] and "--tls-key" in worker[0]
    assert "--nworkers 8" in worker[0] and "--nthreads 1" in worker[0] and "--local-directory $TMPDIR" in worker[0]


def test_compose_file():
    compose = load(DEPLOY / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"scheduler", "worker", "client"}
    assert all(s["image"] == IMAGE for s in services.values())
    assert (Path(DEPLOY / services["worker"]["build"]["context"]) / services["worker"]["build"]["dockerfile"]).is_file()
    assert services["scheduler"]["ports"] == ["127.0.0.1:8786:8786", "127.0.0.1:8787:8787"]
    assert services["scheduler"]["command"][:2] == ["dask", "scheduler"] and "8786" in services["scheduler"]["command"]
    assert services["worker"]["command"][:3] == ["dask", "worker", "tls://scheduler:8786"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["client"]["environment"]["DASK_SCHEDULER_ADDRESS"] == "tls://scheduler:8786"
    # Workers see the library and the work folder at the client's paths; only the client writes.
    mounts = {name: dict(mount_target_and_mode(v) for v in s["volumes"]) for name, s in services.items() if "volumes" in s}
    # Every service holds the TLS credentials, read-only, where DASK_DISTRIBUTED__COMM__TLS__* points.
    assert mounts["worker"] == {"/data/library": "ro", "/data/work": "ro", "/etc/mosaic/tls": "ro"}
    assert mounts["client"] == {"/data/library": "ro", "/data/work": "rw", "/etc/mosaic/tls": "ro"}
    assert mounts["scheduler"] == {"/etc/mosaic/tls": "ro"}
    for service in services.values():
        assert service["environment"]["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"] == "/etc/mosaic/tls/ca.pem"
    assert "tls" in services["scheduler"]["command"]


def mount_target_and_mode(volume):
    """``SOURCE:TARGET[:MODE]``, where SOURCE may be ``${VAR:-default}`` (with a colon of its own)."""
    match = re.fullmatch(r"(\$\{[^}]+\}|[^:]+):([^:]+)(?::(ro|rw))?", volume)
    assert match, volume
    return match.group(2), match.group(3) or "rw"


def schema_has_no_unknown_fields(instance, schema, path="$"):
    """Kubernetes prunes fields its structural schema does not list: find them before it silently does."""
    problems = []
    if isinstance(instance, dict) and "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        for key, value in instance.items():
            if key not in schema["properties"]:
                problems.append(f"{path}.{key}")
            else:
                problems += schema_has_no_unknown_fields(value, schema["properties"][key], f"{path}.{key}")
    elif isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            problems += schema_has_no_unknown_fields(item, schema["items"], f"{path}[{i}]")
    return problems


def test_kubernetes_manifest_matches_the_operators_crd():
    crd_path = files("dask_kubernetes") / "operator/deployment/helm/dask-kubernetes-operator/crds/daskcluster.yaml"
    crd = yaml.safe_load(crd_path.read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = version["schema"]["openAPIV3Schema"]
    manifest = load(DEPLOY / "kubernetes-daskcluster.yaml")
    assert manifest["apiVersion"] == f"{crd['spec']['group']}/v1" and manifest["kind"] == crd["spec"]["names"]["kind"]
    jsonschema.validate(manifest, schema)
    assert schema_has_no_unknown_fields(manifest["spec"], schema["properties"]["spec"]) == []
    assert schema_has_no_unknown_fields({"worker": {"replica": 2}}, schema["properties"]["spec"]) == ["$.worker.replica"]

    scheduler = manifest["spec"]["scheduler"]
    [container] = scheduler["spec"]["containers"]
    assert container["image"] == IMAGE and container["args"][:2] == ["dask", "scheduler"]
    assert {p["containerPort"] for p in container["ports"]} == {8786, 8787}
    assert {p["port"] for p in scheduler["service"]["ports"]} == {8786, 8787}
    worker = manifest["spec"]["worker"]
    assert worker["replicas"] == 2 and worker["spec"]["containers"][0]["image"] == IMAGE
    volumes = {v["name"] for v in worker["spec"]["volumes"]}
    assert {m["name"] for m in worker["spec"]["containers"][0]["volumeMounts"]} <= volumes


def test_helm_values():
    values = load(DEPLOY / "helm-values.yaml")
    for part in ("scheduler", "worker"):
        assert f"{values[part]['image']['repository']}:{values[part]['image']['tag']}" == IMAGE
    assert values["scheduler"]["servicePort"] == 8786 and values["webUI"]["servicePort"] == 8787
    assert values["worker"]["replicas"] == 2 and values["jupyter"]["enabled"] is False
    mounts = values["worker"]["mounts"]
    assert {m["name"] for m in mounts["volumeMounts"]} <= {v["name"] for v in mounts["volumes"]}
    assert {"name": "DASK_CONFIG", "value": "/etc/mosaic/cluster-config"} in values["worker"]["env"]


def test_dockerfile_installs_the_package_and_the_config():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "pip install --no-cache-dir /src" in text and "COPY cluster-config/*.yaml /etc/mosaic/cluster-config/" in text
    assert "ENV DASK_CONFIG=/etc/mosaic/cluster-config" in text and "EXPOSE 8786 8787" in text
