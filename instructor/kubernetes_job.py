"""Kubernetes executor: an Indexed Job manifest for a class (runs in the instructor's process).

    python -m instructor.cluster kubernetes MANIFEST RESULTS_DIR --image IMAGE --claim PVC --out job.yaml
           [--parallel P] [--per-task K] [--mem SIZE] [--timeout S] [--mount /class]

Two documents: the grading Job (``completionMode: Indexed``, ``completions`` = number of tasks, ``parallelism``
P, ``backoffLimitPerIndex`` so one failing index does not stop the others) whose pod k grades the k-th slice of
K items with ``instructor.grade_item --task $JOB_COMPLETION_INDEX``; and the merge Job, applied after the first
one finishes (Kubernetes has no dependency between Jobs: ``kubectl wait``, see docs/cluster.md).

The class folder (submissions, manifest, results, grades) is one PersistentVolumeClaim mounted at ``--mount``;
host paths in the manifest are replaced with ``--root`` there. As with Slurm, the item list is computed when
the manifest is generated: only the items without an up-to-date result, so regenerating after a failed Job
reruns only those. The image is cluster/Dockerfile (the project and its reference solution inside: keep it
in a private registry).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import yaml

from instructor.grade_manifest import format_spec, load


def _k8s_memory(size: str) -> str:
    """Slurm-style 2G / 1500M -> Kubernetes 2Gi / 1500Mi."""
    m = re.fullmatch(r"(\d+)([KMGT]?)i?B?", size.strip(), re.IGNORECASE)
    if not m:
        raise ValueError(f"memory {size!r}: give e.g. 2G or 1500M")
    n, unit = m.groups()
    return f"{n}{unit.upper()}i" if unit else n


def job_documents(manifest, results_dir, items: list[int], *, image: str, claim: str, mount: str = "/class",
                  class_folder: str | os.PathLike | None = None, parallel: int = 50, per_task: int = 1,
                  mem: str = "2G", timeout: float = 300.0, name: str = "gptlab") -> list[dict]:
    """The grading Job and the merge Job, as dicts.

    Paths are mapped from the host's class folder (default: the manifest's folder) to ``mount`` in the pod:
    the manifest, the results and the submissions must lie inside it.
    """
    m = load(manifest)
    base = Path(class_folder).resolve() if class_folder else m.path.parent

    def inside(p: Path) -> str:
        p = Path(p).resolve()
        try:
            return str(Path(mount) / p.relative_to(base))
        except ValueError:
            raise ValueError(f"{p} is not inside the class folder {base}, which the pods mount at {mount}") from None

    man, res, root = inside(m.path), inside(Path(results_dir)), inside(m.root)
    grades = str(Path(mount) / "grades")
    tasks = math.ceil(len(items) / per_task)
    if tasks == 0:
        raise ValueError("no item to grade: every item has an up-to-date result")
    memory = _k8s_memory(mem)
    labels = {"app.kubernetes.io/name": "gpt-lab", "app.kubernetes.io/component": "grading"}
    volume = [{"name": "class", "persistentVolumeClaim": {"claimName": claim}}]
    mounts = [{"name": "class", "mountPath": mount}]
    env = [{"name": "OMP_NUM_THREADS", "value": "1"}, {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}]
    # the grader's sandbox makes PID, mount, network and IPC namespaces and drops every capability before
    # student code runs; inside a pod that needs SYS_ADMIN and an unconfined seccomp profile (docs/cluster.md)
    security = {"capabilities": {"add": ["SYS_ADMIN"]}, "seccompProfile": {"type": "Unconfined"}}

    def job(suffix, command, spec_extra, resources):
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{name}-{suffix}", "labels": labels},
            "spec": {
                **spec_extra,
                "ttlSecondsAfterFinished": 7 * 86400,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{
                            "name": suffix,
                            "image": image,
                            "command": command,
                            "env": env,
                            "resources": resources,
                            "securityContext": security,
                            "volumeMounts": mounts,
                        }],
                        "volumes": volume,
                    },
                },
            },
        }

    grade = job("grade", [
        "sh", "-c",
        f'exec python -m instructor.grade_item {man} --root {root} --task "$JOB_COMPLETION_INDEX" '
        f"--per-task {per_task} --items {format_spec(items)} --out {res} --timeout {timeout:g}",
    ], {
        "completionMode": "Indexed",
        "completions": tasks,
        "parallelism": min(parallel, tasks),
        "backoffLimitPerIndex": 2,  # a pod lost with its node is retried; a submission that kills it is not
        "maxFailedIndexes": tasks,  # every other index still runs; the merge names what is missing
        "activeDeadlineSeconds": int(math.ceil(tasks / min(parallel, tasks)) * per_task * (timeout + 60) + 600),
    }, {"requests": {"cpu": "1", "memory": memory}, "limits": {"cpu": "1", "memory": memory}})
    merge = job("merge", ["python", "-m", "instructor.cluster", "merge", man, res, "--out", grades, "--root", root],
                {"completions": 1, "parallelism": 1, "backoffLimit": 0},
                {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
    return [grade, merge]


class _PlainDumper(yaml.SafeDumper):
    """No anchors and aliases (&id001 / *id001) for the dicts the two Jobs share: plain YAML that reads as
    written."""

    def ignore_aliases(self, data):
        return True


def write_manifest(path, documents: list[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump_all(documents, Dumper=_PlainDumper, sort_keys=False, width=1000))
    return path
