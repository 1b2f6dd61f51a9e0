"""A small kustomize renderer for the features deploy/k8s uses, and no others.

No Python kustomize exists on PyPI, and the tests must not need kubectl, so this renders the
overlays itself. It supports, in kustomize's order (resources, generators, patches, then the
namespace and image transformers):

- `resources`: YAML files (several documents each) and directories holding a
  kustomization (rendered first, recursively);
- `configMapGenerator` with `literals` and `files` (`key=path` or a path), only with
  `generatorOptions: {disableNameSuffixHash: true}` (name hashes would need kustomize's
  name-reference rewriting, which this does not do);
- `patches` with `path` (strategic merge patch files, one or more documents, matched to a
  resource by kind and name) and `patchesStrategicMerge`; a document with `$patch: delete`
  removes the resource. Maps merge, `null` removes a key, and lists merge by key only for
  the fields Kubernetes declares a merge key for and this module knows (`MERGE_KEYS`);
  every other list is replaced, as kustomize does;
- `namespace`: set on every resource except cluster-scoped kinds (`CLUSTER_SCOPED`);
- `images`: `newName`, `newTag` and `digest` of containers and init containers in pod specs
  and pod templates.

Anything else in a kustomization (labels, name prefixes, JSON 6902 patches, replacements,
components, helm charts, ...) raises `Unsupported` instead of being silently ignored. When
kubectl is installed the tests also compare this renderer's output with `kubectl kustomize`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

Resource = dict[str, Any]

SUPPORTED = frozenset(
    {
        "apiVersion",
        "kind",
        "resources",
        "configMapGenerator",
        "generatorOptions",
        "patches",
        "patchesStrategicMerge",
        "namespace",
        "images",
    }
)
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "PriorityClass",
        "StorageClass",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}
"""List fields with a strategic merge key (Kubernetes' patchMergeKey) that this renderer merges."""
POD_SPEC_PATHS = (("spec",), ("spec", "template", "spec"), ("spec", "jobTemplate", "spec"))


class Unsupported(Exception):
    """The kustomization uses a feature this renderer does not implement."""


def render(directory: Path) -> list[Resource]:
    """The resources `kubectl kustomize directory` would print (order aside)."""
    directory = directory.resolve()
    path = directory / "kustomization.yaml"
    spec: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise Unsupported(f"{path}: {', '.join(sorted(unknown))}")

    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            resources.extend(render(target))
        else:
            resources.extend(_load(target))
    resources.extend(_generate(directory, spec))
    _check_unique(resources, path)

    patch_files = [p["path"] if isinstance(p, dict) else p for p in spec.get("patches", [])]
    for entry in spec.get("patches", []):
        if not isinstance(entry, dict) or set(entry) != {"path"}:
            raise Unsupported(f"{path}: only `patches: - path: <file>` is supported: {entry}")
    patch_files += list(spec.get("patchesStrategicMerge", []))
    for name in patch_files:
        for patch in _load((directory / name).resolve()):
            resources = _apply_patch(resources, patch, directory / name)

    namespace = spec.get("namespace")
    if namespace:
        for resource in resources:
            if resource.get("kind") not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = namespace
    for image in spec.get("images", []):
        for resource in resources:
            _set_image(resource, image)
    return resources


def _load(path: Path) -> list[Resource]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for doc in docs:
        if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion"):
            raise ValueError(f"{path}: every document needs apiVersion and kind")
    return docs


def key(resource: Resource) -> tuple[str, str, str]:
    meta = resource.get("metadata", {})
    return (str(resource["kind"]), str(meta.get("namespace", "")), str(meta["name"]))


def _check_unique(resources: list[Resource], path: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for resource in resources:
        if key(resource) in seen:
            raise ValueError(f"{path}: {key(resource)} twice")
        seen.add(key(resource))


def _generate(directory: Path, spec: dict[str, Any]) -> list[Resource]:
    generators = spec.get("configMapGenerator", [])
    if not generators:
        return []
    options = spec.get("generatorOptions", {})
    if options != {"disableNameSuffixHash": True}:
        raise Unsupported(
            "configMapGenerator needs generatorOptions: {disableNameSuffixHash: true}"
        )
    made: list[Resource] = []
    for generator in generators:
        extra = set(generator) - {"name", "literals", "files"}
        if extra:
            raise Unsupported(f"configMapGenerator {generator.get('name')}: {sorted(extra)}")
        data: dict[str, str] = {}
        for literal in generator.get("literals", []):
            name, _, value = str(literal).partition("=")
            data[name] = value
        for entry in generator.get("files", []):
            name, _, source = str(entry).rpartition("=")
            file = (directory / source).resolve()
            data[name or file.name] = file.read_text()
        made.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    return made


def _apply_patch(resources: list[Resource], patch: Resource, source: Path) -> list[Resource]:
    name = patch.get("metadata", {}).get("name")
    matches = [
        i
        for i, resource in enumerate(resources)
        if resource["kind"] == patch["kind"] and resource["metadata"]["name"] == name
    ]
    if len(matches) != 1:
        raise ValueError(f"{source}: patch of {patch['kind']}/{name} matches {len(matches)}")
    (index,) = matches
    if patch.get("$patch") == "delete":
        return resources[:index] + resources[index + 1 :]
    body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
    merged = merge(resources[index], body)
    return [*resources[:index], merged, *resources[index + 1 :]]


def merge(base: Any, patch: Any, field: str = "") -> Any:
    """Strategic merge of `patch` into `base` (a new value; neither is changed)."""
    if isinstance(patch, dict) and isinstance(base, dict):
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        out = copy.deepcopy(base)
        for name, value in patch.items():
            if name.startswith("$"):
                raise Unsupported(f"directive {name}")
            if value is None:
                out.pop(name, None)
            elif name in out:
                out[name] = merge(out[name], value, name)
            else:
                out[name] = copy.deepcopy(value)
        return out
    if isinstance(patch, list) and isinstance(base, list) and field in MERGE_KEYS:
        merge_key = MERGE_KEYS[field]
        out_list = copy.deepcopy(base)
        for item in patch:
            found = next(
                (i for i, old in enumerate(out_list) if old.get(merge_key) == item[merge_key]),
                None,
            )
            if found is None:
                out_list.append(copy.deepcopy(item))
            else:
                out_list[found] = merge(out_list[found], item)
        return out_list
    return copy.deepcopy(patch)


def pod_specs(resource: Resource) -> list[dict[str, Any]]:
    """The pod specs inside a workload (its own spec for a Pod, the template's otherwise)."""
    found = []
    for path in POD_SPEC_PATHS:
        node: Any = resource
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and "containers" in node:
            found.append(node)
    return found


def _set_image(resource: Resource, image: dict[str, Any]) -> None:
    extra = set(image) - {"name", "newName", "newTag", "digest"}
    if extra:
        raise Unsupported(f"images: {sorted(extra)}")
    for spec in pod_specs(resource):
        for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
            current = str(container.get("image", ""))
            name, tag = _split(current)
            if name != image["name"]:
                continue
            new = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{new}@{image['digest']}"
            elif "newTag" in image:
                container["image"] = f"{new}:{image['newTag']}"
            else:
                container["image"] = new + tag


def _split(image: str) -> tuple[str, str]:
    """`name`, and what follows it (`:tag`, `@digest` or nothing)."""
    if "@" in image:
        name, _, digest = image.partition("@")
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""
